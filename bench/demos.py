"""Demonstrations against instruction search, beside the constant answer: can a search on
the embedded model find a prompt that is really better?

Rows, per task and seed, at an equal search budget of scorer requests per task: the best
constant answer on test (gpo.scoring.constant), the initial prompt ("Let's think step by
step.", zero-shot), GPO's instruction search (the default recipe), random search over
demonstration sets (``--method demos``), bootstrapped demonstrations (``--method
bootstrap``) and the joint search (``--method gpo+demos``: GPO's steps, then its best
instructions paired with demonstration sets, at random and by Optuna's TPE, raced). Every final prompt is scored on the whole test split by gpo's Evaluator, and
paired, example by example, against the initial prompt and against the constant answer
(McNemar's exact test, 95% intervals). Target: on at least half the tasks a method's test
gain is significant (p < 0.05) against both the initial prompt and the constant answer,
in every seed.

Results are kept as each run finishes (keyed by a fingerprint of all its settings); a
rerun skips finished runs. Lite scale, embedded SmolLM2 in both roles, 2 CPU cores:

    python -m bench.demos

The issue's full scale (4 tasks, 3 seeds, 500 search requests per task):

    python -m bench.demos --tasks bbh:navigate bbh:sports_understanding bbh:web_of_lies bbh:causal_judgement \\
        --seeds 0 1 2 --budget 500
"""

from __future__ import annotations

import argparse

from bench._record import DATA_DIR, record
from bench.compare import add_model_options, build_spec, by_dataset, planned, run_plan

from gpo.scoring.constant import beats_constant, verdict
from gpo.scoring.demos import describe
from gpo.scoring.stats import Comparison

METHODS = ["gpo", "demos", "bootstrap", "gpo+demos", "gpo+demos:tpe"]  # METHOD:SAMPLER for the joint search


def collect(args) -> dict[str, dict]:
    plan = []
    for row in args.methods:
        method, _, sampler = row.partition(":")
        for seed in args.seeds:
            for dataset, names in by_dataset(args.tasks).items():
                spec = build_spec(args, method, seed, dataset, names, False)
                if method != "gpo":
                    spec.method_options = {"k": args.k} | ({"sampler": sampler} if sampler else {})
                plan.append(planned(args, f"{row}|{seed}|{dataset}|{','.join(names)}",
                                    {"method": row, "seed": seed}, spec))
    done = run_plan(args.results, plan)
    return {key: done[key] for key, _, _ in plan}


def cell(comparison: dict | None) -> str:
    return Comparison.from_dict(comparison).describe() if comparison else "-"


def table(runs: dict[str, dict], args) -> tuple[str, list[str], int]:
    lines = ["| task | seed | row | test % | gain over the initial prompt | against the constant answer | "
             "search requests | final prompt |", "|---|---|---|---|---|---|---|---|"]
    met: dict[str, bool] = {}
    shown_initial = set()
    for row in runs.values():
        for r in row["results"]:
            task = f"{r['dataset']}/{r['task']}"
            test = (r.get("constant") or {}).get("test") or {}
            if (task, row["seed"]) not in shown_initial:
                shown_initial.add((task, row["seed"]))
                if test:
                    lines.append(f"| {task} | {row['seed']} | best constant answer {test['initial']['constant']!r} | "
                                 f"{100 * test['initial']['constant_score']:.1f} | | | | |")
                lines.append(f"| {task} | {row['seed']} | initial prompt | {100 * r['initial_test']:.1f} | | "
                             f"{cell(test.get('initial', {}).get('vs_constant'))} | | {describe(r['initial_prompt'])} |")
            final = test.get("final")
            won = bool(r["test_comparison"] and Comparison.from_dict(r["test_comparison"]).significant
                       and r["test_comparison"]["diff"] > 0 and final and beats_constant(final))
            key = f"{task} {row['method']}"
            met[key] = met.get(key, True) and won
            lines.append(f"| {task} | {row['seed']} | {row['method']} | {100 * r['final_test']:.1f} | "
                         f"{cell(r['test_comparison'])} | {verdict(final, 'test') if final else '-'} | "
                         f"{r['scorer_requests']} | {describe(r['final_prompt'])} |")
    wins = sorted(k for k, ok in met.items() if ok)
    tasks = {k.split(" ")[0] for k in wins}
    return "\n".join(lines), wins, len(tasks)


def main(args) -> None:
    runs = collect(args)
    text, wins, tasks_met = table(runs, args)
    n_tasks = len(args.tasks)
    body = f"""Scorer {args.scorer_model}, optimizer {args.optimizer_model}; tasks {', '.join(args.tasks)}; splits
capped at train {args.train or 'all'} / eval {args.eval or 'all'} / test {args.test or 'all'}; seeds
{', '.join(map(str, args.seeds))}; a search budget of {args.budget} scorer requests per task for every method; at
most {args.epochs} epochs of batch {args.batch}, {args.candidates} candidates per step, raced on eval;
demonstration searches show k = {args.k} train examples. Scorer ≤ {args.scorer_max_tokens} tokens, second round
{'on' if args.second_round else 'off'}. Every final prompt is scored on the test split and paired with the
initial prompt and with the best constant answer on the same examples (McNemar's exact test, 95% intervals);
"not significant" where p ≥ 0.05.

{text}

Significant on test against both the initial prompt and the constant answer, in every seed:
{', '.join(wins) if wins else 'none'} ({tasks_met} of {n_tasks} tasks).
"""
    target = (f"a test gain significant against both the initial prompt and the constant answer on at least "
              f"half the tasks: {tasks_met} of {n_tasks}", 2 * tasks_met >= n_tasks)
    record(args.section, args.title, body, targets=[target])


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", nargs="+", default=["bbh:navigate", "bbh:sports_understanding"])
    p.add_argument("--methods", nargs="+", default=METHODS)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--data-dir", default=DATA_DIR)
    p.add_argument("--train", type=int, default=0, help="cap on train (0: the whole split)")
    p.add_argument("--eval", type=int, default=0, help="cap on eval (0: the whole split)")
    p.add_argument("--test", type=int, default=0, help="cap on test (0: the whole split)")
    p.add_argument("--budget", type=int, default=240, help="search requests per task")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--candidates", type=int, default=4)
    p.add_argument("--k", type=int, default=3, help="demonstrations per candidate")
    p.add_argument("--shots", type=int, default=3)
    p.add_argument("--race-block", type=int, default=8)
    p.add_argument("--selection", default="race")
    p.add_argument("--scorer-max-tokens", type=int, default=48)
    p.add_argument("--optimizer-max-tokens", type=int, default=96)
    p.add_argument("--second-round", action="store_true")
    p.add_argument("--cache", default="bench/.cache/demos.sqlite")
    p.add_argument("--runs", default="bench/.cache/demos_runs")
    p.add_argument("--results", default="bench/.cache/demos.jsonl")
    p.add_argument("--section", default="demos-lite")
    p.add_argument("--title", default="Demonstrations against instruction search, beside the constant answer (issue 23)")
    add_model_options(p)
    main(p.parse_args())
