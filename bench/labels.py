"""A user's label column scored two ways on the same replies of the embedded scorer: as main
read it before issue 33 (the whole reply compared with the label: ``exact``), and as gpo reads
it now (the one label a reply names: ``label``). For each task and prompt: accuracy and
macro-F1 under both readings, the best constant answer, and the replies where the metric's
score and the constant yardstick's reading of the same reply disagree (a reply the yardstick
reads as the target's label but the metric scores wrong, or the reverse).

Tasks: the README's 32 support tickets (four balanced labels, with its template), and a
helpdesk-routing task this script generates (seeded; 240 requests, five labels from 45% down
to 5%).

    python -m bench.labels [--rows 240] [--max-tokens 64]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import random
import re
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from bench._record import record

from gpo.llm import LocalLLM, ResponseCache
from gpo.scoring import Evaluator
from gpo.scoring.constant import best_constant, classes
from gpo.scoring.metrics import score_answer
from gpo.scoring.objective import macro_f1
from gpo.tasks import AnswerKind, load_user_task
from gpo.tasks.template import Template

ROOT = Path(__file__).resolve().parents[1]
TICKET_PROMPTS = ["Which category is this ticket: billing, technical, account or shipping?",
                  "Classify the ticket.", "Let's think step by step."]
HELPDESK_PROMPTS = ["Route this request to one team: password, hardware, network, software or access. "
                    "Answer with the team's name.", "Which team should handle this request?",
                    "Let's think step by step."]
HELPDESK = {  # label: (share, subjects, problems)
    "password": (0.45, ["my password", "the login for my email", "my account PIN", "the VPN password"],
                 ["has expired", "is not accepted any more", "needs a reset", "was locked after three tries"]),
    "hardware": (0.25, ["my laptop", "the office printer", "my second monitor", "the docking station"],
                 ["will not turn on", "makes a grinding noise", "shows no picture", "is physically broken"]),
    "network": (0.15, ["the wifi on floor 3", "the office internet", "my ethernet port", "the guest network"],
                ["keeps dropping", "is very slow today", "shows no connection", "cannot reach any website"]),
    "software": (0.10, ["the spreadsheet app", "the new CRM", "my calendar client", "the design tool"],
                 ["crashes on start", "shows an update error", "freezes when saving", "lost its plugins"]),
    "access": (0.05, ["the finance share", "the HR folder", "the admin console", "the project board"],
               ["says I need permission", "does not list me as a member", "denies my request", "hides my team's files"]),
}


def helpdesk_rows(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    labels = list(HELPDESK)
    rows = []
    for _ in range(n):
        label = rng.choices(labels, weights=[HELPDESK[k][0] for k in labels])[0]
        _, subjects, problems = HELPDESK[label]
        rows.append({"text": f"Hi, {rng.choice(subjects)} {rng.choice(problems)}. Can someone help?", "label": label})
    return rows


def old_exact(task):
    """The same task read as main read it before issue 33: the whole reply against the label."""
    return replace(task, kind=AnswerKind.EXACT, labels=())


def old_yardstick_answer(reply: str, labels) -> str:
    """How main's answer shares read a reply before issue 33 (``constant.as_answers``): the
    reply itself where it is a label, else the one label it names inside a sentence."""
    key = reply.strip().lower()
    if key in labels:
        return key
    named = [a for a in labels if re.search(rf"(?<!\w){re.escape(a.lower())}(?!\w)", key)]
    return named[0] if len(named) == 1 else "(no answer)"


def figures(task, ev) -> dict:
    """Accuracy, macro-F1 and disagreements under both readings, for one prompt's replies."""
    examples = task.split("test")
    new_pairs = classes(task, "test", ev.records)
    new_disagree = sum(1 for r, (t, a) in zip(ev.records, new_pairs) if r.score != float(a == t))
    old = old_exact(task)
    old_records = [replace(r, parsed_answer=parsed, score=score) for r in ev.records
                   for parsed, score in [score_answer(old, examples[r.index], r.raw_answer)]]
    old_pairs = classes(old, "test", old_records)  # the whole reply read as a label, as the old metric read it
    old_disagree = sum(1 for r in old_records
                       if r.score != float(old_yardstick_answer(r.raw_answer, task.labels) == r.target.strip()))
    old_acc = sum(r.score for r in old_records) / len(old_records)
    return {"old_acc": old_acc, "old_f1": macro_f1(old_pairs), "old_disagree": old_disagree,
            "new_acc": ev.score, "new_f1": macro_f1(new_pairs), "new_disagree": new_disagree}


def load(name: str, rows_or_file, template: str | None, seed: int):
    if isinstance(rows_or_file, list):
        path = Path(tempfile.mkdtemp()) / f"{name}.csv"
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["text", "label"])
            writer.writeheader()
            writer.writerows(rows_or_file)
        rows_or_file = path
    task = load_user_task(name, {"train": rows_or_file, "eval": rows_or_file, "test": rows_or_file},
                          input_col="text", target_col="label", seed=seed,
                          template=Template((ROOT / template).read_text()) if template else None)
    assert task.kind is AnswerKind.LABEL, f"{name}: read as {task.kind.value}, not as labels"
    return task


async def main(args) -> None:
    scorer = LocalLLM(cache=ResponseCache(args.cache))
    evaluator = Evaluator(scorer, max_tokens=args.max_tokens)
    tasks = [(load("tickets", ROOT / "tests/data/tickets.csv", "tests/data/ticket_template.txt", args.seed), TICKET_PROMPTS),
             (load("helpdesk", helpdesk_rows(args.rows, args.seed), None, args.seed), HELPDESK_PROMPTS)]
    rows, disagree_new, start = [], 0, time.time()
    for task, prompts in tasks:
        constant = best_constant(task, "test")
        n = len(task.split("test"))
        shares = ", ".join(f"{label} {sum(e.target == label for e in task.split('test'))}" for label in task.labels)
        for prompt in prompts:
            ev = await evaluator.evaluate(task, prompt, "test")
            f = figures(task, ev)
            disagree_new += f["new_disagree"]
            rows.append(f"| {task.name} (n={n}: {shares}) | {prompt!r} | {100 * f['old_acc']:.1f} | "
                        f"{100 * f['old_f1']:.1f} | {f['old_disagree']} | {100 * f['new_acc']:.1f} | "
                        f"{100 * f['new_f1']:.1f} | {f['new_disagree']} | {constant.answer!r} {100 * constant.score:.1f} |")
            print(rows[-1], flush=True)
    wall = time.time() - start
    body = "\n".join([
        f"Scorer: SmolLM2-135M-Instruct (Q4_1, llama.cpp, greedy), chat template, one round of at most "
        f"{args.max_tokens} tokens, every row scored (train, eval and test are the same file here: nothing is "
        f"searched). The same replies are read two ways: **exact**, the whole reply against the label (main "
        f"before issue 33; its answer shares read a label inside a sentence), and **label**, the one label a "
        f"reply names (gpo now, for the metric, the yardstick, the shares and the per-class figures alike). "
        f"\"disagree\": replies whose score is not what the yardstick's reading of the same reply implies. "
        f"Macro-F1 is the unweighted mean F1 over the labels, each reading's own (a reply naming none is a "
        f"miss).", "",
        "| task (labels) | prompt | exact: accuracy | exact: macro-F1 | exact: disagree | label: accuracy | "
        "label: macro-F1 | label: disagree | best constant answer |",
        "|---|---|---|---|---|---|---|---|---|", *rows, "",
        f"Wall time {wall / 60:.1f} min ({scorer.usage.calls} model calls, {scorer.usage.cache_hits} cache hits).",
    ])
    record("labels", "A label column read as a person reads it (issue 33)", body,
           [(f"0 replies where metric and yardstick disagree with the label reading (measured {disagree_new})",
             disagree_new == 0)])


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, default=240, help="rows of the generated helpdesk task")
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache", default="bench/.cache/labels.sqlite")
    asyncio.run(main(p.parse_args()))
