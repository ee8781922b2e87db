"""Task-prompt assembly: where the instruction goes, Q:/A: wrapper, zero- or few-shot.

Positions (docs/BEHAVIOUR.md, "Scoring a prompt"): ``before_Q`` (a line before the question), ``Q_begin``
(start of the question), ``Q_end`` (end of the question), ``A_begin`` (start of the
answer). Without the Q:/A: wrapper there is no answer marker, so ``before_Q``
renders like ``Q_begin`` and ``A_begin`` puts the instruction on its own line after
the question, ending in a space for the model to continue (the original refused
these combinations). Chat scorers get the rendered text as one user message;
few-shot demonstrations become user/assistant turns for chat scorers and text
blocks for base scorers, and the final query always carries the instruction (the
original dropped it for chat + Q_end).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from gpo.llm.base import Request
from gpo.scoring.demos import split_demos
from gpo.tasks.task import Example, Task
from gpo.tasks.template import Template


class Position(str, Enum):
    BEFORE_Q = "before_Q"
    Q_BEGIN = "Q_begin"
    Q_END = "Q_end"
    A_BEGIN = "A_begin"

    @classmethod
    def parse(cls, value: "Position | str") -> "Position":
        if isinstance(value, Position):
            return value
        for p in cls:
            if p.value.lower() == str(value).lower():
                return p
        raise ValueError(f"unknown instruction position {value!r}; choose from {', '.join(p.value for p in cls)}")

    @property
    def phrase(self) -> str:
        """Where the prompt goes, in words (used by the update meta-prompts)."""
        return {
            Position.BEFORE_Q: "on its own line before the question",
            Position.Q_BEGIN: "at the beginning of the question",
            Position.Q_END: "at the end of the question",
            Position.A_BEGIN: "at the beginning of the answer",
        }[self]

    def show(self, example: Example, placeholder: str) -> str:
        """One example as the optimizer's meta-prompts show it, ``placeholder`` where the prompt goes."""
        if self is Position.A_BEGIN:
            return f"Q: {example.input}\nA: {placeholder}"
        if self is Position.Q_END:
            return f"{example.input}\n{placeholder}"
        return f"{placeholder}\n{example.input}"  # Q_begin and before_Q both put the prompt ahead


def placement(task: Task, position: Position | str) -> "Position | Template":
    """Where a task's prompt goes: its template's slot (users' templated tasks) or a position."""
    return task.template if task.template is not None else Position.parse(position)


@dataclass(frozen=True)
class PromptFormat:
    position: Position = Position.Q_END
    include_qa: bool = False
    few_shot: int = 0  # number of demonstrations; 0 = zero-shot
    chat: bool = True  # chat scorer (messages) or base scorer (raw text)


def render_zero_shot(instruction: str, question: str, position: Position | str, include_qa: bool) -> str:
    I, Q = instruction.strip(), question
    pos = Position.parse(position)
    if include_qa:
        if pos is Position.BEFORE_Q:
            return (f"{I}\n" if I else "") + f"Q: {Q}\nA: "
        if pos is Position.Q_BEGIN:
            return f"Q: {I + ' ' if I else ''}{Q}\nA: "
        if pos is Position.Q_END:
            return f"Q: {Q}{' ' + I if I else ''}\nA: "
        return f"Q: {Q}\nA:" + (f" {I} " if I else "")
    if pos in (Position.BEFORE_Q, Position.Q_BEGIN):
        return (f"{I}\n" if I else "") + Q
    if pos is Position.Q_END:
        return Q + (f"\n{I}" if I else "")
    return Q + (f"\n{I} " if I else "")


def _demo_text(instruction: str, demo: Example, position: Position, include_qa: bool) -> str:
    shown = render_zero_shot(instruction, demo.input, position, include_qa)
    joiner = " " if include_qa else "\n"
    return shown.rstrip(" ") + joiner + demo.demo_answer


def render(instruction: str, example: Example, fmt: PromptFormat, demos: list[Example] = (),
           template: Template | None = None) -> Request:
    """The first-round scorer request for one example (greedy decoding is set by the caller).
    With a ``template`` (users' own tasks) the template decides; otherwise the position. A
    prompt that carries its own demonstrations (``gpo.scoring.demos``) shows those; otherwise
    the format's ``few_shot`` first of ``demos``."""
    instruction, own = split_demos(instruction)
    demos = own or (list(demos)[: fmt.few_shot] if fmt.few_shot else [])
    if template is not None:
        return _render_template(instruction, example, fmt, demos, template)
    query = render_zero_shot(instruction, example.input, fmt.position, fmt.include_qa)
    if fmt.chat:
        messages = []
        for d in demos:
            messages.append({"role": "user", "content": render_zero_shot(instruction, d.input, fmt.position, fmt.include_qa).rstrip()})
            messages.append({"role": "assistant", "content": d.demo_answer})
        messages.append({"role": "user", "content": query.rstrip()})
        return Request.chat(messages)
    blocks = [_demo_text(instruction, d, fmt.position, fmt.include_qa) for d in demos]
    return Request(prompt="\n\n".join(blocks + [query]))


def _render_template(instruction: str, example: Example, fmt: PromptFormat, demos: list[Example],
                     template: Template) -> Request:
    """System (if any), demonstrations as user/assistant turns, then the example."""
    query = template.messages(instruction, example)
    system = [m for m in query if m["role"] == "system"]
    turns = []
    for d in demos:
        turns.append(template.messages(instruction, d)[-1])
        turns.append({"role": "assistant", "content": d.demo_answer})
    messages = system + turns + query[-1:]
    if fmt.chat:
        return Request.chat(messages)
    return Request(prompt="\n\n".join(m["content"] for m in messages))


def prompt_text(request: Request) -> str:
    """A readable copy of a rendered request, for per-example records."""
    if request.prompt is not None:
        return request.prompt
    return "\n\n".join(f"[{role}]\n{content}" for role, content in request.messages or ())
