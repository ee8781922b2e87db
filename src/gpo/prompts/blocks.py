"""The blocks meta-prompts are built from: task examples with the prompt's place marked,
prompts with their scores (one scale everywhere: percent with one decimal), and the
request for a paraphrase. Every method's meta-prompt is assembled from these."""

from __future__ import annotations

from gpo.prompts.tags import END, START
from gpo.scoring.render import Position
from gpo.tasks.task import Example
from gpo.tasks.template import Template

Placement = Position | Template  # where the prompt goes: .phrase and .show(example, placeholder)

PLACEHOLDER = "<Prompt>"


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


def paraphrase_prompt(prompt: str) -> str:
    """Ask for a reworded prompt with the same meaning (APE's resampling, APO's and
    EvoPrompt's paraphrases)."""
    return (
        "Rewrite the following instruction in different words. Keep its meaning, and keep it about as long.\n\n"
        f"Instruction: {prompt}\n\nPut the rewritten instruction between {START} and {END}."
    )


def merge_prompt(first: str, second: str, first_wins: str, second_wins: str) -> str:
    """Ask for one prompt that keeps what each of two prompts gets right (``--merge``, after
    GEPA's merge): each prompt, with task examples only it answers well."""
    return "\n\n".join([
        "Two prompts were written for the same task. Each one gets some examples right that the other gets wrong.",
        f"Prompt A: {first}\n\nExamples prompt A gets right and prompt B gets wrong:\n\n{first_wins}",
        f"Prompt B: {second}\n\nExamples prompt B gets right and prompt A gets wrong:\n\n{second_wins}",
        "Write one new prompt that combines what both prompts do well, so that it gets all of these examples "
        "right. Keep it short and general.",
        f"Put the new prompt between {START} and {END}.",
    ])
