"""Instruction induction (APE's benchmark, issue 39): can gpo's searches find, from "Let's think
step by step.", a prompt as good as the one a person wrote?

Per task and seed, on the same test examples: the initial prompt, the best constant answer
(where the answers are a closed set; "-" where they are open, so a constant scores about 0),
the first human-written instruction alone and with the final prompt's own demonstrations
(``gpo.scoring.reference``: no search reads it), and each search's final prompt at an equal
search budget of scorer requests per task, with its paired test gain over the initial prompt and
its difference from the human instruction with the same demonstrations (McNemar's exact test,
95% intervals). Targets (issue 39): on at least 6 of the tasks the test gain is significant
against the initial prompt and the constant answer in every seed, and on at least 4 the final
prompt is not significantly worse than the human instruction with the same demonstrations.

Results are kept as each run finishes (keyed by a fingerprint of its settings); a rerun skips
finished runs. The quickstart's scale (eval 32, test 40, 160 search requests, the embedded model
in both roles):

    python -m bench.induction --seeds 0

The issue's scale: ``--seeds 0 1 2 --methods demos bootstrap gpo gpo+demos ape --budget 500
--eval 100 --test 100`` (hours on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

from bench._record import record
from bench.compare import add_model_options, build_spec, planned, run_plan

from gpo.scoring.constant import beats_constant
from gpo.scoring.demos import describe, split_demos
from gpo.scoring.stats import Comparison
from gpo.tasks.induction import DATASET, TASKS

DATA_DIR = str(Path(__file__).resolve().parents[2] / "shared" / "data" / DATASET)


def collect(args) -> dict[str, dict]:
    plan = []
    for method in args.methods:
        name_of, options = method_and_options(method)
        for seed in args.seeds:
            for name in args.tasks:
                spec = build_spec(args, name_of, seed, DATASET, [name], False)
                spec.scoring.second_round = None  # zero-shot chat prompts are asked again for the bare answer
                spec.method_options = ({"k": args.k} if name_of in ("demos", "bootstrap", "gpo+demos") else {}) | options
                if args.constrained_replies:
                    spec.config = dataclasses.replace(spec.config, constrained_replies=True)
                plan.append(planned(args, f"{method}|{seed}|{name}", {"method": method, "seed": seed, "task": name}, spec))
    done = run_plan(args.results, plan)
    return {key: done[key] for key, _, _ in plan}


def method_and_options(label: str) -> tuple[str, dict]:
    """'gpo+demos:order=demos-first,demo_steps=1' -> ('gpo+demos', {'order': 'demos-first', 'demo_steps': '1'})."""
    name, _, options = label.partition(":")
    return name, dict(pair.split("=", 1) for pair in options.split(",") if pair)


def rewritten(method: str, runs: dict[str, dict]) -> str:
    """For a search that writes instructions: in how many runs the final prompt's instruction is
    one the optimizer wrote (not the initial one)."""
    if method_and_options(method)[0] in ("demos", "bootstrap"):
        return ""
    finals = [(split_demos(r["final_prompt"])[0], r["initial_prompt"]) for run in runs.values()
              if run["method"] == method for r in run["results"]]
    kept = sum(1 for final, initial in finals if final != split_demos(initial)[0])
    return f" The final prompt's instruction is one the optimizer wrote in {kept} of {len(finals)} runs."


def gain(comparison: dict | None) -> str:
    return Comparison.from_dict(comparison).describe() if comparison else "-"


def verdicts(r: dict) -> tuple[bool, bool]:
    """(a significant test gain over the initial prompt and the constant answer; that gain, and not
    significantly worse than the human instruction with the same demonstrations: the human
    reference reached by a search that found something, not two prompts that both fail)."""
    test = r.get("test_comparison")
    up = bool(test) and Comparison.from_dict(test).significant and Comparison.from_dict(test).diff > 0
    constant = (r.get("constant") or {}).get("test")
    up = up and beats_constant(constant["final"] if constant else None)
    human = r.get("human") or {}
    reference = human.get("with_demos") or human.get("alone")
    versus = Comparison.from_dict(reference["prompt_vs_it"]) if reference else None
    return up, up and bool(versus) and not (versus.significant and versus.diff < 0)


def main(args) -> None:
    start = time.time()
    runs = collect(args)
    rows, gains, matches = [], {}, {}
    for run in runs.values():
        for r in run["results"]:
            human = r.get("human") or {}
            constant = (r.get("constant") or {}).get("test")
            up, level = verdicts(r)
            gains.setdefault((run["method"], r["task"]), []).append(up)
            matches.setdefault((run["method"], r["task"]), []).append(level)
            with_demos = human.get("with_demos")
            rows.append(
                f"| {r['task']} | {run['seed']} | {run['method']} | {100 * r['initial_test']:.1f} | "
                f"{(repr(constant['final']['constant']) + ' ' + format(100 * constant['final']['constant_score'], '.1f')) if constant else '-'} | "
                f"{100 * human['alone']['score']:.1f} | "
                f"{format(100 * with_demos['score'], '.1f') if with_demos else '-'} | "
                f"{100 * r['final_test']:.1f} {describe(r['final_prompt'])} | {gain(r.get('test_comparison'))} | "
                f"{gain((with_demos or human.get('alone') or {}).get('prompt_vs_it'))} |")
    methods = args.methods
    up_tasks = {m: sum(1 for (mm, _), v in gains.items() if mm == m and all(v)) for m in methods}
    level_tasks = {m: sum(1 for (mm, _), v in matches.items() if mm == m and all(v)) for m in methods}
    body = "\n".join([
        f"Scorer and optimizer: the embedded SmolLM2-135M-Instruct (greedy scoring, at most {args.scorer_max_tokens} "
        f"tokens a reply, asked again for the bare answer when zero-shot); per task the first {args.eval} eval and "
        f"{args.test} test examples, all of train; {args.budget} search requests per task; k = {args.k} "
        f"demonstrations; seeds {', '.join(map(str, args.seeds))}. Scores are execution accuracy (%) on test. "
        f"\"human\": the task's first human-written instruction, alone and with the final prompt's own "
        f"demonstrations; no search reads it.", "",
        "| task | seed | search | initial | best constant answer | human | human + the final's demos | final "
        "| gain over the initial prompt | final against human (+ demos) |",
        "|---|---|---|---|---|---|---|---|---|---|", *rows, "",
        *(f"{m}: a significant test gain over the initial prompt and the constant answer in every seed on "
          f"{up_tasks[m]} of {len(args.tasks)} tasks; such a gain, and not significantly worse than the human "
          f"instruction with the same demonstrations, on {level_tasks[m]}.{rewritten(m, runs)}" for m in methods), "",
        f"Wall time {sum(run['wall_s'] for run in runs.values()) / 60:.1f} min summed over these runs on this "
        f"machine (this invocation: {(time.time() - start) / 60:.1f} min; finished runs are reused on a rerun).",
    ])
    best_up, best_level = max(up_tasks.values()), max(level_tasks.values())
    full_scale = len(args.seeds) >= 3 and len(args.tasks) == len(TASKS)
    targets = [(f"a significant test gain on at least 6 of 12 tasks in every seed (best search: {best_up}"
                f"{'' if full_scale else '; fewer than 3 seeds or 12 tasks were run'})", best_up >= 6 and full_scale),
               (f"a significant gain, not significantly worse than the human instruction with the same "
                f"demonstrations, on at least 4 (best search: {best_level})", best_level >= 4 and full_scale)]
    if not args.no_record:
        record(args.section, args.title, body, targets)
    print(body)


def parser() -> argparse.ArgumentParser:
    """This bench's options (bench/curves.py runs the same searches with its own defaults)."""
    p = argparse.ArgumentParser()
    p.add_argument("--methods", nargs="+", default=["demos"])
    p.add_argument("--tasks", nargs="+", default=list(TASKS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--data-dir", default=DATA_DIR)
    p.add_argument("--train", type=int, default=0, help="cap (0: whole split)")
    p.add_argument("--eval", type=int, default=32)
    p.add_argument("--test", type=int, default=40)
    p.add_argument("--budget", type=int, default=160, help="scorer requests per task for each search")
    p.add_argument("--k", type=int, default=3, help="demonstrations per candidate (demonstration searches)")
    p.add_argument("--shots", type=int, default=3, help="(few-shot scoring is off here; build_spec needs it)")
    p.add_argument("--selection", choices=["race", "full"], default="race")
    p.add_argument("--race-block", type=int, default=8)
    p.add_argument("--epochs", type=int, default=2, help="upper bound on steps; the budget usually ends the search first")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--candidates", type=int, default=3)
    p.add_argument("--scorer-max-tokens", type=int, default=48)
    p.add_argument("--second-round", default=None)
    p.add_argument("--optimizer-max-tokens", type=int, default=96)
    p.add_argument("--constrained-replies", action="store_true", help="the optimizer's replies held to a grammar")
    add_model_options(p)
    p.add_argument("--cache", default="bench/.cache/induction.sqlite")
    p.add_argument("--runs", default="bench/.cache/induction_runs")
    p.add_argument("--results", default="bench/.cache/induction_results.jsonl")
    p.add_argument("--no-record", action="store_true", help="print only; do not write BENCHMARKS.md")
    p.add_argument("--section", default="induction")
    p.add_argument("--title", default="Instruction induction: gpo's searches against the human instruction (issue 39)")
    return p


if __name__ == "__main__":
    main(parser().parse_args())
