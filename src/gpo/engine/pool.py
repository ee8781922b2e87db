"""The prompts a step works from: how a search ranks scored prompts (``fitness``: the eval score
less any length penalty), the pool a beam or population method carries (``keep_best``) and the
prompts a step updates (``parents``), either the method's own choice (``pool='best'``) or drawn
from the Pareto frontier (``pool='pareto'``; gpo.engine.frontier). ``StepActions`` has these."""

from __future__ import annotations

import random

from gpo.config import GPOConfig
from gpo.engine.frontier import draw, frontier
from gpo.engine.state import SearchState
from gpo.engine.trajectory import Candidate
from gpo.prompts.length import length_cost
from gpo.tasks.task import Task


class PoolActions:
    """Ranking and pools, for ``StepActions`` (which gives ``config`` and ``rng``)."""

    config: GPOConfig

    def rng(self, task: Task, *parts) -> random.Random:
        raise NotImplementedError

    def fitness(self, state: SearchState, prompt: str) -> float:
        """What a search ranks a scored prompt by: its eval score less its length's cost
        (``length_penalty``; gpo.prompts.length)."""
        cfg = self.config
        return state.scores[prompt] - length_cost(prompt, cfg.length_penalty, cfg.max_prompt_tokens)

    def ranked(self, state: SearchState, prompts: list[str]) -> list[str]:
        """Scored prompts, best first by ``fitness``; ties keep the given order (deterministic)."""
        scored = [p for p in dict.fromkeys(prompts) if p in state.scores]
        return sorted(scored, key=lambda p: -self.fitness(state, p))

    def keep_best(self, state: SearchState, candidates: list[Candidate], size: int) -> list[str]:
        """The method's pool (beam, population) after a step: the best ``size`` of the old
        pool and this step's scored candidates; with ``pool='pareto'`` the frontier's prompts
        first, most examples won first (gpo.engine.frontier), then the best of the rest."""
        new = [c.text for c in candidates if c.rejected is None]
        ranked = self.ranked(state, state.pool + new)
        if self.config.pool == "pareto":
            front = frontier(state.example_scores)
            ranked = sorted(front, key=lambda p: -front[p]) + [p for p in ranked if p not in front]
        state.pool = ranked[: max(1, size)]
        return state.pool

    def parents(self, task: Task, state: SearchState, g: int, k: int, own: list[str]) -> list[str]:
        """The prompts step g updates: the method's ``own`` choice, or with ``pool='pareto'`` up to
        ``k`` drawn from the frontier by the examples each wins (seeded by task and step)."""
        if self.config.pool != "pareto" or task.focus is not None:  # a program's prompt: its own choice
            return own
        return draw(frontier(state.example_scores), self.rng(task, "pool", g), k) or own

