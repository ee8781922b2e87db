"""The human reference: a task's human-written instruction (instruction induction's gold
instructions) scored beside a prompt on the same examples, alone and with the prompt's own
demonstrations, each paired against the prompt. gpo scores it after a search (the closing
lines, ``optimized_prompts.jsonl``, the report, MLflow) and in ``gpo evaluate``; no search
reads it, so a prompt that reaches it was found, not copied."""

from __future__ import annotations

from gpo.scoring.demos import split_demos, with_demos
from gpo.tasks.task import Task


async def human_reference(evaluator, task: Task, prompt: str, split: str, alpha: float = 0.05,
                          seed: int = 0) -> dict | None:
    """The human instruction on ``split`` alone and, where ``prompt`` shows demonstrations,
    with the same ones, each with ``prompt`` compared against it (paired); None where the task
    has no human instruction. A JSON-ready dict that ``describe`` reads."""
    if not task.human_instruction:
        return None
    _, demos = split_demos(prompt)
    references = {"alone": task.human_instruction}
    if demos:
        references["with_demos"] = with_demos(task.human_instruction, demos)
    ours, *theirs = await evaluator.evaluate_many(task, [prompt, *references.values()], split)
    out = {"instruction": task.human_instruction, "split": split, "demos": len(demos)}
    for (name, _), ev in zip(references.items(), theirs):
        out[name] = {"score": ev.score, "prompt_vs_it": ours.versus(ev, alpha=alpha, seed=seed).as_dict()}
    return out


def describe(reference: dict | None, what: str = "the final prompt") -> str | None:
    """'the human instruction scores 0.0 on test, 75.0 with the same 3 demonstrations; the final
    prompt against it: +60.0 (...), against it with the demonstrations: -15.0 (...)'."""
    from gpo.scoring.stats import Comparison

    if not reference:
        return None
    split, k = reference["split"], reference["demos"]
    scores = f"the human instruction {reference['instruction']!r} scores {100 * reference['alone']['score']:.1f} on {split}"
    versus = f"{what} against it: {Comparison.from_dict(reference['alone']['prompt_vs_it']).describe()}"
    if "with_demos" in reference:
        scores += f", {100 * reference['with_demos']['score']:.1f} with the same {k} demonstration{'s' * (k != 1)}"
        versus += (f"; against it with the demonstrations: "
                   f"{Comparison.from_dict(reference['with_demos']['prompt_vs_it']).describe()}")
    return f"{scores}; {versus}"
