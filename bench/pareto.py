"""Beyond one best prompt (issue 37): the Pareto pool, with and without merges, and adoption by
the lower confidence bound, each against gpo's default (the best prompt, adopted when its gain on
eval is significant), at an equal search budget on 3 instruction-induction tasks and 3 seeds.

Every variant runs the same search, GPO with the headroom check before it, as ``gpo optimize``
runs it: where a probe (demonstrations, on the embedded model) is significantly better than the
initial prompt, the search starts there and GPO rewrites its instruction with the demonstrations
held, so candidates score differently example by example. Each variant changes one setting:

- ``best``: ``--pool best --adopt significant`` (gpo's defaults);
- ``pareto``: ``--pool pareto``, GPO's steps update a prompt drawn from the per-example frontier;
- ``pareto+merge``: the same with ``--merge 2``;
- ``lcb``: ``--adopt lcb``, the prompt with the highest Bonferroni-corrected lower bound.

Per run: the final prompt's test gain over the initial prompt (McNemar's exact test, 95% interval),
its tokens, and what the search spent; per variant against ``best``, the two final prompts paired
on the same test examples, pooled over tasks and seeds. The embedded model writes few usable
instructions (issue 38), so on it the variants differ little; the ranking means something with a
large optimizer behind an API:

    python -m bench.pareto
    python -m bench.pareto --optimizer-model NAME --optimizer-base-url URL --scorer-model NAME \\
        --scorer-base-url URL --no-record
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

from bench._record import Target, publish, wall_time
from bench.compare import build_spec, planned, run_plan
from bench.induction import parser

from gpo.scoring.stats import compare
from gpo.tasks.induction import DATASET

TASKS = ["singular_to_plural", "first_word_letter", "larger_animal"]
VARIANTS = {"best": {}, "pareto": {"pool": "pareto"}, "pareto+merge": {"pool": "pareto", "merge": 2},
            "lcb": {"adopt": "lcb"}}
METHOD, OPTIONS = "gpo", {}
COMMON = {"probe": True}  # gpo optimize's own start: the headroom check's best probe, where it is better


def collect(args) -> dict[str, dict]:
    plan = []
    for variant, changes in VARIANTS.items():
        for seed in args.seeds:
            for name in args.tasks:
                spec = build_spec(args, METHOD, seed, DATASET, [name], False)
                spec.scoring.second_round = None
                spec.method_options = dict(OPTIONS)
                spec.config = dataclasses.replace(spec.config, **COMMON, **changes)
                plan.append(planned(args, f"{variant}|{seed}|{name}", {"variant": variant, "seed": seed, "task": name},
                                    spec))
    done = run_plan(args.results, plan)
    for key, _, _ in plan:  # the merges each search made, from its checkpoint
        states = (Path(args.runs) / key.replace("|", "-")).glob("tasks/*/state.json")
        done[key]["merges"] = sum(len(json.loads(f.read_text()).get("merged", [])) for f in states)
    return {key: done[key] for key, _, _ in plan}


def row(run: dict, r: dict) -> str:
    test = r.get("test_comparison") or {}
    gain = (f"{100 * test['diff']:+.1f} [{100 * test['low']:+.0f}..{100 * test['high']:+.0f}], p = {test['p']:.3g}"
            if test else "-")
    return (f"| {run['task']} | {run['seed']} | {run['variant']} | {100 * r['initial_test']:.1f} → "
            f"{100 * r['final_test']:.1f} | {gain} | {r.get('final_tokens', '-')} | {r['scorer_requests']} | "
            f"{r['optimizer_samples']} | {run['merges']} |")


def targets(runs: dict[str, dict]) -> list[Target]:
    """Pareto and lcb no worse than best on the pooled test examples (they cost no more), and the
    merge mechanism used at least once where it was on."""
    out = []
    for variant in ("pareto", "lcb"):
        c = pooled(runs, variant)
        out.append((f"{variant} not significantly worse than best on test ({c.describe()})",
                    not (c.significant and c.diff < 0)))
    merges = sum(run["merges"] for run in runs.values() if run["variant"] == "pareto+merge")
    out.append((f"merges made with --merge 2 ({merges} in "
                f"{sum(1 for run in runs.values() if run['variant'] == 'pareto+merge')} runs)", merges > 0))
    return out


def pooled(runs: dict[str, dict], variant: str):
    """The variant's final prompts against best's, paired on the same test examples, pooled over runs."""
    ours, base = [], []
    for run in runs.values():
        if run["variant"] != variant:
            continue
        twin = next(o for o in runs.values() if o["variant"] == "best" and o["task"] == run["task"]
                    and o["seed"] == run["seed"])
        ours += run["results"][0]["test_scores"]["final"]
        base += twin["results"][0]["test_scores"]["final"]
    return compare(base, ours)


def versus_best(runs: dict[str, dict], variant: str) -> str:
    c = pooled(runs, variant)
    return (f"{variant} against best: {100 * c.mean_b:.1f} against {100 * c.mean_a:.1f} on {c.n} test examples pooled, "
            f"{c.describe()}.")


def main(args) -> None:
    start = time.time()
    runs = collect(args)
    rows = [row(run, r) for run in runs.values() for r in run["results"]]
    significant = {v: sum(1 for run in runs.values() if run["variant"] == v for r in run["results"]
                          if (r.get("test_comparison") or {}).get("significant") and r["test_comparison"]["diff"] > 0)
                   for v in VARIANTS}
    per = {v: sum(1 for run in runs.values() if run["variant"] == v) for v in VARIANTS}
    summary = [f"{v}: a significant test gain over the initial prompt in {significant[v]} of {per[v]} runs."
               for v in VARIANTS] + [versus_best(runs, v) for v in VARIANTS if v != "best"]
    body = "\n".join([
        f"Search: {METHOD} from \"Let's think step by step.\" with the headroom check before it (the search starts "
        f"from its best probe where that is significantly better, as `gpo optimize` does); scorer and optimizer {args.scorer_model}; per task the first {args.eval} eval and {args.test} "
        f"test examples and {args.train or 'all'} train; {args.budget} search requests per task for every variant; "
        f"seeds {', '.join(map(str, args.seeds))}. Variants: " + "; ".join(
            f"{v}: {', '.join(f'{k}={x}' for k, x in c.items()) or 'the defaults (pool best, adopt significant)'}"
            for v, c in VARIANTS.items()) + ". Test accuracy (%) of the initial and final prompts, the paired gain "
        "with its 95% interval and McNemar's p, the final prompt's tokens (4 bytes a token), and the scorer "
        "requests, optimizer samples and merges the search spent.", "",
        "| task | seed | variant | test (initial → final) | gain [95% CI], p | tokens | scorer requests | optimizer samples "
        "| merges |", "|---|---|---|---|---|---|---|---|---|", *rows, "", *summary, "",
        wall_time(runs.values(), start),
    ])
    publish(args, body, targets(runs))


if __name__ == "__main__":
    p = parser()
    p.set_defaults(tasks=TASKS, seeds=[0, 1, 2], train=16, eval=24, budget=400, results="bench/.cache/pareto_results.jsonl",
                   runs="bench/.cache/pareto_runs", section="pareto",
                   title="Beyond one best prompt: Pareto pool, merges and lcb adoption against the default (issue 37)")
    main(p.parse_args())
