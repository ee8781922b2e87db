"""Prompt templates for users' own tasks: named fields from the data's columns, and the
slot where the optimized text goes.

A template such as ``Context: {context}\\nQuestion: {question}\\n{instruction}`` is filled
per example from the row's columns; ``{instruction}`` is where the prompt being
optimized goes. ``system`` is a chat scorer's system message (fields allowed too).
With ``optimize="system"`` the system message itself is the parameter: the system
template is then only the starting text, and the user template has no slot.

Only ``{name}`` with an identifier inside is a slot; ``{{`` and ``}}`` are literal braces,
and any other brace (a JSON example in the template, say) is kept as written. The paper's tasks do not use templates: they keep
the four instruction positions of ``gpo.scoring.render``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

from gpo.tasks.task import Example, TaskError

SLOT = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")  # {{ and }} are literal braces
INSTRUCTION = "instruction"
OPTIMIZE = ("instruction", "system")


def slots(text: str | None) -> list[str]:
    """The slot names of a template, in order of first appearance."""
    return list(dict.fromkeys(name for name in SLOT.findall(text or "") if name))


def fill(text: str, values: Mapping[str, str]) -> str:
    def one(m: re.Match) -> str:
        if m.group(1) is None:
            return m.group(0)[0]  # {{ -> {, }} -> }
        return values.get(m.group(1), m.group(0))

    return SLOT.sub(one, text)


@dataclass(frozen=True)
class Template:
    user: str | None = None  # the user message (or raw prompt); None: the example's input as is
    system: str | None = None
    optimize: str = "instruction"  # "instruction": the {instruction} slot; "system": the system message

    def __post_init__(self) -> None:
        if self.optimize not in OPTIMIZE:
            raise TaskError(f"--optimize must be one of {', '.join(OPTIMIZE)}, got {self.optimize!r}")
        has_slot = INSTRUCTION in slots(self.user) or INSTRUCTION in slots(self.system)
        if self.optimize == "instruction" and not has_slot:
            raise TaskError("the template has no {instruction} slot, so the optimized instruction has nowhere "
                            "to go; add {instruction} to it, or optimize the system prompt (--optimize system)")
        if self.optimize == "system" and has_slot:
            raise TaskError("with --optimize system the whole system prompt is optimized; remove {instruction} "
                            "from the templates")

    @property
    def fields(self) -> list[str]:
        """The data columns the templates read."""
        return [s for s in slots(self.user) + slots(self.system) if s != INSTRUCTION]

    def check_columns(self, columns: Iterable[str], where: str) -> None:
        found = [c for c in columns if c != "__line__"]
        missing = [f for f in self.fields if f not in found]
        if missing:
            raise TaskError(f"template field {{{missing[0]}}} has no matching column in {where} "
                            f"(columns found: {', '.join(found)})")

    def example(self, row: Mapping[str, object], target: str, references: tuple[str, ...] = ()) -> Example:
        """An example from a data row: its fields, and as ``input`` the user text with an
        empty slot (what the optimizer's meta-prompts and reports show as the input)."""
        values = {k: str(v) for k, v in row.items() if k != "__line__"}
        return Example(input=self.user_text("", values), target=target, references=references,
                       fields=tuple(values.items()))

    def user_text(self, instruction: str, values: Mapping[str, str]) -> str:
        if self.user is None:
            return values.get("input", "")
        return fill(self.user, {**values, INSTRUCTION: instruction}).strip()

    def messages(self, instruction: str, example: Example) -> list[dict[str, str]]:
        """The chat messages for one example: system (when there is one), then user."""
        values = dict(example.fields) or {"input": example.input}
        if self.optimize == "system":
            system, user = instruction, self.user_text("", values)
        else:
            system = fill(self.system, {**values, INSTRUCTION: instruction}).strip() if self.system else None
            user = self.user_text(instruction, values)
        return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]

    # ---------------------------------------------------------------- for the optimizer's meta-prompts

    @property
    def phrase(self) -> str:
        return "as the system prompt" if self.optimize == "system" else "in the {instruction} slot of the prompt"

    def show(self, example: Example, placeholder: str) -> str:
        """One example as the optimizer sees it, with ``placeholder`` where the prompt goes."""
        shown = self.messages(placeholder, example)
        if len(shown) == 1:
            return shown[0]["content"]
        return "\n".join(f"[{m['role']}] {m['content']}" for m in shown)


def read_template(value: str | None, what: str = "--template") -> str | None:
    """A template given as a file path or inline. A value that looks like a path (one word
    with a file suffix or a slash) but names no file is refused, so that a typo in a file
    name does not become the prompt."""
    if value is None:
        return None
    if "\n" not in value and len(value) < 1024 and Path(value).is_file():
        try:
            return Path(value).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise TaskError(f"cannot read {what} file {value}: {err}") from None
    if "{" not in value and " " not in value.strip() and (Path(value).suffix or "/" in value):
        raise TaskError(f"{what} file not found: {value}")
    return value
