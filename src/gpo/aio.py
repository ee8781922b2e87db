"""Concurrency that leaves no request behind.

``asyncio.gather`` raises the first failure at once and leaves its siblings running. When
the failure is a budget refusal, those siblings are paid requests on the wire; a run that
then ends closes its HTTP clients under them, and what the servers received goes
uncounted. ``settled`` waits for every awaitable before raising; ``cancel_all`` cancels
tasks and waits until each has finished (so a request cut off in flight is counted)."""

from __future__ import annotations

import asyncio
from typing import Awaitable, Iterable, TypeVar

from gpo.errors import BudgetSpent

T = TypeVar("T")


async def settled(aws: Iterable[Awaitable[T]]) -> list[T]:
    """Await every awaitable concurrently; once all have finished, return the results in
    order, or raise the first failure: a real one before a budget refusal, so that a broken
    endpoint is not reported as a spent budget."""
    out = await asyncio.gather(*aws, return_exceptions=True)
    failures = [item for item in out if isinstance(item, BaseException)]
    if failures:
        raise next((f for f in failures if not isinstance(f, BudgetSpent)), failures[0])
    return list(out)


async def cancel_all(tasks: Iterable[asyncio.Future]) -> None:
    """Cancel the tasks not yet done and wait until every one has finished."""
    tasks = [t for t in tasks if not t.done()]
    for t in tasks:
        t.cancel()
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)


async def first_failure(aws: Iterable[Awaitable[T]]) -> list[T]:
    """Run the awaitables as tasks; the first to fail cancels the others (waiting until they
    have stopped) and its error is raised. Results in order when none fails."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for t in tasks:
            if t.done() and not t.cancelled() and t.exception() is not None:
                raise t.exception()
        return [t.result() for t in tasks]
    finally:
        await cancel_all(tasks)
