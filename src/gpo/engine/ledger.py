"""What a task's search has spent on scoring, kept in one place.

The search's state keeps the scorer requests and tokens of its finished phases, and what they
scored (so they survive a resume); the phase under way is read off the Evaluator's counters since it began. The search
loop, the per-task search budget (``stoppers.SearchBudget``), a step's actions and the methods
all read this one ledger; the run's meter (``llm/meter.py``) keeps the run's own account.
"""

from __future__ import annotations

from gpo.engine.state import SearchState
from gpo.scoring.evaluate import Evaluator
from gpo.tasks.task import Task


class Ledger:
    def __init__(self, evaluator: Evaluator, cap: int | None = None):
        self.evaluator = evaluator
        self.cap = cap  # scorer requests a task's search may send (None: no per-task budget)
        self._base: dict[str, tuple[int, int]] = {}  # task -> the Evaluator's counters when the phase began
        # task -> the spending a method's current phase may reach (a share of ``cap``; None: all of it)
        self.limit: dict[str, float | None] = {}

    def begin(self, task: Task) -> None:
        """A phase (the initial scoring, a step) begins now."""
        self._base[task.id] = (self.evaluator.requests[task.id], self.evaluator.tokens[task.id])

    def settle(self, task: Task, state: SearchState) -> None:
        """Move what the phase under way spent into the state, and begin the next one."""
        requests, tokens = self._base[task.id]
        state.scorer_requests += self.evaluator.requests[task.id] - requests
        state.scorer_tokens += self.evaluator.tokens[task.id] - tokens
        state.paid = self.evaluator.paid.dump(task.id)
        self.begin(task)

    def resume(self, task: Task, state: SearchState) -> None:
        """A search resumed from its checkpoint: what its earlier processes scored, and counted,
        is not counted again when scored again (``gpo.scoring.paid``)."""
        self.evaluator.paid.load(task.id, state.paid)

    def spent(self, task: Task, state: SearchState) -> int:
        """Scorer requests of this task's search so far, the running phase included."""
        return state.scorer_requests + self.evaluator.requests[task.id] - self._base.get(task.id, (0, 0))[0]

    def remaining(self, task: Task, state: SearchState) -> float:
        """Scorer requests the search budget still allows (infinite without one), within the
        current phase's share of it where a method has phases."""
        if self.cap is None:
            return float("inf")
        limit = self.limit.get(task.id)
        return (self.cap if limit is None else min(self.cap, limit)) - self.spent(task, state)
