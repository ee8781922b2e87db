"""Update meta-prompts ("util gradient"): generate / edit, with or without gradient,
plus the word-budget ("learning rate") clause and the handling of the optimizer's
reply (extraction, polishing, leak checks, word-level edit distance).

The text is our own wording of the content lists in GPO_SPEC 7.1. Scores are shown
on one scale everywhere: percent with one decimal (the original claimed 0-100 but
showed raw fractions).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gpo.scoring.render import Position
from gpo.tasks.task import Example
from gpo.tasks.template import Template

Placement = Position | Template  # where the prompt goes: .phrase and .show(example, placeholder)

PLACEHOLDER = "<Prompt>"
START, END = "<START>", "<END>"
_CLOSE_TAG = re.compile(r"</?\s*end\s*>|<\s*/\s*start\s*>", re.I)
_OPEN_TAG = re.compile(r"<\s*start\s*>", re.I)
_LEAKS = ("<prompt>", "<start>", "<end>", "</start>", "</end>", "</prompt>")
# field labels of our meta-prompts (GPO's and the baselines'): a candidate that starts a line
# with one copied the scaffolding, often a whole task example (GPO_SPEC 8 lists such prompts)
_LABEL_LINE = re.compile(
    r"^\s*(Score|Output|Input|Prompt(?: \d+)?|Basic prompt|Question|Wrong prediction|Correct answer):", re.M)


def show_score(score: float) -> str:
    return f"{100 * score:.1f}"


SCALE_NOTE = "Scores are percentages from 0 to 100; higher is better."


def format_exemplars(examples: list[Example], placement: Placement) -> str:
    """Task examples with the placeholder where the prompt goes (a position, or a user's
    template). An example with several references (WebNLG) shows all of them, as the
    original did."""
    blocks = []
    for ex in examples:
        output = "Output:" if len(ex.references) < 2 else f"Output (any of these {len(ex.references)} references):"
        answer = "\n".join(ex.references) if len(ex.references) > 1 else ex.demo_answer
        blocks.append(f"Input:\n{placement.show(ex, PLACEHOLDER)}\n{output}\n{answer}")
    return "\n\n".join(blocks)


def current_block(prompt: str, score: float) -> str:
    return f"Here is the current prompt and its score. {SCALE_NOTE}\n\nPrompt: {prompt}\nScore: {show_score(score)}\n"


def k_list_block(entries: list[tuple[str, float]]) -> str:
    lines = [f"Below are earlier prompts with their scores. {SCALE_NOTE}", ""]
    for prompt, score in entries:
        lines += [f"Prompt: {prompt}", f"Score: {show_score(score)}", ""]
    return "\n".join(lines)


def real_time_block(prompt: str, score: float) -> str:
    return (
        f"Here is a prompt that summarises the earlier prompts, with its score. {SCALE_NOTE}\n\n"
        f"Prompt: {prompt}\nScore: {show_score(score)}\n"
    )


@dataclass(frozen=True)
class UpdateSpec:
    method: str  # generate | edit | generate_without | edit_without
    position: Placement
    momentum_kind: str = "-"  # "-" | "k-list" | "real-time": how the trajectory block reads


def build_update_prompt(
    spec: UpdateSpec,
    current: str,
    current_score: float,
    trajectory_block: str,
    exemplars: list[Example],
    gradient: str | None = None,
    step_size: int | None = None,
) -> str:
    """The meta-prompt asking the optimizer LLM for one improved prompt."""
    edit = spec.method.startswith("edit")
    with_gradient = spec.method in ("edit", "generate")
    where = spec.position.phrase
    parts = []
    if edit:
        parts.append(f"Your job is to revise the current prompt so that it works better in place of {PLACEHOLDER} in the task examples below.")
    else:
        parts.append(f"Your job is to write a prompt that works better in place of {PLACEHOLDER} in the task examples below.")
    parts.append(trajectory_block.rstrip())
    parts.append(f"The current prompt is:\n{current}")
    if with_gradient and gradient:
        parts.append(f"Problems found with the current prompt:\n{gradient}")
    parts.append(
        f"Each example below shows an input in which {PLACEHOLDER} stands for the prompt. A model reads the input "
        f"with the prompt filled in and writes an output. The output is wrong if it differs from the output given, "
        f"and right if it matches."
    )
    parts.append(format_exemplars(exemplars, spec.position))
    analyse = ""
    if spec.momentum_kind == "k-list":
        analyse = "First study the earlier prompts and their scores carefully. Then "
    elif spec.momentum_kind == "real-time":
        analyse = "First study the summarised prompt and its score carefully. Then "
    verb = "revise the current prompt into a new, better prompt" if edit else "write a new, better prompt"
    request = f"{analyse}{verb if analyse else verb[0].upper() + verb[1:]} to go {where} in the examples above."
    parts.append(request)
    lines = "\n\n".join(parts).split("\n")
    if step_size is not None:
        lines.append(f"Change at most {step_size} words of the current prompt.")
        lines.append("")
    lines.append(f"Put the new prompt between {START} and {END}.")
    return "\n".join(lines)


@dataclass(frozen=True)
class UpdateRule:
    """GPO's update, built once from the config: edit or generate, with or without the
    gradient (``method``, the paper's util_gradient_name); whether the meta-prompt states
    the word budget (``learning_rate_name='w_lr'``); and what becomes of a candidate that
    changes more words than the budget (``enforcement``: off, reject, or resample up to
    ``resample_rounds`` more times)."""

    method: str = "generate_without"
    states_step_size: bool = True
    enforcement: str = "off"
    resample_rounds: int = 0

    @classmethod
    def from_config(cls, cfg) -> "UpdateRule":
        return cls(cfg.util_gradient_name, cfg.learning_rate_name == "w_lr", cfg.edit_budget_enforcement,
                   cfg.max_resample_rounds if cfg.edit_budget_enforcement == "resample" else 0)

    def meta_prompt(self, position: Placement, momentum_kind: str, current: str, current_score: float,
                    trajectory_block: str, exemplars: list[Example], gradient: str | None,
                    step_size: int | None) -> str:
        return build_update_prompt(UpdateSpec(self.method, position, momentum_kind), current, current_score,
                                   trajectory_block, exemplars, gradient,
                                   step_size if self.states_step_size else None)

    def over_budget(self, edit_distance: int, step_size: int | None) -> str | None:
        """Why a candidate breaks the word budget (when the budget is enforced), else None."""
        if step_size is not None and self.enforcement != "off" and edit_distance > step_size:
            return f"changes {edit_distance} words, budget {step_size}"
        return None


def extract_tagged(reply: str) -> str:
    """Text between <START> and <END> (variants like </END> accepted)."""
    m = _OPEN_TAG.search(reply)
    start = m.end() if m else 0
    rest = reply[start:]
    close = _CLOSE_TAG.search(rest)
    return (rest[: close.start()] if close else rest).strip()


def extract_all_tagged(reply: str) -> list[str]:
    """Every text between <START> and <END>, in order (for replies that list several);
    a reply without tags counts as one text."""
    found = []
    rest = reply
    while (m := _OPEN_TAG.search(rest)) is not None:
        rest = rest[m.end():]
        close = _CLOSE_TAG.search(rest)
        found.append((rest[: close.start()] if close else rest).strip())
        rest = rest[close.end():] if close else ""
    return [t for t in found if t] or ([reply.strip()] if reply.strip() else [])


def paraphrase_prompt(prompt: str) -> str:
    """Ask for a reworded prompt with the same meaning (APE's resampling, APO's and
    EvoPrompt's paraphrases)."""
    return (
        "Rewrite the following instruction in different words. Keep its meaning, and keep it about as long.\n\n"
        f"Instruction: {prompt}\n\nPut the rewritten instruction between {START} and {END}."
    )


def polish(text: str) -> str:
    """Strip, drop markdown bold, capitalise the first letter (GPO_SPEC 7.4)."""
    text = text.strip().replace("**", "").strip()
    if len(text) > 1:
        text = text[0].upper() + text[1:]
    return text


def leak_reason(text: str, max_words: int | None = None) -> str | None:
    """Why a candidate is unusable (empty, too long, or meta-prompt scaffolding leaked
    into it), else None."""
    if not text.strip():
        return "empty"
    low = text.lower()
    for tag in _LEAKS:
        if tag in low:
            return f"leaked {tag}"
    label = _LABEL_LINE.search(text)
    if label:
        return f"leaked '{label.group(1)}:' line"
    if max_words is not None and len(text.split()) > max_words:
        return f"too long ({len(text.split())} words > {max_words})"
    return None


# a line that opens with a short capitalised label and a colon ("Premise: ...", "Syntax: ..."):
# two different ones make a form or a transcript, not an instruction
_ANY_LABEL = re.compile(r"^\s*([A-Z][A-Za-z]{0,15}(?: [A-Za-z]{1,15})?):(?:\s|$)", re.M)
# speaker turns of an invented dialogue
_TURN = re.compile(r"^\s*(User|Assistant|System|Human|AI|Q|A)\s*:", re.M)
COPY_WORDS = 8  # a run this long copied from the meta-prompt or its examples


def not_an_instruction(text: str, shown: str = "") -> str | None:
    """Why a reply is not an instruction, else None: it invents a transcript (speaker
    turns), reads like a form (two or more different 'Label:' lines), or copies a run of
    ``COPY_WORDS`` words from ``shown`` (the meta-prompt without the prompts it quotes, and
    the examples it shows): a reply that continues the meta-prompt or repeats an example."""
    turn = _TURN.search(text)
    if turn:
        return f"not an instruction: invents a transcript ('{turn.group(1)}:' turn)"
    labels = list(dict.fromkeys(m.group(1) for m in _ANY_LABEL.finditer(text)))
    if len(labels) >= 2:
        return f"not an instruction: reads like a form ({', '.join(repr(l + ':') for l in labels[:3])} lines)"
    words = text.split()
    if shown and len(words) >= COPY_WORDS:
        seen = shown.split()
        grams = {tuple(seen[i:i + COPY_WORDS]) for i in range(len(seen) - COPY_WORDS + 1)}
        if any(tuple(words[i:i + COPY_WORDS]) in grams for i in range(len(words) - COPY_WORDS + 1)):
            return f"not an instruction: copies {COPY_WORDS}+ words of the meta-prompt or its examples"
    return None


def word_edit_distance(a: str, b: str) -> int:
    """Levenshtein distance over words: how many words were inserted, deleted or replaced."""
    x, y = a.split(), b.split()
    prev = list(range(len(y) + 1))
    for i, wx in enumerate(x, 1):
        cur = [i] + [0] * len(y)
        for j, wy in enumerate(y, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (wx != wy))
        prev = cur
    return prev[-1]
