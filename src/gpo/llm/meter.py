"""The run's meter: what every model role has spent, and the caps it may not pass.

Every backend call (a cache miss; cache hits are free) asks the meter first. A call that
would pass a cap is refused with ``BudgetSpent`` before anything is sent, so a budget is
a hard cap, not a check between steps: ``--max-scorer-calls 30`` sends at most 30 scoring
requests (the scorer's and the judge's). Calls in flight hold a reservation, so
concurrent requests cannot overshoot either. Tokens and cost are only known after a call:
their caps refuse every call once reached, and the calls already in flight then (at most
the role's concurrency) may pass them a little.

The meter is saved with the run (``meter.json``, after every call) and restored by
``gpo resume``, so every budget holds across resumes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Sequence

from gpo.errors import BudgetSpent  # noqa: F401 - raised here, re-exported
from gpo.llm.types import Pricing, Sample, Usage

SCORING_ROLES = ("scorer", "judge")  # their calls count against the scorer-call cap


@dataclass
class Meter:
    max_scorer_calls: int | None = None
    max_optimizer_calls: int | None = None
    max_tokens: int | None = None
    max_cost: float | None = None
    spent: dict[str, Usage] = field(default_factory=dict)  # role -> what it was paid for
    cost: dict[str, float] = field(default_factory=dict)  # role -> US dollars
    on_change: Callable[[dict], None] | None = None  # persistence (the run store)

    def __post_init__(self) -> None:
        self._reserved: Counter[str] = Counter()

    # ---------------------------------------------------------------- the caps
    def _calls(self, roles: Sequence[str]) -> int:
        return sum(self.spent[r].calls for r in roles if r in self.spent) + sum(self._reserved[r] for r in roles)

    def exhausted(self, role: str | None = None) -> str | None:
        """Why one more call by ``role`` would pass a cap; with no role, why the run is out of
        budget (a cap reached), for the check between steps."""
        def full(used: int, cap: int | None, roles: Sequence[str]) -> bool:
            if cap is None:
                return False
            return used >= cap if role is None else (role in roles and used + 1 > cap)

        scoring, optimizer = self._calls(SCORING_ROLES), self._calls(("optimizer",))
        if full(scoring, self.max_scorer_calls, SCORING_ROLES):
            return f"scorer calls {scoring} of {self.max_scorer_calls}"
        if full(optimizer, self.max_optimizer_calls, ("optimizer",)):
            return f"optimizer calls {optimizer} of {self.max_optimizer_calls}"
        tokens = sum(u.prompt_tokens + u.completion_tokens for u in self.spent.values())
        if self.max_tokens is not None and tokens >= self.max_tokens:
            return f"tokens {tokens} of {self.max_tokens}"
        cost = sum(self.cost.values())
        if self.max_cost is not None and cost >= self.max_cost:
            return f"cost ${cost:.4f} of ${self.max_cost}"
        return None

    def admit(self, role: str) -> None:
        """Reserve one call for ``role``, or refuse it."""
        reason = self.exhausted(role)
        if reason:
            raise BudgetSpent(reason)
        self._reserved[role] += 1

    def release(self, role: str) -> None:
        self._reserved[role] = max(0, self._reserved[role] - 1)

    def record(self, role: str, samples: list[Sample], pricing: Pricing | None) -> None:
        """A reserved call came back with these samples."""
        self.release(role)
        u = self.spent.setdefault(role, Usage())
        paid = Usage(calls=1, samples=len(samples), prompt_tokens=sum(s.prompt_tokens for s in samples),
                     completion_tokens=sum(s.completion_tokens for s in samples))
        u.calls += 1
        u.samples += paid.samples
        u.prompt_tokens += paid.prompt_tokens
        u.completion_tokens += paid.completion_tokens
        self.cost[role] = self.cost.get(role, 0.0) + (pricing.cost(paid) if pricing else 0.0)
        if self.on_change is not None:
            self.on_change(self.to_dict())

    # ---------------------------------------------------------------- saved with the run
    def to_dict(self) -> dict:
        return {role: u.as_dict() | {"cost": self.cost.get(role, 0.0)} for role, u in self.spent.items()}

    def restore(self, saved: dict | None) -> None:
        """Continue from what an earlier process of the same run spent."""
        for role, d in (saved or {}).items():
            self.spent[role] = Usage(**{k: v for k, v in d.items() if k != "cost"})
            self.cost[role] = float(d.get("cost", 0.0))
