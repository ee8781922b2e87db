"""Peers side by side with gpo on one engine: GEPA and promptolution's CAPO, OPRO and
EvoPrompt-GA against gpo and its six baselines, at an equal scorer-request budget.

Each peer runs through its library's published API (pip install 'gpo[peers]'). Its model calls
go through gpo's LLM layer (same cache, retries, usage counting and backends). Its scorings use
gpo's Evaluator, and gpo counts its scorer requests against the same per-task budget as every
other method. Every method starts from the same initial prompt ("Let's think step by step.")
on the same splits. Its final prompt, the best on eval, is scored by gpo's Evaluator on the test
split.

The table: test accuracy of the final prompts with its 95% Wilson interval, the gain over the
initial prompt, and the difference from gpo. Both are paired on the same test examples, pooled
over tasks and seeds, with McNemar's exact test and 95% intervals. Then the scorer requests,
optimizer samples and tokens, and wall time, each summed over the runs. Results are kept as
each run finishes; a rerun skips finished runs, and the response cache makes the rest free.

Lite scale, embedded SmolLM2 in both roles, 2 CPU cores (default: navigate and one MMLU subject,
3 seeds, about 45 min for all 11 methods):

    python -m bench.peers

Paper scale, against OpenAI-compatible endpoints:

    python -m bench.peers --tasks bbh:all mmlu:all --train 0 --eval 0 --test 0 --budget 2000 \\
        --epochs 3 --batch 8 --candidates 8 --scorer-max-tokens 256 --second-round \\
        --scorer-model llama-2-7b-chat --scorer-base-url http://host:8000/v1 \\
        --optimizer-model gpt-3.5-turbo --optimizer-base-url https://api.openai.com/v1
"""

from __future__ import annotations

import argparse
from collections import defaultdict

from bench._record import DATA_DIR, record
from bench.compare import add_model_options, build_spec, by_dataset, planned, run_plan

from gpo.methods import method_class
from gpo.scoring.stats import compare, wilson

GPO_AND_BASELINES = ["gpo", "ape", "apo", "opro", "pe2", "evoprompt-ga", "evoprompt-de"]
PEERS = ["gepa", "capo", "pl-opro", "pl-evoprompt-ga"]


def collect(args) -> dict[str, list[dict]]:
    """Each method's runs (one per seed and dataset), in one order for every method, so that
    their pooled test scores pair example by example."""
    plan = []
    for method in args.methods:
        for seed in args.seeds:
            for dataset, names in by_dataset(args.tasks).items():
                spec = build_spec(args, method, seed, dataset, names, False)
                plan.append(planned(args, f"{method}|{seed}|{dataset}",
                                    {"method": method, "seed": seed, "dataset": dataset}, spec))
    done = run_plan(args.results, plan)
    runs: dict[str, list[dict]] = defaultdict(list)
    for key, fields, _ in plan:
        runs[fields["method"]].append(done[key])
    return runs


def pooled(rows: list[dict], which: str) -> list[float]:
    return [x for row in rows for r in row["results"] for x in (r.get("test_scores") or {}).get(which, [])]


def table(methods: list[str], runs: dict[str, list[dict]]) -> tuple[str, dict, dict]:
    """The table, each method's test gain over the initial prompt, and its difference from gpo."""
    gains, versus_gpo = {}, {}
    lines = ["| method | test % (95% CI) | gain over the initial prompt (points) | against gpo (points) "
             "| scorer requests | optimizer samples | optimizer tokens | wall (min) |", "|---|---|---|---|---|---|---|---|"]
    gpo = pooled(runs["gpo"], "final") if "gpo" in runs else None
    for m in methods:
        rows = runs[m]
        finals, initials = pooled(rows, "final"), pooled(rows, "initial")
        results = [r for row in rows for r in row["results"]]
        low, high = wilson(int(sum(finals)), len(finals))
        gains[m] = compare(initials, finals, seed=1)
        versus = "-"
        if m != "gpo" and gpo and len(gpo) == len(finals):
            versus_gpo[m] = compare(gpo, finals, seed=1)
            versus = versus_gpo[m].describe()
        lines.append(
            f"| {m} | {100 * sum(finals) / len(finals):.1f} ({100 * low:.1f}-{100 * high:.1f}) "
            f"| {gains[m].describe()} | {versus} "
            f"| {sum(r['scorer_requests'] for r in results)} | {sum(r['optimizer_samples'] for r in results)} "
            f"| {sum(r['optimizer_tokens'] for r in results):,} | {sum(row['wall_s'] for row in rows) / 60:.1f} |")
    return "\n".join(lines), gains, versus_gpo


def main(args) -> None:
    for m in args.methods:
        method_class(m)  # unknown names fail before anything runs
    runs = collect(args)
    n = len(pooled(runs[args.methods[0]], "initial"))
    shown, gains, versus_gpo = table(args.methods, runs)
    better = [m for m, g in gains.items() if g.significant and g.diff > 0]
    worse = [m for m, g in gains.items() if g.significant and g.diff < 0]
    apart = [m for m, g in versus_gpo.items() if g.significant]
    selection = "raced on eval" if args.selection == "race" else "each scored on the whole eval split"
    body = f"""Scorer {args.scorer_model}, optimizer {args.optimizer_model}; tasks {', '.join(args.tasks)}; splits capped
at train {args.train or 'all'} / eval {args.eval or 'all'} / test {args.test or 'all'}; seeds
{', '.join(map(str, args.seeds))}; a search budget of {args.budget} scorer requests per task for every method
(counted by gpo, the initial prompt's eval scoring included); gpo and its baselines: at most {args.epochs} epochs
of batch {args.batch}, {args.candidates} candidates per step, candidates {selection}. Scorer ≤
{args.scorer_max_tokens} tokens, second round {'on' if args.second_round else 'off'}. Every final prompt is scored
by gpo's Evaluator on the same {n} pooled test examples (tasks × seeds; the seeds reuse the same examples, so
intervals are somewhat narrower than independent examples would give). "not significant" where p ≥ 0.05.

{shown}

Reading, from the table: a significant test gain over the initial prompt for {len(better)} of {len(gains)}
methods ({', '.join(better) or 'none'}), a significant loss for {len(worse)} ({', '.join(worse) or 'none'});
{len(apart)} of {len(versus_gpo)} differ significantly from gpo ({', '.join(apart) or 'none'})."""
    print(body)
    if not args.no_record:
        record(args.section, args.title, body)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--methods", nargs="+", default=["gpo", *PEERS, *GPO_AND_BASELINES[1:]])
    p.add_argument("--tasks", nargs="+", default=["bbh:navigate", "mmlu:high_school_geography"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--data-dir", default=DATA_DIR)
    p.add_argument("--train", type=int, default=4, help="cap (0: whole split)")
    p.add_argument("--eval", type=int, default=8)
    p.add_argument("--test", type=int, default=16)
    p.add_argument("--budget", type=int, default=48, help="scorer requests per task for each search")
    p.add_argument("--selection", choices=["race", "full"], default="race")
    p.add_argument("--race-block", type=int, default=8)
    p.add_argument("--epochs", type=int, default=4, help="upper bound on steps; the budget usually ends the search first")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--candidates", type=int, default=2)
    p.add_argument("--scorer-max-tokens", type=int, default=32)
    p.add_argument("--second-round", action=argparse.BooleanOptionalAction, default=False)
    p.add_argument("--optimizer-max-tokens", type=int, default=64)
    p.add_argument("--shots", type=int, default=3)
    add_model_options(p)
    p.add_argument("--cache", default="bench/.cache/peers.sqlite")
    p.add_argument("--runs", default="bench/.cache/peers_runs")
    p.add_argument("--results", default="bench/.cache/peers_results.jsonl")
    p.add_argument("--no-record", action="store_true", help="print only; do not write BENCHMARKS.md")
    p.add_argument("--section", default="peers-lite")
    p.add_argument("--title", default="Peers side by side on one engine, lite scale (issue 15)")
    main(p.parse_args())
