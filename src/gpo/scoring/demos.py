"""A prompt's demonstrations, carried in its text.

A candidate prompt is an instruction plus, optionally, an ordered set of k
demonstrations (solved examples shown to the scorer before the question). gpo keeps a
candidate as one string everywhere (its identity, the response cache, per-example
records, trajectories, checkpoints, ``optimized_prompts.jsonl``, ``gpo evaluate
--prompts-file``), so the demonstrations travel inside it, after the instruction, in a
block that cannot be mistaken for prose:

    Let's think step by step.

    <demonstrations>
    [{"input": "...", "answer": "..."}, ...]
    </demonstrations>

``with_demos`` writes that form and ``split_demos`` reads it back; rendering
(``gpo.scoring.render``) shows the demonstrations the way the task shows few-shot
examples (user / assistant turns for a chat scorer, blocks of text for a base one, a
user's template filled with each demonstration's row). A demonstration keeps the row's
fields, so a templated task renders it like any example. A text without the block is a
plain instruction, and is rendered exactly as before.
"""

from __future__ import annotations

import json

from gpo.tasks.task import Example

OPEN, CLOSE = "<demonstrations>", "</demonstrations>"


def with_demos(instruction: str, demos: list[Example]) -> str:
    """The prompt text of ``instruction`` shown with ``demos`` (each demo's ``demo_answer`` is
    the answer shown); no demos: the instruction alone."""
    if not demos:
        return instruction
    rows = [{"input": d.input, "answer": d.demo_answer} | ({"fields": dict(d.fields)} if d.fields else {})
            for d in demos]
    return f"{instruction.rstrip()}\n\n{OPEN}\n{json.dumps(rows, ensure_ascii=False)}\n{CLOSE}"


def split_demos(prompt: str) -> tuple[str, list[Example]]:
    """(instruction, demonstrations) of a prompt text; a text without a well-formed block is
    an instruction with no demonstrations."""
    head, sep, rest = prompt.rpartition(f"\n\n{OPEN}\n")
    if not sep and prompt.startswith(f"{OPEN}\n"):  # demonstrations under an empty instruction
        head, sep, rest = "", OPEN, prompt[len(OPEN) + 1:]
    if not sep or not rest.endswith(f"\n{CLOSE}"):
        return prompt, []
    try:
        rows = json.loads(rest[: -len(CLOSE) - 1])
        demos = [Example(r["input"], r["answer"], fields=tuple((r.get("fields") or {}).items())) for r in rows]
    except (ValueError, KeyError, TypeError, AttributeError):
        return prompt, []
    return head, demos


def describe(prompt: str) -> str:
    """A prompt as a person reads it in one line: the instruction, and how many demonstrations."""
    instruction, demos = split_demos(prompt)
    return repr(instruction) + (f" with {len(demos)} demonstration{'s' if len(demos) != 1 else ''}" if demos else "")
