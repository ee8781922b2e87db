"""Stoppers: small objects the search loop asks before every step whether to stop, as
GEPA's stop conditions are.

A stopper is called with the search, the task and its state, and returns a ``Halt``
(why, and whether a run budget stopped the run) or None. ``any_of`` composes them:
the first that halts wins. The search loop builds the two budgets every run has and
adds a caller's own (``PromptSearch(..., stoppers=[NoImprovement(3)])``):

- ``RunBudget``: one of the run's caps (``--max-scorer-calls``, ``--max-optimizer-calls``,
  ``--max-tokens``, ``--max-cost``) is reached in the run's meter (gpo.llm.meter).
  The run stops and spends nothing more: the test split is not scored.
- ``SearchBudget``: the task's search budget (``--scorer-calls-per-task``) cannot pay
  for one more prompt on eval. The search ends; its best prompt is still tested.
- ``NoImprovement``: ``patience`` steps in a row without a new best on eval
  (``--patience``). The search ends; its best prompt is still tested.

The meter refuses any single call past a run cap, so a run budget holds even inside a
step; the stoppers decide whether to begin one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence

from gpo.tasks.task import Task


@dataclass(frozen=True)
class Halt:
    reason: str
    run_budget: bool = False  # a run cap: nothing more is spent, so the test split is not scored


class Stopper(Protocol):
    def __call__(self, search: Any, task: Task, state: Any) -> Halt | None:
        """``search``: the PromptSearch asking (gpo.engine.search, which imports this module);
        ``state``: its SearchState for ``task``."""
        ...


@dataclass(frozen=True)
class RunBudget:
    exhausted: Callable[[], str | None]  # the run meter's: why the run is out of budget, else None

    def __call__(self, search, task, state) -> Halt | None:
        reason = self.exhausted()
        return Halt(reason, run_budget=True) if reason else None


SPENT = "scorer budget spent"


@dataclass(frozen=True)
class SearchBudget:
    scorer_calls: int  # scorer requests per task's search (cached or not, so resumes decide alike)

    def __call__(self, search, task, state) -> Halt | None:
        one_prompt = len(task.split("eval")) * search.evaluator.requests_per_example(task)
        if search.ledger.remaining(task, state) >= one_prompt:
            return None
        return Halt(f"{SPENT} ({search.ledger.spent(task, state)} of {self.scorer_calls})")


@dataclass(frozen=True)
class NoImprovement:
    patience: int  # steps in a row without a new best eval score

    def __call__(self, search, task, state) -> Halt | None:
        points = state.trajectory.points
        best = max(range(len(points)), key=lambda i: points[i].score)  # the earliest best
        if len(points) - 1 - best >= self.patience:
            return Halt(f"no new best on eval for {self.patience} step{'s' if self.patience != 1 else ''}")
        return None


@dataclass(frozen=True)
class AnyOf:
    stoppers: Sequence[Stopper]

    def __call__(self, search, task, state) -> Halt | None:
        return next((h for s in self.stoppers if (h := s(search, task, state)) is not None), None)


def any_of(*stoppers: Stopper) -> AnyOf:
    return AnyOf(tuple(stoppers))
