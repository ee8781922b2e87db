"""Evaluation throughput (examples/s) through the Evaluator against the model's raw
speed on the same prompts (issue 3).

The Evaluator scores a BBH eval split (cache off) with the embedded model; then the
exact requests it sent (first round, then second round) are replayed directly on
llama-cpp-python, in the same order and with the same parameters.

    python -m bench.evaluator_throughput [--task navigate] [--n 24]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

from bench._record import DATA_DIR, record

from gpo.llm import LocalLLM, Request
from gpo.llm.local import load_llama
from gpo.scoring import Evaluator
from gpo.tasks import load_gpo_task


class Recording(LocalLLM):
    """The embedded backend, remembering every request it answers."""

    def __post_init__(self):
        super().__post_init__()
        self.seen: list[Request] = []

    async def _sample(self, request, indices):
        self.seen.append(request)
        return await super()._sample(request, indices)


def main(args) -> None:
    task = load_gpo_task(args.data_dir, "bbh", args.task)
    task.splits["eval"] = task.splits["eval"][: args.n]
    llm = Recording()
    model, worker = load_llama(Path(llm.path), llm.n_ctx)
    evaluator = Evaluator(llm, max_tokens=args.max_tokens)
    start = time.perf_counter()
    ev = asyncio.run(evaluator.evaluate(task, "Let's think step by step.", "eval"))
    through = time.perf_counter() - start

    def replay():  # on the model's own thread, as gpo runs it (another thread's OpenMP team would compete)
        for r in llm.seen:
            model.reset()
            model.create_chat_completion(messages=r.message_dicts(), temperature=0.0, max_tokens=r.max_tokens, seed=r.seed)

    start = time.perf_counter()
    worker.submit(replay).result()
    raw = time.perf_counter() - start
    reading = ("the model is the bottleneck (gpo's own work costs less than 10%)" if raw / through >= 0.9
               else f"gpo's own work costs {100 * (1 - raw / through):.0f}% of the wall time")
    body = f"""bbh/{args.task}, {ev.n} eval examples, "Let's think step by step.", embedded SmolLM2-135M, greedy,
first round ≤ {args.max_tokens} tokens then the second round ({len(llm.seen)} model calls), cache off.

| path | wall time | examples/s |
|---|---|---|
| Evaluator (render, two rounds, extraction, metric) | {through:.1f} s | {ev.n / through:.2f} |
| the same {len(llm.seen)} requests sent directly to llama-cpp-python | {raw:.1f} s | {ev.n / raw:.2f} |

Evaluator / raw = {raw / through:.3f} of the model's raw speed: {reading}."""
    record("evaluator-throughput", "Evaluator throughput (issue 3)", body)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--data-dir", default=DATA_DIR)
    p.add_argument("--task", default="navigate")
    p.add_argument("--n", type=int, default=24)
    p.add_argument("--max-tokens", type=int, default=128)
    main(p.parse_args())
