"""The headroom check (``gpo probe``) on the embedded scorer: whether the prompt moves SmolLM2-135M
at all, on the 7 closed-answer tasks of "scorer-baselines", on the tickets task of the README, and
on two instruction-induction tasks where demonstrations change its answers (singular_to_plural and
first_word_letter: the demonstration search gains significantly there on every seed, BENCHMARKS.md
"induction"). Each task's probe prompts are scored on the same sample of eval and tested together.

    python -m bench.probe [--data-dir ../shared/data/gpo] [--ii-dir ../shared/data/instruction_induction] [--sample 32]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

from bench._record import DATA_DIR, record

from gpo.api import from_sources, probe_async
from gpo.scoring.stats import format_p

CLOSED = ["bbh:navigate", "bbh:sports_understanding", "bbh:web_of_lies", "bbh:causal_judgement",
          "bbh:boolean_expressions", "bbh:hyperbaton", "wsc"]
INDUCTION = ["singular_to_plural", "first_word_letter"]
ROOT = Path(__file__).resolve().parents[1]
TICKETS = {"dataset": "user", "data_files": [str(ROOT / "tests/data/tickets.csv")], "target_col": "label",
           "template": str(ROOT / "tests/data/ticket_template.txt"),
           "initial_instruction": "Which category is this ticket: billing, technical, account or shipping?"}
PROBES = ["initial", "empty", "answer format", "demonstrations A", "demonstrations B"]


def overrides(args) -> list[tuple[str, dict]]:
    runs = []
    for item in CLOSED:
        dataset, _, name = item.partition(":")
        runs.append((item, {"dataset": dataset, "task": [name or dataset], "data_dir": args.data_dir}))
    runs.append(("tickets", dict(TICKETS)))
    for name in INDUCTION:
        runs.append((f"instruction_induction:{name}", {"dataset": "instruction_induction", "task": [name],
                                                       "data_dir": args.ii_dir}))
    return runs


def kind(h) -> str:
    if not h.moves:
        return "no measurable headroom"
    return "headroom above the constant" if h.above_constant else "moves the answers, not above the constant"


def row(h) -> str:
    scores = " | ".join(f"{100 * h.scores[p]:.1f}" if p in h.scores else "-" for p in PROBES)
    versus = "-" if h.best == "initial" else h.versus_initial.describe()
    constant = "-" if not h.constant else (f"{h.constant['constant']!r} {100 * h.constant['constant_score']:.1f}; "
                                           f"{'better' if h.above_constant else 'not better'}")
    return (f"| {h.task} | {h.n} | {scores} | {h.omnibus.test}, {format_p(h.omnibus.p)} | {h.best}: {versus} | "
            f"{constant} | {kind(h)} |")


async def main(args) -> None:
    start, rows, found = time.time(), [], []
    for name, given in overrides(args):
        spec = from_sources(overrides={**given, "scorer_max_tokens": args.max_tokens, "seed": args.seed},
                            check_models=False)
        spec.cache = args.cache
        (h,) = await probe_async(spec, sample=args.sample)
        found.append(h)
        rows.append(row(h))
        print(rows[-1], flush=True)
    wall = time.time() - start
    kinds = [kind(h) for h in found]
    body = "\n".join([
        f"Scorer: SmolLM2-135M-Instruct (Q4_1, llama.cpp, greedy), chat template, first round ≤ {args.max_tokens} "
        f"tokens, seed {args.seed}. Each task: the probe prompts of `gpo probe` (the initial prompt; the empty one; "
        f"an answer-format instruction for the task's kind of answer; the initial prompt with two random sets of 3 "
        f"train demonstrations) on the same {args.sample} eval examples (all of eval where fewer), their accuracy; "
        f"the omnibus test over them (Cochran's Q, p from 10,000 within-example shuffles); the best probe against "
        f"the initial prompt (paired, 95% interval); the best constant answer and whether the best probe is "
        f"significantly better than it.", "",
        "| task | n | " + " | ".join(PROBES) + " | test | best probe vs initial | best constant; best probe | verdict |",
        "|---" * (6 + len(PROBES)) + "|", *rows, "",
        "Verdicts: " + "; ".join(f"{k}: {kinds.count(k)} of {len(kinds)}" for k in dict.fromkeys(kinds)) + ".", "",
        f"Wall time {wall / 60:.1f} min ({sum(h.requests for h in found)} scorer requests, "
        f"{sum(h.cache_hits for h in found)} of them answered by the response cache).",
    ])
    record("probe", "The headroom check before a search, on the embedded scorer (issue 36)", body)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=DATA_DIR)
    parser.add_argument("--ii-dir", default=str(Path(DATA_DIR).parent / "instruction_induction"))
    parser.add_argument("--sample", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", default="runs/bench-probe/cache.sqlite")
    asyncio.run(main(parser.parse_args()))
