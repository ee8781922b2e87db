"""The run's meter: what every model role has spent, and the caps it may not pass.

Every backend call (a cache miss; cache hits are free) asks the meter first. A call that
would pass a cap is refused with ``BudgetSpent`` before anything is sent, so a budget is
a hard cap, not a check between steps: ``--max-scorer-calls 30`` sends at most 30 scoring
requests (the scorer's and the judge's). Calls in flight hold a reservation, so
concurrent requests cannot overshoot either. Tokens and cost are only known after a call:
their caps refuse every call once reached, and the calls already in flight then (at most
the role's concurrency) may pass them a little.

Every paid call is also charged to the task it was made for: the search runs each task
inside ``charge_to(task_id)`` (a context variable, so tasks searched concurrently keep
their own accounts), and ``task_spent(task_id)`` gives that task's calls, samples,
tokens and cost by role. The caps stay the run's.

What counts as spent is what may be billed: a call that returned, and a call cancelled
while its request was on the wire (it may have reached the model). A call that failed for
good (refused connections, 429s and errors on every attempt), or was cancelled between
attempts, is not counted: it cannot have been answered.

The meter is saved with the run (``meter.json``, after every call) and restored by
``gpo resume``, so every budget holds across resumes, and each task's account too.
"""

from __future__ import annotations

from collections import Counter
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

from gpo.errors import BudgetSpent  # noqa: F401 - raised here, re-exported
from gpo.llm.types import Pricing, Sample, Usage
from gpo.names import ROLES  # noqa: F401 - re-exported

SCORING_ROLES = ROLES[1:]  # their calls count against the scorer-call cap

_task: ContextVar[str | None] = ContextVar("gpo_meter_task", default=None)


@contextmanager
def charge_to(task_id: str) -> Iterator[None]:
    """Charge the paid calls made inside (and in asyncio tasks started inside) to ``task_id``."""
    token = _task.set(task_id)
    try:
        yield
    finally:
        _task.reset(token)


@dataclass
class Account:
    """What was paid for, by role: calls, samples, tokens (Usage) and US dollars."""

    spent: dict[str, Usage] = field(default_factory=dict)
    cost: dict[str, float] = field(default_factory=dict)

    def add(self, role: str, paid: Usage, dollars: float) -> None:
        self.spent.setdefault(role, Usage()).add(paid)
        self.cost[role] = self.cost.get(role, 0.0) + dollars

    def to_dict(self) -> dict:
        return {role: u.as_dict() | {"cost": self.cost.get(role, 0.0)} for role, u in self.spent.items()}

    @classmethod
    def from_dict(cls, d: dict) -> "Account":
        account = cls()
        for role, usage in d.items():
            account.spent[role] = Usage(**{k: v for k, v in usage.items() if k != "cost"})
            account.cost[role] = float(usage.get("cost", 0.0))
        return account


@dataclass
class Meter:
    max_scorer_calls: int | None = None
    max_optimizer_calls: int | None = None
    max_tokens: int | None = None
    max_cost: float | None = None
    run: Account = field(default_factory=Account)  # the whole run, by role
    tasks: dict[str, Account] = field(default_factory=dict)  # each task's share
    on_change: Callable[[dict], None] | None = None  # persistence (the run store)
    halted: str | None = None  # a stop asked from outside (``StopSwitch``): every new call is refused

    def __post_init__(self) -> None:
        self._reserved: Counter[str] = Counter()

    @property
    def spent(self) -> dict[str, Usage]:
        return self.run.spent

    @property
    def cost(self) -> dict[str, float]:
        return self.run.cost

    def task_spent(self, task_id: str) -> dict:
        """One task's paid calls, samples, tokens and cost, by role."""
        return self.tasks[task_id].to_dict() if task_id in self.tasks else {}

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

        def flying(roles: Sequence[str]) -> str:
            n = sum(self._reserved[r] for r in roles)
            return f", {n} of them still in flight" if n else ""

        if self.halted:
            return self.halted
        scoring, optimizer = self._calls(SCORING_ROLES), self._calls(("optimizer",))
        if full(scoring, self.max_scorer_calls, SCORING_ROLES):
            return f"scorer calls {scoring} of {self.max_scorer_calls}{flying(SCORING_ROLES)}"
        if full(optimizer, self.max_optimizer_calls, ("optimizer",)):
            return f"optimizer calls {optimizer} of {self.max_optimizer_calls}{flying(('optimizer',))}"
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
        paid = Usage.of_call(samples)
        dollars = pricing.cost(paid) if pricing else 0.0
        self.run.add(role, paid, dollars)
        if (task := _task.get()) is not None:
            self.tasks.setdefault(task, Account()).add(role, paid, dollars)
        if self.on_change is not None:
            self.on_change(self.to_dict())

    # ---------------------------------------------------------------- saved with the run
    def to_dict(self) -> dict:
        return {"run": self.run.to_dict(), "tasks": {t: a.to_dict() for t, a in self.tasks.items()}}

    def restore(self, saved: dict | None) -> None:
        """Continue from what an earlier process of the same run spent (a meter.json from
        before per-task accounts holds the run's roles only)."""
        saved = saved or {}
        if "run" not in saved:
            saved = {"run": saved, "tasks": {}}
        self.run = Account.from_dict(saved["run"])
        self.tasks = {t: Account.from_dict(a) for t, a in saved["tasks"].items()}


class StopSwitch:
    """A stop asked from outside a run (a signal): the meters attached refuse every new call, so
    the requests on the wire finish and are counted and cached, and the run stops as at a run
    cap (the step under way is dropped, the state is saved, a resume pays nothing twice)."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self._meters: list[Meter] = []

    @property
    def attached(self) -> bool:
        """Whether a run has attached its meter (before that, a stop cancels instead)."""
        return bool(self._meters)

    def attach(self, meter: Meter) -> None:
        self._meters.append(meter)
        meter.halted = self.reason

    def pull(self, reason: str) -> None:
        self.reason = reason
        for meter in self._meters:
            meter.halted = reason
