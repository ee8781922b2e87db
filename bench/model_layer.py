"""Model-layer figures (issue 2):

1. orchestration overhead: 256 requests, concurrency 32, against a local
   OpenAI-compatible endpoint with a fixed 200 ms latency: wall time / ideal (1.6 s);
2. embedded model: generated tokens/s through gpo vs calling llama-cpp-python directly
   on the same prompts, and the process's peak memory;
3. cache: lookups per second on a 100k-entry cache.

    python -m bench.model_layer
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._record import record
from tests.fakes import ScriptedEndpoint  # a real HTTP server on 127.0.0.1, scripted answers

from gpo.llm import LocalLLM, OpenAILLM, Request, ResponseCache, default_gguf_path
from gpo.llm.cache import cache_key

ROOT = Path(__file__).resolve().parents[1]  # the benches run as `python -m bench.<name>` from here


def serve(latency: float) -> None:
    """Run the scripted endpoint in this process until killed (the benchmark's server side)."""
    with ScriptedEndpoint(latency=latency) as ep:
        print(ep.url, flush=True)
        time.sleep(3600)


def bare_sdk(url: str, n: int, concurrency: int) -> float:
    """The same load through the bare openai SDK with a semaphore: the floor gpo sits on."""
    from openai import AsyncOpenAI

    async def go():
        client = AsyncOpenAI(base_url=url, api_key="x", max_retries=0)
        limit = asyncio.Semaphore(concurrency)

        async def one(i):
            async with limit:
                await client.chat.completions.create(model="m", messages=[{"role": "user", "content": f"bare {i}"}])

        start = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        elapsed = time.perf_counter() - start
        await client.close()
        return elapsed

    return asyncio.run(go())


def orchestration(n=256, concurrency=32, latency=0.2, repeats=3) -> tuple[float, float, float]:
    """The endpoint runs in another process, so it does not share the client's GIL."""
    ideal = n / concurrency * latency
    server = subprocess.Popen([sys.executable, "-m", "bench.model_layer", "--serve", str(latency)], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    url = server.stdout.readline().strip()
    ratios, bare = [], []
    try:
        for r in range(repeats):
            bare.append(bare_sdk(url, n, concurrency) / ideal)
            llm = OpenAILLM(model="m", base_url=url, concurrency=concurrency)

            async def go():
                try:
                    return await llm.generate([Request.chat(f"q{r}-{i}") for i in range(n)])
                finally:
                    await llm.aclose()

            start = time.perf_counter()
            asyncio.run(go())
            ratios.append((time.perf_counter() - start) / ideal)
            assert llm.max_in_flight == concurrency
    finally:
        os.killpg(server.pid, signal.SIGKILL)
    return ideal, min(ratios), min(bare)


PROMPTS = [
    "Explain why the sky is blue in two sentences.",
    "List three uses of a paperclip.",
    "If you follow these instructions, do you return to the starting point? Take 3 steps forward. Take 3 steps backward.",
    "Sort the following words alphabetically: List: pear apple fig banana",
    "What is 17 times 23? Think step by step.",
    "Write a haiku about autumn rain.",
]


def embedded_path(path: str, max_tokens=96) -> dict:
    """Generated tokens/s for one path, in this (fresh) process: one warm-up pass, one timed."""
    if path == "direct":
        from llama_cpp import Llama

        raw = Llama(model_path=str(default_gguf_path()), n_ctx=8192, n_threads=2, verbose=False)

        def once():
            toks = 0
            for p in PROMPTS:
                raw.reset()  # gpo re-evaluates every prompt from scratch; do the same here
                toks += raw.create_chat_completion(messages=[{"role": "user", "content": p}], temperature=0,
                                                   max_tokens=max_tokens, seed=0)["usage"]["completion_tokens"]
            return toks
    else:
        llm = LocalLLM()

        def once():
            before = llm.usage.completion_tokens
            asyncio.run(llm.generate([Request.chat(p, max_tokens=max_tokens) for p in PROMPTS]))
            return llm.usage.completion_tokens - before
    once()
    start = time.perf_counter()
    tokens = once()
    return {"tps": tokens / (time.perf_counter() - start),
            "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def embedded_speed(rounds=3) -> tuple[float, float, float]:
    """Each path in its own process, alternating, best of ``rounds``."""
    best = {"direct": 0.0, "gpo": 0.0}
    rss = 0.0
    for _ in range(rounds):
        for path in ("direct", "gpo"):
            out = subprocess.run([sys.executable, "-m", "bench.model_layer", "--embedded", path], cwd=ROOT,
                                 capture_output=True, text=True, check=True)
            res = json.loads(out.stdout.strip().splitlines()[-1])
            best[path] = max(best[path], res["tps"])
            if path == "gpo":
                rss = max(rss, res["rss_mb"])
    return best["direct"], best["gpo"], rss


def cache_lookups(entries=100_000, lookups=20_000) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        cache = ResponseCache(Path(tmp) / "c.sqlite")
        keys = [cache_key("b", "m", {"messages": [["user", f"prompt {i}"]]}, 0) for i in range(entries)]
        with cache._lock:
            cache._db.execute("BEGIN")
            cache._db.executemany("INSERT INTO responses VALUES (?,?,?,?,?,?,?,?)",
                                  [(k, "b", "m", f"text {i}", "stop", 10, 5, 0.0) for i, k in enumerate(keys)])
            cache._db.execute("COMMIT")
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
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        return serve(float(sys.argv[2]))
    if len(sys.argv) == 3 and sys.argv[1] == "--embedded":
        print(json.dumps(embedded_path(sys.argv[2])))
        return
    ideal, ratio, bare = orchestration()
    direct_tps, gpo_tps, rss_mb = embedded_speed()
    single, batched = cache_lookups()
    body = f"""| figure | measured | goal |
|---|---|---|
| orchestration: 256 requests, concurrency 32, 200 ms endpoint: wall / ideal ({ideal:.1f} s), through gpo | {ratio:.3f} | ≤ 1.10 |
| the same load through the bare openai SDK (semaphore of 32, no cache, no retries): wall / ideal | {bare:.3f} | |
| gpo's own overhead: gpo / bare SDK | {ratio / bare:.3f} | |
| embedded model, generated tokens/s: direct llama-cpp-python | {direct_tps:.1f} | |
| embedded model, generated tokens/s: through gpo (cache off) | {gpo_tps:.1f} (ratio {gpo_tps / direct_tps:.3f}) | ratio ≥ 0.95 |
| peak memory of a process generating through gpo (embedded model loaded) | {rss_mb:.0f} MB | |
| cache lookups/s on a 100k-entry cache, one key per query | {single:,.0f} | |
| cache lookups/s on a 100k-entry cache, 64 keys per query (as `generate` does) | {batched:,.0f} | |

Orchestration: best of 3 runs, endpoint in a separate process, exactly 32 requests in flight at the peak.
Token rates: each path in a fresh process (warm-up pass, then a timed pass), alternating, best of 3, over the
same {len(PROMPTS)} prompts, greedy, ≤ 96 tokens each, both re-evaluating each prompt from scratch."""
    record("model-layer", "Model layer (issue 2)", body, targets=[
        (f"orchestration wall / ideal {ratio:.3f} ≤ 1.10", ratio <= 1.10),
        (f"tokens/s through gpo / direct {gpo_tps / direct_tps:.3f} ≥ 0.95", gpo_tps / direct_tps >= 0.95),
    ])


if __name__ == "__main__":
    main()
