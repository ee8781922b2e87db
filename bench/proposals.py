"""Usable proposals with and without constrained replies: of the optimizer's samples that
should each be a new prompt, how many are (parsed, new, within the budgets, not a copy of
the meta-prompt)? Measured by the real search loop (GPO's recipe) on the embedded
SmolLM2-135M as the optimizer, in process (a grammar) and behind a real local
``llama_cpp.server`` (structured output), each with ``constrained_replies`` off and on.
The scorer is the embedded model on a few examples: only the proposals are measured.

    python -m bench.proposals [--seeds 0 1] [--train 32] [--epochs 2] [--candidates 4]
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import subprocess
import sys
import time
import urllib.request

from bench._record import fingerprint, record

from gpo.api import ModelSpec, RunSpec, ScoringSpec, TaskSpec, optimize
from gpo.config import preset
from gpo.llm import default_gguf_path
from gpo.scoring.stats import wilson

# `python -m llama_cpp.server`, with the embedded backend's guard against llama.cpp's AMX kernels
SERVER_MAIN = ("from gpo.llm.local import avoid_amx_kernels; avoid_amx_kernels(); import runpy; "
               "runpy.run_module('llama_cpp.server', run_name='__main__', alter_sys=True)")


@contextlib.contextmanager
def llama_server():
    """A real llama.cpp server on 127.0.0.1 serving the embedded model's GGUF; its /v1 URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-c", SERVER_MAIN, "--model", str(default_gguf_path()), "--host",
                             "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--model_alias", "smollm2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(url + "/models", timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise SystemExit("llama_cpp.server did not start")
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def spec(args, seed: int, constrained: bool, optimizer: ModelSpec) -> RunSpec:
    cfg = preset("gpo", seed=seed, num_search_epochs=args.epochs, opt_batch_size=8,
                 num_generated_instructions_in_each_step=args.candidates, optimizer_max_tokens=args.optimizer_max_tokens,
                 constrained_replies=constrained, train_probe=False)
    sizes = {"train": args.train, "eval": args.eval, "test": args.eval, "format": 5, "few_shot": 5}
    return RunSpec(tasks=TaskSpec(source="synthetic", tasks=["navigate"], sizes=sizes, seed=seed), config=cfg,
                   optimizer=optimizer, scorer=ModelSpec("embedded"), scoring=ScoringSpec(max_tokens=32),
                   cache=args.cache)


def main(args) -> None:
    rows, shares, start = [], {}, time.time()
    with llama_server() as url:
        backends = {"embedded, in process (grammar)": ModelSpec("embedded"),
                    "llama_cpp.server endpoint (JSON schema)": ModelSpec("smollm2", base_url=url)}
        for backend, model in backends.items():
            for constrained in (False, True):
                proposed = usable = 0
                for seed in args.seeds:
                    run = spec(args, seed, constrained, model)
                    for r in optimize(run, f"{args.runs}/{fingerprint(run)}"):  # a server's URL differs each time
                        proposed += r.proposals
                        usable += r.usable_proposals
                low, high = wilson(usable, proposed)
                shares[(backend, constrained)] = usable / max(1, proposed)
                rows.append(f"| {backend} | {'on' if constrained else 'off'} | {proposed} | {usable} | "
                            f"{100 * usable / max(1, proposed):.0f}% ({100 * low:.0f}-{100 * high:.0f}) |")
                print(rows[-1], flush=True)
    gains = [f"{backend}: {100 * shares[(backend, False)]:.0f}% → {100 * shares[(backend, True)]:.0f}%"
             for backend in dict.fromkeys(b for b, _ in shares)]
    body = "\n".join([
        f"Optimizer: SmolLM2-135M-Instruct, temperature as GPO's recipe, ≤ {args.optimizer_max_tokens} tokens a reply; "
        f"GPO's recipe on synthetic navigate (train {args.train}, batch 8, {args.epochs} epochs, {args.candidates} "
        f"candidates a step), seeds {', '.join(map(str, args.seeds))}. A proposal is usable when it parsed, is new, "
        f"fits the word budgets and copies nothing of the meta-prompt (gpo.engine.search.usable_proposals); the "
        f"interval is Wilson's 95%.", "",
        "| optimizer | constrained replies | proposals | usable | usable share |", "|---|---|---|---|---|", *rows, "",
        "Usable share, free → constrained: " + "; ".join(gains) + ".", "",
        f"Wall time {(time.time() - start) / 60:.1f} min (the embedded runs are reused on a rerun; the server's, "
        f"on a new port each time, are not).",
    ])
    targets = [(f"{backend}: constrained {100 * shares[(backend, True)]:.0f}% usable above free "
                f"{100 * shares[(backend, False)]:.0f}%", shares[(backend, True)] > shares[(backend, False)])
               for backend in dict.fromkeys(b for b, _ in shares)]
    record("proposals", "Usable proposals with and without constrained replies (issue 23)", body, targets)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--train", type=int, default=32)
    p.add_argument("--eval", type=int, default=4)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--candidates", type=int, default=4)
    p.add_argument("--optimizer-max-tokens", type=int, default=96)
    p.add_argument("--cache", default="bench/.cache/proposals.sqlite")
    p.add_argument("--runs", default="bench/.cache/proposals_runs")
    main(p.parse_args())
