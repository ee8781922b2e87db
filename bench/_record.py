"""Write a benchmark's figures into BENCHMARKS.md, in a section of its own, with the
command that produced them and the machine it ran on."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shlex
import sys
import time
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"
DATA_DIR = str(Path(__file__).resolve().parents[2] / "shared" / "data" / "gpo")  # the benchmarks' default --data-dir


def fingerprint(spec) -> str:
    """A short hash of every setting of a run (``RunSpec.to_dict``, or that dict): benches key their
    run directories and results rows by it, so a rerun with other flags never reuses old runs."""
    text = json.dumps(spec if isinstance(spec, dict) else spec.to_dict(), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def cpu_name() -> str:
    """The processor's model name (llama.cpp's speed and numerics differ between CPUs)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> str:
    return f"{cpu_name()} ({platform.machine()}), {os.cpu_count()} cores, Python {platform.python_version()}"


Target = tuple[str, bool]  # what was aimed at, with the measured figure; whether it was met


def targets_line(targets: list[Target] | None) -> str:
    """The section's targets, each marked met or missed from the figures the bench measured."""
    if not targets:
        return "**Targets:** none set: this section measures and compares, it sets no goal."
    marks = "; ".join(f"{what}: **{'met' if met else 'missed'}**" for what, met in targets)
    return f"**Targets:** {marks} ({sum(met for _, met in targets)} of {len(targets)} met)."


def record(name: str, title: str, body: str, targets: list[Target] | None = None) -> None:
    """Write (or replace) section ``name``: the command that produced it, the date, the
    machine, the body and the targets line, all from what this run of the bench measured."""
    command = "python -m " + shlex.join([f"bench.{Path(sys.argv[0]).stem}"] + sys.argv[1:])
    body = f"{body.strip()}\n\n{targets_line(targets)}"
    section = (f"<!-- bench:{name} -->\n## {title}\n\n`{command}` · {time.strftime('%Y-%m-%d')} · {machine()}\n\n"
               f"{body}\n<!-- /bench:{name} -->")
    text = BENCHMARKS.read_text() if BENCHMARKS.exists() else "# Benchmarks\n\nFigures written by the scripts in `bench/`.\n"
    pattern = re.compile(rf"<!-- bench:{name} -->.*?<!-- /bench:{name} -->", re.S)
    text = pattern.sub(lambda m: section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section + "\n"
    BENCHMARKS.write_text(text)
    print(body)


def wall_time(runs, start: float, reuse: str = "finished runs are reused on a rerun") -> str:
    """The closing line of a bench whose runs are kept between invocations: their wall time summed
    (each run's ``wall_s``), and this invocation's."""
    return (f"Wall time {sum(run['wall_s'] for run in runs) / 60:.1f} min summed over these runs on this machine "
            f"(this invocation: {(time.time() - start) / 60:.1f} min; {reuse}).")


def publish(args, body: str, targets: list[Target] | None = None) -> None:
    """Write the section (``args.section``, ``args.title``) unless ``--no-record``, and print it."""
    if args.no_record:
        print(f"{body.strip()}\n\n{targets_line(targets)}")
    else:
        record(args.section, args.title, body, targets)
