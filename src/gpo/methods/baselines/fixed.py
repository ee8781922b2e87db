"""The fixed rows of the paper's tables: no search, one instruction for every task."""

from __future__ import annotations

from gpo.engine.search import PromptSearch
from gpo.tasks.task import Task


class FixedPrompt(PromptSearch):
    """Scores one fixed instruction; the search has no steps, so initial = final."""

    prompt = ""

    def initial_prompt(self, task: Task) -> str:
        return self.prompt

    def total_steps(self, task: Task) -> int:
        return 0


class EmptyPrompt(FixedPrompt):
    """The task input alone, no instruction (the paper's "Empty" row)."""

    name = "empty"
    prompt = ""


class ChainOfThought(FixedPrompt):
    """Zero-shot chain of thought (Kojima et al., 2022), the paper's "CoT" row."""

    name = "cot"
    prompt = "Let's think step by step."
