"""Several copies of one model behind the ``LLM`` interface: a fleet of endpoints or Ray replicas.

A ``Pool`` is an ``LLM`` whose ``_sample`` hands each request to one of its members:

- the member with the fewest requests outstanding (ties: the one that has served least);
- a member that fails with a retryable error is set aside for ``cooldown`` seconds and
  the request goes at once to another member;
- a member that is *lost* (a Ray actor that died) is replaced by a fresh one through the
  pool's ``replace`` hook, and its requests go to the others meanwhile;
- when every member has failed this request or is cooling down, the pool raises a
  retryable error, so the base class's retry policy backs off and tries again.

The cache, the retry policy and the usage totals stay with the pool, in the driver
process: a request answered by any member is stored once under the pool's
``backend_id``, which does not depend on which members there are (they serve the same
model), so a run resumed on a different list of servers reuses every answer. Usage is
also counted per member (``member_usage``) and reported with the run's usage.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Protocol

from gpo.llm.base import LLM, Request, Sample, TransientLLMError, Usage


class MemberLost(TransientLLMError):
    """The member is gone for good (its process died); the pool replaces it."""


class Member(Protocol):
    """One copy of the model: a name for usage tables and one sampling call."""

    name: str

    async def sample(self, request: Request, indices: list[int]) -> list[Sample]: ...


@dataclass
class LLMMember:
    """A backend used as a pool member: its ``_sample``, without its own cache or retries."""

    llm: LLM
    name: str = ""

    def __post_init__(self) -> None:
        self.name = self.name or self.llm.describe()

    async def sample(self, request: Request, indices: list[int]) -> list[Sample]:
        return await self.llm._sample(request, indices)

    async def aclose(self) -> None:
        await self.llm.aclose()


@dataclass
class Pool(LLM):
    """Requests spread over ``members`` serving ``model``; see the module docstring."""

    members: list = field(default_factory=list)
    kind: str = "pool"  # cache-key identity, e.g. "openai-fleet"
    cooldown: float = 10.0
    replace: Callable[[object], Awaitable[object]] | None = None  # lost member -> new member

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.members:
            raise ValueError("a pool needs at least one member")
        self._outstanding = {m.name: 0 for m in self.members}
        self._cool_until = {m.name: 0.0 for m in self.members}
        self.member_usage: dict[str, Usage] = {m.name: Usage() for m in self.members}
        self.replaced = 0  # members replaced after they were lost
        self.replace_errors: list[str] = []
        self._replacing: dict[str, asyncio.Future] = {}

    @property
    def backend_id(self) -> str:
        return self.kind

    def describe(self) -> str:
        return f"{self.model} ({self.kind}, {len(self.members)} members)"

    def _pick(self, tried: set[str]):
        now = time.monotonic()
        ready = [m for m in self.members if m.name not in tried and self._cool_until[m.name] <= now]
        if not ready:
            return None
        return min(ready, key=lambda m: (self._outstanding[m.name], self.member_usage[m.name].calls))

    def _wait_hint(self, tried: set[str]) -> float | None:
        waiting = [self._cool_until[m.name] for m in self.members if m.name not in tried]
        return max(0.0, min(waiting) - time.monotonic()) if waiting else None

    async def _sample(self, request: Request, indices: list[int]) -> list[Sample]:
        tried: set[str] = set()
        last: Exception | None = None
        while True:
            member = self._pick(tried)
            if member is None:
                broken = "; ".join(self.replace_errors[-1:])
                raise TransientLLMError(
                    f"{self.describe()}: no member could answer (last error: {last})"
                    + (f"; replacing a lost member failed: {broken}" if broken else ""),
                    retry_after=self._wait_hint(tried),
                )
            self._outstanding[member.name] += 1
            try:
                samples = await member.sample(request, indices)
            except MemberLost as err:
                last = err
                tried.add(member.name)
                await self._replace(member)
                continue
            except TransientLLMError as err:
                last = err
                tried.add(member.name)
                self._cool_until[member.name] = time.monotonic() + self.cooldown
                continue
            finally:
                self._outstanding[member.name] = max(0, self._outstanding.get(member.name, 1) - 1)
            self._count(member.name, samples)
            return samples

    async def _replace(self, member) -> None:
        """Set a lost member aside and start its replacement in the background (once)."""
        self._cool_until[member.name] = float("inf")
        if self.replace is None or member not in self.members or member.name in self._replacing:
            return
        self._replacing[member.name] = asyncio.ensure_future(self._swap(member))

    async def _swap(self, member) -> None:
        try:
            fresh = await self.replace(member)  # type: ignore[misc]
        except Exception as err:  # noqa: BLE001 - the others keep serving; said in the error if all fail
            self.replace_errors.append(f"{member.name}: {err}")
            return
        self.members[self.members.index(member)] = fresh
        self._outstanding.setdefault(fresh.name, 0)
        self._cool_until[fresh.name] = 0.0
        self.member_usage.setdefault(fresh.name, Usage())
        self.replaced += 1

    def _count(self, name: str, samples: list[Sample]) -> None:
        self.member_usage[name].add(Usage.of_call(samples))

    def usage_by_member(self) -> dict[str, dict]:
        return {name: u.as_dict() for name, u in self.member_usage.items()}

    async def aclose(self) -> None:
        for task in self._replacing.values():
            task.cancel()
        for m in self.members:
            close = getattr(m, "aclose", None)
            if close is not None:
                await close()
