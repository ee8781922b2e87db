"""Usable proposals from small optimizers, before and after issue 38: of the optimizer's replies
that should each be a new prompt, how many are usable, and how many that are no prompt still
reached scoring?

GPO's recipe (the ``gpo`` preset, headroom check off, every usable proposal scored on 4 eval
examples in one round: only the proposals are measured) runs 12 steps of 4 proposals (48) on each
of 3 instruction-induction tasks, with the embedded SmolLM2-135M as the optimizer in process,
and on one task behind a real ``llama_cpp.server`` (the same GGUF). Each row is one setting:

- ``before``: gpo as it was at ``--before`` (a git commit, run from a worktree of it): free
  replies, the screen of then, no repair;
- ``after``: this checkout's defaults (constrained replies where the backend is measured to gain
  from them, the stronger screen, one repair round);
- ``after, --optimizer-size large`` (the embedded model): the same with GPO's full meta-prompt
  instead of the short one a small optimizer gets by default (and so with constrained replies,
  the default for a llama.cpp model in process with it): what ``after`` was before the short one.

"Reached scoring" counts the proposals that were scored (whole or stopped by racing) and that
this checkout's screen (``StepActions.unusable`` without the meta-prompt copy check: the rules
of the fixture ``tests/data/optimizer_replies.jsonl``) calls no prompt. The usable share is
``usable_proposals`` of the run's result; its interval is Wilson's 95%.

    python -m bench.proposals [--before 0a3bd95] [--server-steps 6]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from bench._record import fingerprint, publish

from gpo.api import ModelSpec, RunSpec, ScoringSpec, TaskSpec
from gpo.config import preset
from gpo.llm import default_gguf_path
from gpo.prompts.checks import leak_reason, not_an_instruction
from gpo.prompts.junk import junk_reason
from gpo.scoring.demos import split_demos
from gpo.scoring.stats import wilson

ROOT = Path(__file__).resolve().parents[1]
DATA = str(ROOT.parent / "shared" / "data" / "instruction_induction")
TASKS = ["singular_to_plural", "larger_animal", "first_word_letter"]
LARGE = {"optimizer_size": "large"}
NEW_OPTIONS = ("repair", "constrained_replies", "optimizer_size")  # options a 'before' checkout does not know
# a run, in whichever checkout PYTHONPATH names: its spec as JSON in, the run written to its directory
RUN = ("import json, sys; from gpo.api import RunSpec, optimize; "
       "optimize(RunSpec.from_dict(json.loads(sys.argv[1])), sys.argv[2])")


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


def spec(args, task: str, optimizer: ModelSpec, overrides: dict) -> RunSpec:
    steps = args.server_steps if optimizer.base_url else args.steps
    cfg = preset("gpo", seed=0, num_search_epochs=1, opt_batch_size=8, num_generated_instructions_in_each_step=4,
                 optimizer_max_tokens=args.optimizer_max_tokens, train_probe=False, probe=False, selection="full",
                 **overrides)
    sizes = {"train": 8 * steps, "eval": args.eval, "test": 1}
    return RunSpec(tasks=TaskSpec(source="gpo", dataset="instruction_induction", tasks=[task], data_dir=DATA,
                                  max_examples=sizes),
                   config=cfg, optimizer=optimizer, scorer=ModelSpec("embedded"),
                   scoring=ScoringSpec(max_tokens=16, second_round=False), cache=args.cache)


def checkout(commit: str) -> Path:
    """A worktree of ``commit`` under bench/.cache (made once), whose src/ a 'before' run imports."""
    path = ROOT / "bench" / ".cache" / f"before-{commit}"
    if not path.exists():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), commit], check=True,
                       stdout=subprocess.DEVNULL)
    return path


def settings(run_spec: RunSpec, src: Path) -> dict:
    """The run's settings as the gpo under ``src`` reads them (a 'before' checkout knows none of
    this checkout's new options, and its replies were free)."""
    data = run_spec.to_dict()
    if src != ROOT / "src":
        data["config"] = {k: v for k, v in data["config"].items() if k not in NEW_OPTIONS}
        data["config"]["constrained_replies"] = False
    return data


def run(data: dict, src: Path, run_dir: Path) -> list[dict]:
    """Run (or finish) one search with the gpo under ``src``; its candidate and task_done events."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    subprocess.run([sys.executable, "-c", RUN, json.dumps(data), str(run_dir)], check=True, env=env, cwd=ROOT)
    return [e for e in map(json.loads, (run_dir / "events.jsonl").read_text().splitlines())
            if e["event"] in ("candidate", "task_done")]


def junk(text: str) -> str | None:
    """This checkout's verdict on a proposal's instruction (the fixture's kinds of junk)."""
    instruction = split_demos(text)[0]
    return leak_reason(instruction) or not_an_instruction(instruction) or junk_reason(instruction)


def row(events: list[dict]) -> dict:
    done = next(e for e in events if e["event"] == "task_done")
    scored = [e for e in events if e["event"] == "candidate" and not e["reused"]
              and (e["rejected"] is None or e["rejected"].startswith("stopped by racing"))]
    reached = [e["text"] for e in scored if junk(e["text"])]
    repaired = sum(1 for e in events if e["event"] == "candidate" and e.get("first_rejected"))
    return {"proposals": done["proposals"], "usable": done["usable_proposals"], "scored": len(scored),
            "junk_scored": len(reached), "asked_again": repaired, "junk_examples": reached[:2]}


def main(args) -> None:
    start, rows, results = time.time(), [], {}
    before = checkout(args.before) / "src"
    variants = [("before", before, {}), ("after", ROOT / "src", {})]
    with llama_server() as url:
        backends = [("embedded, in process", ModelSpec("embedded"), args.tasks),
                    ("llama_cpp.server endpoint", ModelSpec("smollm2", base_url=url), args.server_tasks)]
        for backend, model, tasks in backends:
            large = [] if model.base_url else [("after, --optimizer-size large", ROOT / "src", LARGE)]
            for label, src, overrides in variants + large:
                for task in tasks:
                    data = settings(spec(args, task, model, overrides), src)
                    key = f"{label}-{backend}-{task}-{fingerprint(data)}-{args.before}"
                    r = row(run(data, src, Path(args.runs) / key.replace(" ", "_").replace(",", "")))
                    results[(backend, label, task)] = r
                    low, high = wilson(r["usable"], r["proposals"])
                    rows.append(f"| {backend} | {task} | {label} | {r['proposals']} | {r['usable']} "
                                f"({100 * r['usable'] / max(1, r['proposals']):.0f}%, {100 * low:.0f}-{100 * high:.0f}) "
                                f"| {r['asked_again']} | {r['scored']} | {r['junk_scored']} |")
                    print(rows[-1], flush=True)
    publish(args, body(args, rows, results, start), targets(args, results))


def pooled(results: dict, backend: str, label: str) -> tuple[int, int, int, int]:
    rs = [r for (b, v, _), r in results.items() if b == backend and v == label]
    return (sum(r["usable"] for r in rs), sum(r["proposals"] for r in rs), sum(r["junk_scored"] for r in rs),
            sum(r["scored"] for r in rs))


def body(args, rows: list[str], results: dict, start: float) -> str:
    lines = []
    for backend in dict.fromkeys(b for b, _, _ in results):
        for label in dict.fromkeys(v for b, v, _ in results if b == backend):
            usable, proposals, junk_scored, scored = pooled(results, backend, label)
            low, high = wilson(usable, proposals)
            lines.append(f"- {backend}, {label}: {usable} of {proposals} usable ({100 * usable / max(1, proposals):.0f}%, "
                         f"{100 * low:.0f}-{100 * high:.0f}); {junk_scored} of {scored} scored proposals were no prompt")
    examples = [t for r in results.values() if r["junk_scored"] for t in r["junk_examples"]][:3]
    return "\n".join([
        f"Optimizer: SmolLM2-135M-Instruct (≤ {args.optimizer_max_tokens} tokens a reply); GPO's recipe, "
        f"{args.steps} steps of 4 proposals ({args.server_steps} behind the server), scored by the embedded model on {args.eval} eval examples; instruction induction. `before` is "
        f"gpo at {args.before} (run from a worktree of it), `after` this checkout's defaults. A proposal is usable "
        "when it parsed, is new, fits the budgets and the screen passes it; \"no prompt\" is this checkout's "
        "screen's verdict (the fixture's kinds). Intervals: Wilson's 95%.", "",
        "| optimizer | task | setting | proposals | usable (share, 95% CI) | asked again | scored | scored but no prompt |",
        "|---|---|---|---|---|---|---|---|", *rows, "",
        "Pooled over tasks:", "", *lines, "",
        *([f"Scored though no prompt, e.g.: {'; '.join(repr(t[:90]) for t in examples)}", ""] if examples else []),
        f"Wall time {(time.time() - start) / 60:.1f} min (finished embedded runs are reused on a rerun; the "
        f"server's, on a new port each time, are not).",
    ])


def targets(args, results: dict) -> list:
    usable, proposals, _, _ = pooled(results, "embedded, in process", "after")
    junk_after = sum(r["junk_scored"] for (b, v, _), r in results.items() if v != "before")
    return [(f"embedded optimizer, gpo's defaults: {100 * usable / max(1, proposals):.0f}% usable (≥ 85%)",
             usable >= 0.85 * proposals),
            (f"no proposal of the fixture's kinds reached scoring after: {junk_after}", junk_after == 0)]


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--before", default="0a3bd95", help="the commit 'before' runs (gpo before issue 38)")
    p.add_argument("--tasks", nargs="+", default=TASKS)
    p.add_argument("--server-tasks", nargs="*", default=TASKS[:1])
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--server-steps", type=int, default=12)
    p.add_argument("--eval", type=int, default=4)
    p.add_argument("--optimizer-max-tokens", type=int, default=96)
    p.add_argument("--cache", default="bench/.cache/proposals.sqlite")
    p.add_argument("--runs", default="bench/.cache/proposals_runs")
    p.add_argument("--no-record", action="store_true")
    p.add_argument("--section", default="small-optimizers")
    p.add_argument("--title", default="Usable proposals from small optimizers, before and after (issue 38)")
    main(p.parse_args())
