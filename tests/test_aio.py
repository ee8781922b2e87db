"""No request is left behind: a failure waits for (or stops) its siblings before it is raised.

Plain coroutines for the helpers; a scripted fake model (named as such) behind a real meter
for the Evaluator, whose scorings outlive a caller that was cancelled."""

from __future__ import annotations

import asyncio

import pytest

from fakes import ScriptedLLM, plus_task
from gpo.aio import first_failure, settled
from gpo.errors import BudgetSpent
from gpo.llm.meter import Meter
from gpo.scoring import Evaluator


async def fails_soon():
    await asyncio.sleep(0.01)
    raise ValueError("refused")


async def refused():
    raise BudgetSpent("scorer calls 1 of 1")


def test_settled_raises_the_first_failure_only_once_every_sibling_has_finished():
    finished = []

    async def slow(i):
        await asyncio.sleep(0.1)
        finished.append(i)
        return i

    async def go():
        with pytest.raises(ValueError, match="refused"):  # a real failure before a budget refusal
            await settled([slow(0), refused(), fails_soon(), slow(1)])
        return list(finished)

    assert sorted(asyncio.run(go())) == [0, 1]
    assert asyncio.run(settled([asyncio.sleep(0, result=i) for i in range(3)])) == [0, 1, 2]
    with pytest.raises(BudgetSpent):
        asyncio.run(settled([asyncio.sleep(0), refused()]))


def test_first_failure_stops_the_others_and_waits_until_they_have_stopped():
    stopped = []

    async def long():
        try:
            await asyncio.sleep(30)
        finally:
            stopped.append(True)

    async def go():
        with pytest.raises(ValueError, match="refused"):
            await first_failure([long(), fails_soon(), long()])
        return list(stopped)

    assert asyncio.run(go()) == [True, True]
    assert asyncio.run(first_failure([asyncio.sleep(0, result=i) for i in range(3)])) == [0, 1, 2]


def test_scorings_left_by_a_cancelled_caller_are_stopped_and_counted_before_close():
    meter = Meter()
    scorer = ScriptedLLM(script=lambda r, i: "x", delay=30)
    scorer.meter, scorer.role = meter, "scorer"
    evaluator = Evaluator(scorer, second_round=False)
    task = plus_task(n_eval=4)

    async def go():
        caller = asyncio.ensure_future(evaluator.evaluate(task, "start"))
        deadline = asyncio.get_running_loop().time() + 10
        while len(scorer.requests) < 4 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        caller.cancel()
        await asyncio.gather(caller, return_exceptions=True)
        assert scorer._in_flight == 4  # the shared scoring outlives its caller
        await evaluator.cancel_pending()
        return scorer._in_flight

    assert asyncio.run(go()) == 0
    assert meter.spent["scorer"].calls == 4  # cut off on the wire: counted as spent
