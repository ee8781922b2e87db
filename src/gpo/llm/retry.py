"""Bounded exponential backoff with jitter, honouring Retry-After.

The original retried forever, even on authentication errors, and dropped the
model and ``n`` on retry. Here the same zero-argument call is retried, so every
argument survives, and fatal errors (400/401/403/404) fail at once.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Awaitable, Callable, TypeVar

from gpo.llm.types import LLMError, TransientLLMError

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    base_delay: float = 0.5  # seconds; doubles each attempt
    max_delay: float = 30.0
    jitter: float = 0.25  # +- fraction of the delay

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        if retry_after is not None and retry_after >= 0:
            return min(retry_after, self.max_delay)
        d = min(self.base_delay * (2**attempt), self.max_delay)
        return max(0.0, d * (1 + random.uniform(-self.jitter, self.jitter)))


async def with_retries(call: Callable[[], Awaitable[T]], policy: RetryPolicy, what: str) -> T:
    last: TransientLLMError | None = None
    for attempt in range(policy.max_attempts):
        try:
            return await call()
        except TransientLLMError as err:
            last = err
            if attempt + 1 < policy.max_attempts:
                await asyncio.sleep(policy.delay(attempt, err.retry_after))
    raise LLMError(f"{what}: gave up after {policy.max_attempts} attempts: {last}")
