"""Scorer throughput at every scale (issue 12), each part measured in one run.

1. Batched decoding: examples/s through the Evaluator on the embedded model at
   ``--scorer-parallel`` 1, 4, 8 and 16 (bbh/navigate eval, CoT prompt, two rounds,
   greedy, cache off), and the share of records identical to parallel 1.
2. Ray pool scaling with a fixed-latency fake model (each replica answers one request at
   a time, 200 ms each) at 1, 2, 4 and 8 replicas: throughput against linear.
3. A real pool of 2 llama.cpp replicas (1 CPU each) against 1 replica, same split.

    python -m bench.scale [--n 32] [--skip-batched] [--skip-ray]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import time
from dataclasses import dataclass

from bench._record import DATA_DIR, record

from gpo.llm import LLM, LocalLLM, Request, Sample, build_llm
from gpo.scoring import Evaluator
from gpo.tasks import load_gpo_task

PROMPT = "Let's think step by step."


@dataclass
class FixedLatency(LLM):
    """Fake model for pool scaling: one request at a time, ``latency`` seconds each."""

    model: str = "fixed-latency"
    latency: float = 0.2

    @property
    def backend_id(self) -> str:
        return "fixed-latency"

    async def _sample(self, request, indices):
        if not hasattr(self, "_one"):
            self._one = asyncio.Lock()
        async with self._one:
            await asyncio.sleep(self.latency)
        return [Sample(f"answer {i}") for i in indices]


def score(llm: LLM, task, max_tokens: int):
    evaluator = Evaluator(llm, max_tokens=max_tokens)
    start = time.perf_counter()
    ev = asyncio.run(evaluator.evaluate(task, PROMPT, "eval"))
    return ev, time.perf_counter() - start


def batched(task, args) -> tuple[str, float]:
    """The table, and the best examples/s ratio over parallel 1."""
    rows, base, best = [], None, 0.0
    for parallel in (1, 4, 8, 16):
        ev, wall = score(LocalLLM(parallel=parallel), task, args.max_tokens)
        answers = [(r.raw_answer, r.raw_answer_second_round) for r in ev.records]
        base = base or (answers, ev.n / wall)
        same = sum(a == b for a, b in zip(answers, base[0]))
        rows.append(f"| {parallel} | {wall:.1f} s | {ev.n / wall:.2f} | {ev.n / wall / base[1]:.2f}× | "
                    f"{same}/{ev.n} | {100 * ev.score:.1f} |")
        best = max(best, ev.n / wall / base[1]) if parallel > 1 else best
        print(rows[-1], flush=True)
    return ("| --scorer-parallel | wall | examples/s | vs 1 | records equal to parallel 1 | accuracy % |\n"
            "|---|---|---|---|---|---|\n" + "\n".join(rows)), best


def generation_heavy() -> tuple[str, float]:
    """Long answers to short prompts (decoding, not prompt reading): the table, and the
    tokens/s ratio of parallel 16 over 1."""
    requests = [Request.chat(f"Write a short story about the number {i}.", max_tokens=128) for i in range(16)]
    rows, one = [], None
    for parallel in (1, 16):
        llm = LocalLLM(parallel=parallel)
        asyncio.run(llm.generate([Request.chat("Hello.", max_tokens=2)]))  # load
        start = time.perf_counter()
        out = asyncio.run(llm.generate(requests))
        wall = time.perf_counter() - start
        tokens = sum(c.samples[0].completion_tokens for c in out)
        one = one or tokens / wall
        rows.append(f"| {parallel} | {wall:.1f} s | {tokens} | {tokens / wall:.1f} | {tokens / wall / one:.2f}× |")
        print(rows[-1], flush=True)
    return ("| --scorer-parallel | wall | tokens generated | tokens/s | vs 1 |\n|---|---|---|---|---|\n"
            + "\n".join(rows)), tokens / wall / one


def ray_fake(requests: int) -> tuple[str, float]:
    """The table, and the efficiency against linear at 8 replicas."""
    from gpo.llm.ray_pool import ray_pool

    rows, one, efficiency = [], None, 0.0
    for replicas in (1, 2, 4, 8):
        pool = ray_pool("fake", functools.partial(FixedLatency, latency=0.2), replicas=replicas, num_cpus=0,
                        kind="fixed-latency")
        batch = [Request.chat(f"q{replicas}-{i}") for i in range(requests * replicas)]
        start = time.perf_counter()
        asyncio.run(pool.generate(batch))
        rate = len(batch) / (time.perf_counter() - start)
        one = one or rate
        efficiency = rate / (one * replicas)
        rows.append(f"| {replicas} | {len(batch)} | {rate:.2f} | {rate / one:.2f}× | {efficiency:.2f} |")
        print(rows[-1], flush=True)
        asyncio.run(pool.aclose())
    return ("| replicas | requests | requests/s | vs 1 | efficiency (vs linear) |\n|---|---|---|---|---|\n"
            + "\n".join(rows)), efficiency


def ray_llama(task, args) -> tuple[str, float]:
    """The table, and 2 replicas' examples/s over 1 replica's."""
    ev, wall = score(LocalLLM(), task, args.max_tokens)
    rows, one, ratio = [f"| in process, 2 threads (reference) | {wall:.1f} s | {ev.n / wall:.2f} | | |"], None, 0.0
    for replicas in (1, 2):
        pool = build_llm("embedded", replicas=replicas, replica_cpus=1)
        asyncio.run(pool.generate([Request.chat("Hello.", max_tokens=2)] * replicas))  # every replica loads its model
        ev, wall = score(pool, task, args.max_tokens)
        one = one or ev.n / wall
        ratio = ev.n / wall / one
        calls = " / ".join(str(u["calls"]) for u in pool.usage_by_member().values())
        rows.append(f"| {replicas} × 1 CPU | {wall:.1f} s | {ev.n / wall:.2f} | {ev.n / wall / one:.2f}× | {calls} |")
        print(rows[-1], flush=True)
        asyncio.run(pool.aclose())
    return ("| pool | wall | examples/s | vs 1 replica | requests per replica |\n|---|---|---|---|---|\n"
            + "\n".join(rows)), ratio


def main(args) -> None:
    task = load_gpo_task(args.data_dir, "bbh", args.task)
    task.splits["eval"] = task.splits["eval"][: args.n]
    parts = [f"bbh/{args.task}, {len(task.splits['eval'])} eval examples, \"{PROMPT}\", embedded SmolLM2-135M, "
             f"greedy, first round ≤ {args.max_tokens} tokens then the second round, cache off."]
    targets, readings = [], []
    if not args.skip_batched:
        table, best = batched(task, args)
        parts.append("**Batched decoding through the Evaluator** (one llama.cpp context, continuous batching):\n\n" + table)
        heavy, decode = generation_heavy()
        parts.append("**Batched decoding, generation-heavy** (16 requests \"Write a short story about the number "
                     "i.\", ≤ 128 tokens each, greedy; the model layer alone):\n\n" + heavy)
        targets.append((f"Evaluator examples/s at the best --scorer-parallel {best:.2f}× of parallel 1, ≥ 1.40×", best >= 1.4))
        readings.append(f"batching gave the Evaluator {best:.2f}× at best and generation-heavy decoding {decode:.2f}× "
                        f"at parallel 16")
    if not args.skip_ray:
        import ray

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
        fake, efficiency = ray_fake(args.fake_requests)
        parts.append("**Ray pool, fixed-latency fake** (200 ms a call, one call at a time per replica, "
                     f"{args.fake_requests} requests per replica; local Ray):\n\n" + fake)
        real, ratio = ray_llama(task, args)
        parts.append("**Ray pool, real llama.cpp replicas** on this 2-core machine (each replica one CPU and "
                     "one llama.cpp thread):\n\n" + real)
        ray.shutdown()
        targets.append((f"Ray pool efficiency at 8 fixed-latency replicas {efficiency:.2f}, ≥ 0.90", efficiency >= 0.9))
        readings.append(f"two real llama.cpp replicas on this machine gave {ratio:.2f}× one replica "
                        f"({'faster' if ratio > 1 else 'no faster'}: they share its cores)")
    if readings:
        parts.append("Reading, from the figures above: " + "; ".join(readings) + ".")
    record("scale", "Scorer throughput at scale: batched decoding and Ray pools (issue 12)", "\n\n".join(parts),
           targets=targets)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--data-dir", default=DATA_DIR)
    p.add_argument("--task", default="navigate")
    p.add_argument("--n", type=int, default=32)
    p.add_argument("--max-tokens", type=int, default=256)
    p.add_argument("--fake-requests", type=int, default=40)
    p.add_argument("--skip-batched", action="store_true")
    p.add_argument("--skip-ray", action="store_true")
    main(p.parse_args())
