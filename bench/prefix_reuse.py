"""Scoring work with prefix reuse against today's path (issue 24), both in one run.

The embedded backend reads each prompt whole (``--scorer-prefix-cache 0``, today's path)
or keeps KV states of prompt prefixes so that the second round continues the first and
a split's shared start is read once (the default). For each case the bench measures
examples/s, prompt tokens the model evaluated per example and generated tokens per
example on both paths, and the physical floor: the model's raw rates, measured in the
same run (a 256-token prompt read in one decode call; tokens generated one at a time),
applied to the work that is necessary (every distinct prompt prefix read once, an
earlier answer not read again) and to the generated tokens.

Cases: bbh/navigate (32 eval examples, "Let's think step by step.", two rounds, as
``gpo optimize --dataset bbh`` scores: up to 256 then 100 new tokens); the same with 3
demonstrations; the quickstart (``gpo optimize``) as a whole, each path in a fresh run
directory (no response cache), and ``--scorer-parallel 4`` with reuse for the default.

    python -m bench.prefix_reuse [--n 32] [--no-quickstart]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._record import DATA_DIR, cpu_name, record

from gpo.llm import LocalLLM, Request
from gpo.llm.local import batch_decoder, load_llama
from gpo.llm.prefix import DEFAULT_MB
from gpo.run.build import build_evaluator
from gpo.scoring.render import PromptFormat
from gpo.run.sources import from_sources
from gpo.tasks import load_gpo_task

ROOT = Path(__file__).resolve().parents[1]
INSTRUCTION = "Let's think step by step."
TARGET_FLOOR, TARGET_ZERO, TARGET_DEMOS, TARGET_QUICK = 1.15, 1.4, 2.0, 0.65


class Recording(LocalLLM):
    """The embedded backend, remembering every request it answers and what came back."""

    def __post_init__(self):
        super().__post_init__()
        self.seen: list[tuple[Request, list]] = []

    async def _sample(self, request, indices):
        samples = await super()._sample(request, indices)
        self.seen.append((request, samples))
        return samples


def raw_rates(llm: LocalLLM) -> tuple[float, float]:
    """(prompt tokens/s read in one decode call, generated tokens/s one at a time)."""
    model, worker = load_llama(Path(llm.path), llm.n_ctx)
    text = (ROOT / "README.md").read_text()
    tokens = model.tokenize(text.encode(), add_bos=True, special=True)[:256]

    def measure():
        model.reset()
        model.eval(tokens[:32])  # warm
        model.reset()
        start = time.perf_counter()
        model.eval(tokens)
        prompt = len(tokens) / (time.perf_counter() - start)
        start = time.perf_counter()
        for token in tokens[:64]:
            model.eval([token])
        generated = 64 / (time.perf_counter() - start)
        model.reset()
        return prompt, generated

    return worker.submit(measure).result()


def necessary_prompt_tokens(llm: Recording) -> int:
    """Every distinct prompt prefix read once, less the earlier answers a second round
    repeats (they were generated, not read)."""
    decoder = batch_decoder(Path(llm.path), llm.n_ctx, 1, prefix_mb=DEFAULT_MB)  # the reuse runs' own: its tokenizer
    prefixes: set[int] = set()
    answers = 0
    for request, _ in llm.seen:
        tokens = decoder.reader.tokens_of(request)[0]
        key = 0
        for token in tokens:
            key = hash((key, token))
            prefixes.add(key)
        if request.continues:
            answer = [c for r, c in request.messages if r == "assistant"][-1]
            answers += len(decoder.model.tokenize(answer.encode(), add_bos=False, special=False))
    return len(prefixes) - answers


def evaluator_case(task, data_dir: str, fmt_demos: int, prefix_mb: int, parallel: int = 1) -> dict:
    spec = from_sources(overrides=dict(dataset="bbh", task=task.name, data_dir=data_dir, second_round=True), check_models=False)
    llm = Recording(prefix_cache=prefix_mb, parallel=parallel)
    evaluator = build_evaluator(spec, llm)
    evaluator.format = PromptFormat(few_shot=fmt_demos)
    evaluator.second_round = True
    if prefix_mb:
        batch_decoder(Path(llm.path), llm.n_ctx, parallel, prefix_mb=prefix_mb).prefix.clear()
    start = time.perf_counter()
    ev = asyncio.run(evaluator.evaluate(task, INSTRUCTION, "eval"))
    wall = time.perf_counter() - start
    u = llm.usage
    return dict(wall=wall, n=ev.n, accuracy=ev.score, evaluated=u.prompt_tokens - u.cached_prompt_tokens,
                prompt=u.prompt_tokens, generated=u.completion_tokens, necessary=necessary_prompt_tokens(llm),
                calls=u.calls, records=[(r.raw_answer, r.raw_answer_second_round) for r in ev.records])


def quickstart(prefix_mb: int) -> float:
    """Wall time of ``gpo optimize`` (the quickstart) in a fresh run directory."""
    with tempfile.TemporaryDirectory(prefix="gpo-quick-") as tmp:
        env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{os.environ.get('PYTHONPATH', '')}"}
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "from gpo.cli import main; main()", "optimize", "--run-dir",
                        f"{tmp}/run", "--scorer-prefix-cache", str(prefix_mb), "--optimizer-prefix-cache",
                        str(prefix_mb)], cwd=tmp, env=env, check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - start


def row(name: str, r: dict, rates: tuple[float, float]) -> str:
    floor, n = floor_of(r, rates), r["n"]
    return (f"| {name} | {r['wall']:.1f} s | {n / r['wall']:.3f} | {r['evaluated'] / n:.0f} | "
            f"{r['necessary'] / n:.0f} | {r['generated'] / n:.0f} | {floor:.1f} s | {r['wall'] / floor:.2f}× |")


def main(args) -> None:
    task = load_gpo_task(args.data_dir, "bbh", "navigate")
    task.splits["eval"] = task.splits["eval"][: args.n]
    rates = raw_rates(LocalLLM())
    cases = {}
    for demos in (0, 3):
        for prefix_mb in (0, 512):  # today's path first
            cases[(demos, prefix_mb)] = evaluator_case(task, args.data_dir, demos, prefix_mb)
            print(demos, prefix_mb, {k: v for k, v in cases[(demos, prefix_mb)].items() if k != "records"}, flush=True)
    batched = evaluator_case(task, args.data_dir, 0, 512, parallel=4)
    print("parallel 4", {k: v for k, v in batched.items() if k != "records"}, flush=True)
    quick = {mb: quickstart(mb) for mb in (0, 512)} if args.quickstart else {}
    print("quickstart", quick, flush=True)

    speed = {d: (cases[(d, 512)]["n"] / cases[(d, 512)]["wall"]) / (cases[(d, 0)]["n"] / cases[(d, 0)]["wall"])
             for d in (0, 3)}
    same = {d: sum(a == b for a, b in zip(cases[(d, 0)]["records"], cases[(d, 512)]["records"])) for d in (0, 3)}
    lines = [
        f"bbh/navigate, {args.n} eval examples, \"{INSTRUCTION}\", embedded SmolLM2-135M, greedy, two rounds "
        "(up to 256, then 100 new tokens), no response cache. Raw rates measured in this run: "
        f"{rates[0]:.0f} prompt tokens/s read in one decode call, {rates[1]:.1f} generated tokens/s. "
        "Floor = necessary prompt tokens / prompt rate + generated tokens / generation rate; "
        "necessary prompt tokens read every distinct prompt prefix once and no earlier answer again.",
        "",
        "| case | wall time | examples/s | prompt tokens evaluated / example | necessary / example | "
        "generated / example | floor | wall / floor |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for d, label in ((0, "zero-shot"), (3, "3 demonstrations")):
        lines.append(row(f"{label}, today's path (`--scorer-prefix-cache 0`)", cases[(d, 0)], rates))
        lines.append(row(f"{label}, prefix reuse", cases[(d, 512)], rates))
    lines.append(row("zero-shot, prefix reuse, `--scorer-parallel 4`", batched, rates))
    lines += ["", f"Prefix reuse against today's path: {speed[0]:.2f}× examples/s zero-shot, {speed[3]:.2f}× with "
              f"3 demonstrations; records (both rounds' texts) identical on {same[0]} of {args.n} and {same[3]} of "
              f"{args.n} examples (the one-time change of splitting prompts into 32-token blocks)."]
    par_ratio = (batched["n"] / batched["wall"]) / (cases[(0, 512)]["n"] / cases[(0, 512)]["wall"])
    lines.append(f"`--scorer-parallel 4` with prefix reuse: {par_ratio:.2f}× the examples/s of one at a time "
                 f"({'it pays' if par_ratio >= 1.1 else 'it does not pay'} on this machine's {os.cpu_count()} cores).")
    targets = [
        (f"prefix reuse within {TARGET_FLOOR}× of its floor (zero-shot {cases[(0, 512)]['wall'] / floor_of(cases[(0, 512)], rates):.2f}×, "
         f"demonstrations {cases[(3, 512)]['wall'] / floor_of(cases[(3, 512)], rates):.2f}×)",
         max(cases[(d, 512)]["wall"] / floor_of(cases[(d, 512)], rates) for d in (0, 3)) <= TARGET_FLOOR),
        (f"≥ {TARGET_ZERO}× examples/s zero-shot with two rounds ({speed[0]:.2f}×)", speed[0] >= TARGET_ZERO),
        (f"≥ {TARGET_DEMOS}× with 3 demonstrations ({speed[3]:.2f}×)", speed[3] >= TARGET_DEMOS),
    ]
    if quick:
        share = quick[512] / quick[0]
        lines += ["", "| the quickstart (`gpo optimize`, fresh run directory) | wall time |", "|---|---|",
                  f"| today's path (`--scorer-prefix-cache 0 --optimizer-prefix-cache 0`) | {quick[0]:.0f} s |",
                  f"| prefix reuse (the default) | {quick[512]:.0f} s |", "",
                  f"The quickstart with prefix reuse takes {100 * share:.0f}% of today's wall time."]
        targets.append((f"the quickstart ≤ {100 * TARGET_QUICK:.0f}% of today's ({100 * share:.0f}%)", share <= TARGET_QUICK))
    lines.append(f"\nCPU: {cpu_name()}.")
    record("prefix-reuse", "Scoring work: prefix reuse against today's path (issue 24)", "\n".join(lines), targets)


def floor_of(r: dict, rates: tuple[float, float]) -> float:
    return r["necessary"] / rates[0] + r["generated"] / rates[1]


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--data-dir", default=DATA_DIR)
    p.add_argument("--n", type=int, default=32)
    p.add_argument("--no-quickstart", dest="quickstart", action="store_false")
    main(p.parse_args())
