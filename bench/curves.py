"""The gain per request (issue 36): what each scorer request of a search bought. For gpo, demos,
gpo+demos, APE and OPRO at an equal search budget on 3 instruction-induction tasks (where a prompt
moves the embedded model: BENCHMARKS.md "probe"), each run's curve as gpo records it
(``TaskResult.curve``): after the initial prompt's scoring and after each step, the scorer requests
the search had spent and the best eval score so far, with its 95% interval; and the requests to the
first significant gain over the initial prompt on eval (``requests_to_gain``), or none.

The searches are bench/induction.py's (same settings, same run cache):

    python -m bench.curves

A large model behind an API: add ``--optimizer-model NAME --optimizer-base-url URL`` (and the
scorer's), where the ranking of the methods means more than on the 135M model.
"""

from __future__ import annotations

import statistics
import time

from bench._record import publish, wall_time
from bench.induction import collect, parser

TASKS = ["singular_to_plural", "first_word_letter", "larger_animal"]
METHODS = ["gpo", "demos", "gpo+demos", "ape", "opro"]


def points(curve: list[dict]) -> str:
    """'requests: best eval % [95% interval]' after the initial scoring and after each step; steps
    that scored nothing (every proposal set aside before scoring) are counted, not repeated."""
    shown: list[list] = []
    for p in curve:
        if shown and shown[-1][0]["requests"] == p["requests"]:
            shown[-1][1] += 1
        else:
            shown.append([p, 0])
    return "; ".join(f"{p['requests']}: {100 * p['best']:.1f} [{100 * p['low']:.0f}..{100 * p['high']:.0f}]"
                     + (f" (then {idle} step{'s' if idle > 1 else ''} scoring nothing)" if idle else "")
                     for p, idle in shown)


def main(args) -> None:
    start = time.time()
    runs = collect(args)
    rows, reached = [], {m: [] for m in args.methods}
    for run in runs.values():
        for r in run["results"]:
            curve, first = r.get("curve") or [], r.get("requests_to_gain")
            reached[run["method"]].append(first)
            test = r.get("test_comparison")
            rows.append(f"| {r['task']} | {run['method']} | {curve[-1]['requests'] if curve else '-'} | "
                        f"{first if first is not None else 'none'} | {points(curve)} | "
                        f"{100 * r['initial_test']:.1f} → {100 * r['final_test']:.1f}"
                        f"{'' if not test else ', p = ' + format(test['p'], '.3g')} |")
    summary = []
    for m in args.methods:
        found = [x for x in reached[m] if x is not None]
        median = f", median {statistics.median(found):.0f} requests to it" if found else ""
        summary.append(f"{m}: a significant gain on eval in {len(found)} of {len(reached[m])} runs{median}.")
    body = "\n".join([
        f"Scorer and optimizer: the embedded SmolLM2-135M-Instruct (greedy scoring, at most {args.scorer_max_tokens} "
        f"tokens a reply); per task the first {args.eval} eval and {args.test} test examples; {args.budget} search "
        f"requests per task for every search; k = {args.k} demonstrations; seed {', '.join(map(str, args.seeds))}. "
        "\"curve\": after the initial prompt's scoring and after each step, the scorer requests spent so far and "
        "the best eval accuracy so far (%) with its 95% interval. \"to a gain\": the requests spent when the best "
        "prompt was first significantly better than the initial one on eval (paired test at the racing level), "
        "or none. Test: the initial and final prompts' test accuracy, with the paired test's p.", "",
        "| task | search | requests spent | to a gain | curve | test (initial → final) |",
        "|---|---|---|---|---|---|", *rows, "", *summary, "",
        wall_time(runs.values(), start, "finished runs are reused on a rerun, and requests bench/induction.py "
                                        f"already asked are answered from the shared response cache, {args.cache}"),
    ])
    publish(args, body)


if __name__ == "__main__":
    p = parser()
    p.set_defaults(methods=METHODS, tasks=TASKS, seeds=[0], results="bench/.cache/curves_results.jsonl",
                   runs="bench/.cache/curves_runs",
                   section="curves", title="The gain per request: five searches at an equal budget, 3 tasks (issue 36)")
    main(p.parse_args())
