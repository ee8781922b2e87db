"""The model protocol: one async call, ``generate(requests) -> completions``.

Every backend (embedded llama.cpp, any OpenAI-compatible server) implements only
``_sample``: produce completions for some sample indices of one request. This base
class adds what every backend needs the same way: the durable cache (a rerun or a
resumed run pays for nothing twice), a concurrency limit, bounded retries and usage
accounting. Only ``gpo.llm`` talks to models.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Sequence

from gpo.aio import settled
from gpo.llm.cache import ResponseCache, cache_key
from gpo.llm.meter import Meter
from gpo.llm.retry import RetryPolicy, with_retries
from gpo.llm.types import (  # noqa: F401 - re-exported: the model protocol's vocabulary
    Completion,
    FatalLLMError,
    LLMError,
    Message,
    Pricing,
    ReplyShape,
    Request,
    Sample,
    TransientLLMError,
    Usage,
    dumps_canonical,
)

@dataclass
class LLM(ABC):
    """Base of every backend. Subclasses set ``backend_id`` and implement ``_sample``."""

    model: str
    concurrency: int = 8
    cache: ResponseCache | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    pricing: Pricing | None = None
    usage: Usage = field(default_factory=Usage)
    meter: Meter | None = None  # the run's budgets: asked before every backend call
    role: str = "model"  # what the meter counts this model's calls as (optimizer, scorer, judge)

    def __post_init__(self) -> None:
        self._limit: asyncio.Semaphore | None = None
        self._limit_loop = None
        self._in_flight = 0
        self.max_in_flight = 0  # the most requests ever in flight at once (for tests and benchmarks)

    @property
    @abstractmethod
    def backend_id(self) -> str:
        """Identifies the backend in cache keys (kind + endpoint or file)."""

    @abstractmethod
    async def _sample(self, request: Request, indices: list[int]) -> list[Sample]:
        """Produce one Sample per requested sample index (in order)."""

    @property
    def cost(self) -> float:
        return self.pricing.cost(self.usage) if self.pricing else 0.0

    in_process = False  # True where this machine runs the model itself (its speed can be timed here)

    async def time_request(self, request: Request) -> tuple[float, list[Sample]]:
        """Wall seconds the backend takes to answer one request, outside the cache and the
        usage counts, with its samples (their token counts): the probe behind a run's time estimate."""
        start = time.perf_counter()
        samples = await self._sample(request, list(range(request.n)))
        return time.perf_counter() - start, samples

    async def generate(self, requests: Sequence[Request]) -> list[Completion]:
        """Answer every request, concurrently up to the backend's limit, in order. Where one
        fails (a budget refusal), the others still finish, and are counted and cached,
        before the failure is raised."""
        return await settled(self.complete(r) for r in requests)

    async def complete(self, request: Request) -> Completion:
        keys = [self._key(request, i) for i in range(request.n)]
        found = self.cache.get_many(keys) if self.cache is not None else {}
        samples: list[Sample | None] = [found.get(k) for k in keys]
        missing = [i for i, s in enumerate(samples) if s is None]
        self.usage.cache_hits += request.n - len(missing)
        if missing:
            fresh = await self._call(request, missing)
            for i, sample in zip(missing, fresh):
                samples[i] = sample
                if self.cache is not None:
                    self.cache.put(keys[i], sample, self.backend_id, self.model)
        return Completion(samples=samples, cached=request.n - len(missing))  # type: ignore[arg-type]

    async def _call(self, request: Request, indices: list[int]) -> list[Sample]:
        loop = asyncio.get_running_loop()
        if self._limit is None or self._limit_loop is not loop:  # one limiter per event loop
            self._limit, self._limit_loop = asyncio.Semaphore(max(1, self.concurrency)), loop
        async with self._limit:
            if self.meter is not None:
                self.meter.admit(self.role)  # BudgetSpent: nothing is sent
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
            on_wire = [False]  # an attempt is being sent or answered now

            async def attempt() -> list[Sample]:
                on_wire[0] = True
                try:
                    samples = await self._sample(request, indices)
                except asyncio.CancelledError:
                    raise  # still on the wire when cancelled
                except BaseException:
                    on_wire[0] = False  # answered with an error: backing off now, or giving up
                    raise
                on_wire[0] = False
                return samples

            try:
                samples = await with_retries(attempt, self.retry, what=self.describe())
            except asyncio.CancelledError:
                # Cancelled while a request was on the wire: it may have reached the model and
                # be billed, so it counts as spent (the answer is lost). Cancelled between
                # attempts (backing off after a refused connection, a 429 or an error):
                # nothing was answered, and nothing is counted.
                if self.meter is not None:
                    if on_wire[0]:
                        self.meter.record(self.role, [], self.pricing)
                    else:
                        self.meter.release(self.role)
                raise
            except BaseException:
                if self.meter is not None:
                    self.meter.release(self.role)
                raise
            finally:
                self._in_flight -= 1
        if self.meter is not None:
            self.meter.record(self.role, samples, self.pricing)
        self.usage.add(Usage.of_call(samples))
        return samples

    def _key(self, request: Request, index: int) -> str:
        return cache_key(self.backend_id, self.model, request.cache_fields(), index)

    def describe(self) -> str:
        return f"{self.model} ({self.backend_id})"

    def usage_by_member(self) -> dict[str, dict]:
        """Usage of each copy of the model, where requests are spread over several (a pool)."""
        return {}

    async def aclose(self) -> None:  # pragma: no cover - overridden where there is something to close
        return None
