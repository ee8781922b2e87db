"""Write a benchmark's figures into BENCHMARKS.md, in a section of its own, with the
command that produced them and the machine it ran on."""

from __future__ import annotations

import os
import platform
import re
import shlex
import sys
import time
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"
DATA_DIR = str(Path(__file__).resolve().parents[2] / "shared" / "data" / "gpo")  # the benchmarks' default --data-dir


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def record(name: str, title: str, body: str) -> None:
    command = "python -m " + shlex.join([f"bench.{Path(sys.argv[0]).stem}"] + sys.argv[1:])
    section = (f"<!-- bench:{name} -->\n## {title}\n\n`{command}` · {time.strftime('%Y-%m-%d')} · {machine()}\n\n"
               f"{body.strip()}\n<!-- /bench:{name} -->")
    text = BENCHMARKS.read_text() if BENCHMARKS.exists() else "# Benchmarks\n\nFigures written by the scripts in `bench/`.\n"
    pattern = re.compile(rf"<!-- bench:{name} -->.*?<!-- /bench:{name} -->", re.S)
    text = pattern.sub(lambda m: section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section + "\n"
    BENCHMARKS.write_text(text)
    print(body)
