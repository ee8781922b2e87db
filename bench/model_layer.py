"""Model-layer figures (issue 2):

1. orchestration overhead: 256 requests, concurrency 32, against a local
   OpenAI-compatible endpoint with a fixed 200 ms latency: wall time / ideal (1.6 s);
2. embedded model: generated tokens/s through gpo vs calling llama-cpp-python directly
   on the same prompts, and the process's peak memory;
3. cache: lookups per second on a 100k-entry cache.

    python bench/model_layer.py
"""

from __future__ import annotations

import asyncio
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _record import record  # noqa: E402
from fakes import ScriptedEndpoint  # noqa: E402  (a real HTTP server on 127.0.0.1, scripted answers)

from gpo.llm import LocalLLM, OpenAILLM, Request, ResponseCache, Sample, default_gguf_path  # noqa: E402
from gpo.llm.cache import cache_key  # noqa: E402


def orchestration(n=256, concurrency=32, latency=0.2, repeats=3) -> tuple[float, float, int]:
    ideal = n / concurrency * latency
    ratios = []
    with ScriptedEndpoint(latency=latency) as ep:
        for r in range(repeats):
            llm = OpenAILLM(model="m", base_url=ep.url, concurrency=concurrency)

            async def go():
                try:
                    return await llm.generate([Request.chat(f"q{r}-{i}") for i in range(n)])
                finally:
                    await llm.aclose()

            start = time.perf_counter()
            asyncio.run(go())
            ratios.append((time.perf_counter() - start) / ideal)
        peak = ep.max_in_flight
    return ideal, min(ratios), peak


PROMPTS = [
    "Explain why the sky is blue in two sentences.",
    "List three uses of a paperclip.",
    "If you follow these instructions, do you return to the starting point? Take 3 steps forward. Take 3 steps backward.",
    "Sort the following words alphabetically: List: pear apple fig banana",
    "What is 17 times 23? Think step by step.",
    "Write a haiku about autumn rain.",
]


def embedded_speed(max_tokens=96, rounds=3) -> tuple[float, float]:
    from llama_cpp import Llama

    raw = Llama(model_path=str(default_gguf_path()), n_ctx=8192, n_threads=2, verbose=False)
    msgs = [[{"role": "user", "content": p}] for p in PROMPTS]

    def direct():
        toks = 0
        start = time.perf_counter()
        for m in msgs:
            raw.reset()  # gpo re-evaluates every prompt from scratch; do the same here
            toks += raw.create_chat_completion(messages=m, temperature=0, max_tokens=max_tokens, seed=0)["usage"]["completion_tokens"]
        return toks / (time.perf_counter() - start)

    llm = LocalLLM()

    def through_gpo():
        llm.usage.completion_tokens = 0
        start = time.perf_counter()
        asyncio.run(llm.generate([Request.chat(p, max_tokens=max_tokens) for p in PROMPTS]))
        return llm.usage.completion_tokens / (time.perf_counter() - start)

    direct_tps, gpo_tps = [], []
    for _ in range(rounds):  # interleaved, best of rounds, to even out machine noise
        direct_tps.append(direct())
        gpo_tps.append(through_gpo())
    raw.close()
    return max(direct_tps), max(gpo_tps)


def cache_lookups(entries=100_000, lookups=20_000) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        cache = ResponseCache(Path(tmp) / "c.sqlite")
        keys = [cache_key("b", "m", {"messages": [["user", f"prompt {i}"]]}, 0) for i in range(entries)]
        start = time.perf_counter()
        with cache._lock:
            cache._db.execute("BEGIN")
            cache._db.executemany("INSERT INTO responses VALUES (?,?,?,?,?,?,?,?)",
                                  [(k, "b", "m", f"text {i}", "stop", 10, 5, 0.0) for i, k in enumerate(keys)])
            cache._db.execute("COMMIT")
        fill = time.perf_counter() - start
        sample = random.Random(0).sample(keys, lookups)
        start = time.perf_counter()
        for k in sample:
            assert cache.get(k) is not None
        single = lookups / (time.perf_counter() - start)
        start = time.perf_counter()
        for i in range(0, lookups, 64):
            cache.get_many(sample[i:i + 64])
        batched = lookups / (time.perf_counter() - start)
        cache.close()
    return single, batched


def main() -> None:
    ideal, ratio, peak = orchestration()
    direct_tps, gpo_tps = embedded_speed()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    single, batched = cache_lookups()
    body = f"""| figure | measured | goal |
|---|---|---|
| orchestration: 256 requests, concurrency 32, 200 ms endpoint: wall / ideal ({ideal:.1f} s) | {ratio:.3f} (peak {peak} in flight) | ≤ 1.10 |
| embedded model, generated tokens/s: direct llama-cpp-python | {direct_tps:.1f} | |
| embedded model, generated tokens/s: through gpo (cache off) | {gpo_tps:.1f} (ratio {gpo_tps / direct_tps:.3f}) | ratio ≥ 0.95 |
| peak memory of this process (both model copies loaded) | {rss_mb:.0f} MB | |
| cache lookups/s on a 100k-entry cache, one key per query | {single:,.0f} | |
| cache lookups/s on a 100k-entry cache, 64 keys per query (as `generate` does) | {batched:,.0f} | |

Orchestration is the best of 3 runs; token rates are the best of 3 interleaved rounds over the
same {len(PROMPTS)} prompts, greedy, ≤ 96 tokens each, both paths re-evaluating each prompt from scratch."""
    record("model-layer", "Model layer (issue 2)", body)


if __name__ == "__main__":
    main()
