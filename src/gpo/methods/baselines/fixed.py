"""The fixed rows of the paper's tables: no search, one instruction for every task."""

from __future__ import annotations

from gpo.engine.search import PromptSearch
from gpo.tasks.task import Task, TaskError


class FixedPrompt(PromptSearch):
    """Scores one fixed instruction; the search has no steps, so initial = final."""

    prompt = ""

    @classmethod
    def initial_prompt_for(cls, config, task: Task) -> str:
        if task.program is not None:
            raise TaskError(f"--method {cls.name} scores one fixed prompt; a program's prompts are its own "
                            "(--prompts): use a method that searches (gpo, or a baseline such as opro)")
        return cls.prompt

    @classmethod
    def planned_steps(cls, config, options, task: Task) -> int:
        return 0


class EmptyPrompt(FixedPrompt):
    """The task input alone, no instruction (the paper's "Empty" row)."""

    name = "empty"
    prompt = ""


class ChainOfThought(FixedPrompt):
    """Zero-shot chain of thought (Kojima et al., 2022), the paper's "CoT" row."""

    name = "cot"
    prompt = "Let's think step by step."
