"""The shapes of the paper's Tables 2 and 3 with one command: one GPO run per cell, each
cell a preset (`gpo presets`), on the same tasks, splits, seeds and scorer.

Table 2 varies the update direction (feedback gradient, prompt+performance, and the
momentum over either: summarization or recency / relevance / importance retrieval),
with editing and no edit-distance limit. Table 3 varies the update method (editing or
generation) and the edit-distance control (none, fixed, linear, cosine; with or without
warmup over the first 5% of steps), with relevance retrieval as the direction. Each
cell's final prompt is tested and compared with the initial prompt, paired on the same
test examples and pooled over tasks and seeds (McNemar's exact test; 95% intervals).

Lite scale, embedded SmolLM2 in both roles, 2 CPU cores (the default, about 30 min):

    python -m bench.ablations

At lite scale a search has two steps, so the trajectory holds at most three prompts and
recency, relevance and importance retrieval (k = 3) show the optimizer the same prompts
in another order: the Table 2 momentum rows can differ only by chance there. The paper's
scale, against OpenAI-compatible endpoints (a key in OPENAI_API_KEY):

    python -m bench.ablations --paper-scale --scorer-model llama-2-7b-chat --scorer-base-url http://host:8000/v1 \\
        --optimizer-model gpt-3.5-turbo --optimizer-base-url https://api.openai.com/v1

(`--paper-scale`: every BBH task, whole splits, 3 epochs of batch 8, 8 candidates, no search budget,
the second round on, 256 scorer tokens.) Results go to a JSON-lines file as each cell finishes;
a rerun skips finished cells, and the response cache makes repeated requests free.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections import defaultdict

from bench._record import DATA_DIR, record
from bench.compare import add_model_options, build_spec, by_dataset, planned, run_plan

from gpo.config import CELLS, PRESETS
from gpo.scoring.stats import compare, wilson

TABLES = {
    "2": [name for name in PRESETS if name.startswith("table2-")],
    "3": [name for name in PRESETS if name.startswith("table3-")],
}
PAPER_SCALE = dict(tasks=["bbh:all"], train=0, eval=0, test=0, budget=0, epochs=3, batch=8, candidates=8,
                   second_round=True, scorer_max_tokens=256, optimizer_max_tokens=512)


def collect(args, cells: list[str]) -> tuple[dict[str, list[dict]], float]:
    """Each cell's results (one run per seed and dataset), run now where not recorded yet, and
    the minutes those runs took."""
    plan = []
    for cell in cells:
        for seed in args.seeds:
            for dataset, names in by_dataset(args.tasks).items():
                spec = build_spec(args, "gpo", seed, dataset, names, False, preset_name=cell)
                plan.append(planned(args, f"{cell}|{seed}|{dataset}", {"cell": cell, "seed": seed, "dataset": dataset},
                                    spec))
    done = run_plan(args.results, plan)
    by_cell: dict[str, list[dict]] = defaultdict(list)
    for key, fields, _ in plan:
        by_cell[fields["cell"]] += done[key]["results"]
    return by_cell, sum(done[key]["wall_s"] for key, _, _ in plan) / 60


def table(cells: list[str], by_cell: dict[str, list[dict]]) -> str:
    lines = ["| preset | cell | test % (95% CI) | gain over the initial prompt (points) | eval % | scorer requests "
             "| optimizer tokens |", "|---|---|---|---|---|---|---|"]
    for cell in cells:
        finals, initials, evals, requests, tokens = [], [], [], 0, 0
        for r in by_cell[cell]:
            scores = r.get("test_scores") or {}
            if "final" in scores and "initial" in scores:
                finals += scores["final"]
                initials += scores["initial"]
            evals.append(r["final_eval"])
            requests += r.get("scorer_requests", 0)
            tokens += r.get("optimizer_tokens", 0)
        if not finals:
            lines.append(f"| {cell} | {CELLS[cell]} | - | - | - | {requests} | {tokens:,} |")
            continue
        mean = sum(finals) / len(finals)
        interval = ""
        if set(finals) <= {0.0, 1.0}:  # accuracy: Wilson's interval (graded scores: the gain's interval below)
            low, high = wilson(int(sum(finals)), len(finals))
            interval = f" ({100 * low:.1f}-{100 * high:.1f})"
        gain = compare(initials, finals, seed=1).describe()
        lines.append(f"| {cell} | {CELLS[cell]} | {100 * mean:.1f}{interval} "
                     f"| {gain} | {100 * sum(evals) / len(evals):.1f} | {requests} | {tokens:,} |")
    return "\n".join(lines)


def main(args) -> None:
    if args.paper_scale:
        for key, value in PAPER_SCALE.items():
            setattr(args, key, value)
    cells = [c for t in args.tables for c in TABLES[t]]
    by_cell, wall = collect(args, cells)
    argv = [a for a in sys.argv[1:] if a != "--no-record"]
    body = [f"""Command: `{shlex.join(["python", "-m", "bench.ablations", *argv])}`

Scorer {args.scorer_model}, optimizer {args.optimizer_model}; tasks {', '.join(args.tasks)}; splits capped at train
{args.train or 'all'} / eval {args.eval or 'all'} / test {args.test or 'all'}; {args.epochs} epochs of batch {args.batch},
{args.candidates} candidates per step; scorer ≤ {args.scorer_max_tokens} tokens, second round
{'on' if args.second_round else 'off'}; seeds {', '.join(map(str, args.seeds))}. Every cell is a preset: every
candidate is scored on the whole eval split and answers are parsed as the original did (`--extraction original`).
Test accuracy of each cell's final prompt with its 95% Wilson interval, and its gain over the initial prompt
("Let's think step by step."), paired on the same test examples and pooled over tasks and seeds (McNemar's exact
test, 95% interval; "not significant" where p ≥ 0.05). Scorer requests and optimizer tokens are summed over the
cell's runs. Wall time {wall:.0f} min summed over the recorded runs, on this machine.

The paper's own figures for these cells are not set beside ours: neither the behavioural specification gpo started from nor the original
repository's text holds Tables 2 and 3 (the README shows only Tables 5 and 6, as images)."""]
    for t in args.tables:
        title = ("Table 2 shape (update direction; editing, no edit-distance limit)" if t == "2"
                 else "Table 3 shape (update method and edit-distance control; relevance retrieval)")
        body += ["", f"**{title}**", "", table(TABLES[t], by_cell)]
    text = "\n".join(body)
    print(text)
    if not args.no_record:
        record(args.section, args.title, text)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tables", nargs="+", choices=["2", "3"], default=["2", "3"])
    p.add_argument("--tasks", nargs="+", default=["bbh:navigate"], help="dataset:task (or a bare dataset)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--paper-scale", action="store_true", help="the paper's scale (see the module docstring)")
    p.add_argument("--data-dir", default=DATA_DIR)
    p.add_argument("--train", type=int, default=4, help="cap (0: whole split)")
    p.add_argument("--eval", type=int, default=8)
    p.add_argument("--test", type=int, default=16)
    p.add_argument("--budget", type=int, default=0, help="scorer requests per task for each search (0: unlimited)")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--candidates", type=int, default=2)
    p.add_argument("--scorer-max-tokens", type=int, default=32)
    p.add_argument("--second-round", action=argparse.BooleanOptionalAction, default=True,
                   help="ask the chat scorer again for the bare answer, as the paper did (the original parsing needs it)")
    p.add_argument("--optimizer-max-tokens", type=int, default=64)
    p.add_argument("--shots", type=int, default=3)
    add_model_options(p)
    p.add_argument("--selection", default="full", help=argparse.SUPPRESS)  # the presets keep their own
    p.add_argument("--race-block", type=int, default=8, help=argparse.SUPPRESS)
    p.add_argument("--cache", default="bench/.cache/ablations.sqlite")
    p.add_argument("--runs", default="bench/.cache/ablation_runs")
    p.add_argument("--results", default="bench/.cache/ablation_results.jsonl")
    p.add_argument("--no-record", action="store_true", help="print only; do not write BENCHMARKS.md")
    p.add_argument("--section", default="ablations-lite")
    p.add_argument("--title", default="The paper's ablations (Tables 2 and 3), lite scale (issue 13)")
    main(p.parse_args())
