"""Time estimates that hold (issue 36): the plan's expected wall time and its upper bound against
the measured wall time of the same run, on this machine, for the quickstart and three other runs
(a user's 20,000-row label file at --budget light, a paper task with GPO, an instruction-induction
task with APE). The measured time is the plan's own span: from the plan event to the end of the
run (loading the models, before the plan, is not part of it). Each run starts from an empty
response cache, so nothing is answered from an earlier run.

    python -m bench.timing [--data-dir ../shared/data/gpo] [--reuse]

Targets: the expected time within ±30% of the measured one on every run, and the upper bound
never below it.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import random
import shutil
from pathlib import Path

from bench._record import DATA_DIR, record

from gpo.api import from_sources, optimize, plan_with_time
from gpo.run.plan import format_duration
from gpo.run.store import existing_spec

WORK = Path("bench/.cache/timing")


def big_file(path: Path, rows: int = 20_000) -> str:
    """A user's label file: short reviews, positive or negative (a seeded draw, the same each time)."""
    draw = random.Random(0)
    words = "good bad great awful fine movie plot actor story boring fun slow".split()
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["text", "label"])
        for _ in range(rows):
            out.writerow([" ".join(draw.choice(words) for _ in range(12)), draw.choice(["positive", "negative"])])
    return str(path)


def runs(args) -> list[tuple[str, dict]]:
    return [
        ("quickstart (`gpo optimize`)", {}),
        ("user file, 20,000 rows, --budget light", {"dataset": "user", "data_files": big_file(WORK / "big.csv"),
                                                    "input_col": "text", "target_col": "label", "size": "light"}),
        ("bbh navigate, gpo, --budget light", {"dataset": "bbh", "task": ["navigate"], "data_dir": args.data_dir,
                                              "size": "light"}),
        ("instruction induction larger_animal, ape, 160 requests",
         {"dataset": "instruction_induction", "task": ["larger_animal"], "method": "ape", "data_dir": args.ii_dir,
          "max_examples": ["eval=32", "test=40"], "scorer_calls_per_task": 160, "scorer_max_tokens": 48}),
    ]


def one(name: str, overrides: dict, reuse: bool) -> dict:
    run_dir = WORK / name.split(" ")[0].replace("(", "")
    spec = from_sources(overrides={**overrides}, check_models=False)
    events_file = run_dir / "events.jsonl"
    finished = events_file.exists() and '"run_done"' in events_file.read_text()
    if not (reuse and finished and not spec.differences(existing_spec(run_dir))):  # else: this very run, finished
        shutil.rmtree(run_dir, ignore_errors=True)
        optimize(spec, run_dir)
    events = [json.loads(line) for line in events_file.read_text().splitlines()]
    planned = next(e for e in events if e["event"] == "plan")
    ended = next(e for e in reversed(events) if e["event"] in ("run_done", "run_stopped"))
    return {"name": name, "expected": planned["estimated_wall_s"], "upper": planned["upper_wall_s"],
            "measured": ended["time"] - planned["time"], "calls": planned["scorer_calls"],
            "timing": planned.get("timing", "")}


def plans(path: str) -> tuple[list[str], list]:
    """The dry run of the 20,000-row file by default and at --budget light: what `gpo optimize
    --dry-run` says it would take (targets: under 2 hours and under 20 minutes, expected)."""
    rows, targets = [], []
    for size, limit in (("medium", 7200), ("light", 1200)):
        spec = from_sources(overrides={"dataset": "user", "data_files": path, "input_col": "text",
                                       "target_col": "label", **({"size": size} if size == "light" else {})},
                            check_models=False)
        planned = asyncio.run(plan_with_time(spec))
        label = "default (medium)" if size == "medium" else "--budget light"
        rows.append(f"| {label} | {planned['scorer_calls']:,} | {planned['tasks'][0]['steps']} | "
                    f"{format_duration(planned['estimated_wall_s'])} | {format_duration(planned['upper_wall_s'])} |")
        targets.append((f"the 20,000-row file's {label} plan under {format_duration(limit)} expected "
                        f"({format_duration(planned['estimated_wall_s'])})", planned["estimated_wall_s"] < limit))
    return rows, targets


def main(args) -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    rows, within, under = [], [], []
    planned_rows, plan_targets = plans(big_file(WORK / "big.csv"))
    for name, overrides in runs(args):
        r = one(name, overrides, args.reuse)
        ratio = r["expected"] / r["measured"]
        within.append(abs(ratio - 1) <= 0.30)
        under.append(r["measured"] <= r["upper"])
        rows.append(f"| {name} | {r['calls']:,} | {format_duration(r['expected'])} | {format_duration(r['upper'])} | "
                    f"{r['measured']:.0f} s | {ratio:.2f} | {'yes' if within[-1] else 'no'} | "
                    f"{'yes' if under[-1] else 'no'} | {r['timing']} |")
        print(rows[-1], flush=True)
    body = "\n".join([
        "Each run as `gpo optimize` runs it on the embedded SmolLM2-135M-Instruct (both roles), from an empty "
        "response cache. \"expected\" and \"upper bound\": the plan's, printed before the search starts "
        "(`gpo.run.plan.wall`: the models timed on a few requests; each expected request as long as the probe "
        "prompts' real ones, the bound every call at its longest prompt and full reply). \"measured\": from the plan to the "
        "end of the run. \"ratio\": expected / measured.", "",
        "| run | planned scorer requests (at most) | expected | upper bound | measured | ratio | within ±30% | "
        "bound held | timing |",
        "|---|---|---|---|---|---|---|---|---|", *rows, "",
        f"The expectation was within ±30% on {sum(within)} of {len(within)} runs; the bound held on {sum(under)} of "
        f"{len(under)}.", "",
        "The dry run of the same 20,000-row file (`gpo optimize --dataset user --data-file big.csv --input-col text "
        "--target-col label --dry-run`, and with `--budget light`): planned scorer requests (at most), planned steps, "
        "and the two times.", "",
        "| plan | scorer requests (at most) | steps | expected | upper bound |", "|---|---|---|---|---|",
        *planned_rows,
    ])
    targets = [(f"expected within ±30% of measured on every run ({sum(within)} of {len(within)})", all(within)),
               (f"the upper bound never below the measured time ({sum(under)} of {len(under)})", all(under)),
               *plan_targets]
    if not args.no_record:
        record("timing", "Time estimates against measured wall time (issue 36)", body, targets)
    print(body)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--data-dir", default=DATA_DIR)
    p.add_argument("--ii-dir", default=str(Path(DATA_DIR).parent / "instruction_induction"))
    p.add_argument("--no-record", action="store_true")
    p.add_argument("--reuse", action="store_true", help="take a finished run of the same settings from its directory")
    main(p.parse_args())
