"""Where the embedded scorer (SmolLM2-135M-Instruct, greedy) has real skill: on tasks with
a closed set of answers, the empty prompt and "Let's think step by step." beside the best
constant answer (gpo.scoring.constant), each paired against it on the same examples, with
the prompt's most frequent answer; and the same with 3 demonstrations from train. A score that only equals the majority answer's share
is a model answering one thing, not skill; this is how tasks are chosen for showing a gain.

    python -m bench.scorer_baselines [--data-dir ../shared/data/gpo] [--max-eval 48] [--split eval]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time

from bench._record import DATA_DIR, record

from gpo.llm import LocalLLM, ResponseCache
from gpo.scoring import Evaluator
from gpo.scoring.constant import beats_constant, measure
from gpo.scoring.demos import with_demos
from gpo.scoring.stats import Comparison
from gpo.tasks import load_gpo_task

TASKS = ["bbh:navigate", "bbh:sports_understanding", "bbh:boolean_expressions", "bbh:causal_judgement",
         "bbh:web_of_lies", "bbh:formal_fallacies", "bbh:hyperbaton", "bbh:movie_recommendation",
         "mmlu:high_school_biology", "mmlu:marketing", "wsc"]
COT = "Let's think step by step."
LABELS = ["empty prompt", COT, f"{COT} + 3 train demonstrations"]


def prompts(task, seed: int) -> list[str]:
    """The empty prompt, zero-shot CoT, and CoT shown 3 demonstrations drawn at random from train."""
    return ["", COT, with_demos(COT, random.Random(seed).sample(task.split("train"), 3))]


def cell(ev, measured) -> str:
    versus = Comparison.from_dict(measured["vs_constant"])
    top, share = measured["answers"][0]
    mark = "**" if beats_constant(measured) else ""
    return (f"{mark}{100 * ev.score:.1f}{mark} ({100 * versus.diff:+.1f}, p {versus.p:.2f}; "
            f"{top!r} {100 * share:.0f}%)")


async def main(args) -> None:
    scorer = LocalLLM(cache=ResponseCache(args.cache))
    evaluator = Evaluator(scorer, max_tokens=args.max_tokens, second_round=args.second_round)
    rows, examples, start, skilled = [], 0, time.time(), []
    for spec in args.tasks:
        dataset, _, name = spec.partition(":")
        task = load_gpo_task(args.data_dir, dataset, name or None)
        task.splits[args.split] = task.splits[args.split][: args.max_eval]
        cells, constant = [], None
        for label, prompt in zip(LABELS, prompts(task, args.seed)):
            ev = await evaluator.evaluate(task, prompt, args.split)
            measured = measure(task, ev)
            examples += ev.n
            constant = measured
            cells.append(cell(ev, measured))
            if beats_constant(measured):
                skilled.append(f"{task.id} ({label})")
        rows.append(f"| {task.id} | {ev.n} | {constant['constant']!r} {100 * constant['constant_score']:.1f} | "
                    + " | ".join(cells) + " |")
        print(rows[-1], flush=True)
    wall = time.time() - start
    u = scorer.usage
    body = "\n".join([
        f"Scorer: SmolLM2-135M-Instruct (Q4_1, llama.cpp, greedy), chat template, second round "
        f"{'on' if args.second_round else 'off'}, first round ≤ "
        f"{args.max_tokens} tokens; the first {args.max_eval} examples of each task's {args.split} split. Each prompt's "
        f"cell: accuracy (bold where significantly better than the best constant answer at p < 0.05 without "
        f"collapsing to one answer), its paired difference from the constant answer with the exact McNemar p, "
        f"and its most frequent parsed answer with that answer's share. The demonstrations (seed {args.seed}) "
        f"are shown as chat turns with their gold answers.", "",
        "| task | n | best constant answer | " + " | ".join(LABELS) + " |", "|---" * (3 + len(LABELS)) + "|", *rows, "",
        f"Prompts significantly better than the best constant answer: {len(skilled)} of {len(rows) * len(LABELS)}"
        + (f" ({', '.join(skilled)})." if skilled else "."), "",
        f"Wall time {wall / 60:.1f} min for {examples} example scorings ({u.calls} model calls, {u.cache_hits} cache hits).",
    ])
    record("scorer-baselines", "Embedded scorer against the constant answer (issues 3, 23)", body)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--data-dir", default=DATA_DIR)
    p.add_argument("--max-eval", type=int, default=48)
    p.add_argument("--split", default="eval", choices=["train", "eval", "test"])
    p.add_argument("--max-tokens", type=int, default=128)
    p.add_argument("--seed", type=int, default=0, help="draws the demonstrations")
    p.add_argument("--tasks", nargs="+", default=TASKS, help="dataset:task, e.g. bbh:navigate")
    p.add_argument("--second-round", action="store_true", help="ask chat scorers again for the bare answer")
    p.add_argument("--cache", default="bench/.cache/scorer.sqlite")
    asyncio.run(main(p.parse_args()))
