"""Accuracy of the embedded scorer (SmolLM2-135M-Instruct, greedy) with the empty
prompt and with "Let's think step by step." on eval splits of the paper's datasets:
the baseline every optimizer must beat. Also the Evaluator's throughput.

    python -m bench.scorer_baselines [--data-dir ../shared/data/gpo] [--max-eval 48]
"""

from __future__ import annotations

import argparse
import asyncio
import time

from bench._record import DATA_DIR, record

from gpo.llm import LocalLLM, ResponseCache
from gpo.scoring import Evaluator
from gpo.tasks import load_gpo_task

TASKS = [("bbh", t) for t in ("navigate", "object_counting", "word_sorting", "movie_recommendation",
                              "boolean_expressions", "date_understanding")] + \
        [("mmlu", s) for s in ("high_school_biology", "marketing", "abstract_algebra")] + \
        [("gsm8k", None), ("wsc", None), ("webnlg", None)]
PROMPTS = {"empty": "", "CoT": "Let's think step by step."}


async def main(args) -> None:
    scorer = LocalLLM(cache=ResponseCache(args.cache))
    evaluator = Evaluator(scorer, max_tokens=args.max_tokens)
    rows, examples, start = [], 0, time.time()
    for dataset, name in TASKS:
        task = load_gpo_task(args.data_dir, dataset, name)
        task.splits["eval"] = task.splits["eval"][: args.max_eval]
        scores = {}
        for label, prompt in PROMPTS.items():
            ev = await evaluator.evaluate(task, prompt, "eval")
            scores[label] = ev
            examples += ev.n
        metric = "ROUGE-L" if task.kind.value == "generation" else "accuracy"
        rows.append(f"| {task.id} | {scores['empty'].n} | {metric} | {100 * scores['empty'].score:.1f} ± {100 * scores['empty'].ci95:.1f} "
                    f"| {100 * scores['CoT'].score:.1f} ± {100 * scores['CoT'].ci95:.1f} |")
        print(rows[-1], flush=True)
    wall = time.time() - start
    u = scorer.usage
    body = "\n".join([
        f"Scorer: SmolLM2-135M-Instruct (Q4_1, llama.cpp, greedy), chat template, second round on, first round ≤ {args.max_tokens} tokens. "
        f"Eval split capped at {args.max_eval} examples. ± is a 95% normal-approximation interval.", "",
        "| task | n | metric | empty prompt | Let's think step by step. |", "|---|---|---|---|---|", *rows, "",
        f"Wall time {wall / 60:.1f} min for {examples} example scorings ({u.calls} model calls, {u.cache_hits} cache hits): "
        f"{examples / wall:.2f} examples/s, {u.completion_tokens / wall:.0f} generated tokens/s.",
    ])
    record("scorer-baselines", "Embedded scorer baselines (issue 3)", body)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--data-dir", default=DATA_DIR)
    p.add_argument("--max-eval", type=int, default=48)
    p.add_argument("--max-tokens", type=int, default=128)
    p.add_argument("--cache", default="bench/.cache/scorer.sqlite")
    asyncio.run(main(p.parse_args()))
