"""The run's events are the ones gpo.engine.events declares, with their fields; the run
store holds every emitter to that list, and readers get a run's status from it."""

from __future__ import annotations

import asyncio
import json

import pytest

from fakes import ScriptedLLM, config, echo_scorer, plus_task
from gpo.engine.events import FIELDS, Event, status_of
from gpo.methods import method_class
from gpo.run.store import RunStore, run_status
from gpo.scoring import Evaluator, PromptFormat


def grower(request, i):
    """Scripted optimizer (a fake): a new prompt with one more '+' each time."""
    return f"<START>plus {'+' * (2 + (request.seed or 0) % 5)} {i}<END>"


def test_a_search_writes_only_declared_events_with_their_fields(tmp_path):
    store = RunStore(tmp_path)
    search = method_class("gpo")(config(num_search_epochs=1), ScriptedLLM(model="opt", script=grower),
                                 Evaluator(echo_scorer(), PromptFormat(), second_round=False), None, store)
    asyncio.run(search.optimize(plus_task()))
    store.close()
    records = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    kinds = {r["event"] for r in records}
    # the store refuses an undeclared event or field as it is written (below), so a search that
    # emitted one would have failed above; what is left to check is that the events came
    assert {Event.INITIAL, Event.CANDIDATE, Event.STEP, Event.TASK_DONE} <= kinds


def test_the_store_refuses_an_undeclared_event_or_field(tmp_path):
    store = RunStore(tmp_path)
    with pytest.raises(ValueError, match="unknown event 'stepp'"):
        store.event("stepp", task="t")
    with pytest.raises(ValueError, match="missing \\['step'\\], unknown \\['steps'\\]"):
        store.event(Event.SEARCH_ENDED, task="t", reason="budget", steps=3)
    store.event(Event.SEARCH_ENDED, task="t", reason="budget", step=3)
    store.close()
    assert len((tmp_path / "events.jsonl").read_text().splitlines()) == 1


def test_every_event_is_declared_and_a_run_status_reads_from_the_log(tmp_path):
    assert set(FIELDS) == set(Event)
    assert status_of([{"event": "run_start"}, {"event": "run_done"}]) == "finished"
    assert status_of([{"event": "run_start"}, {"event": "interrupted"}]) == "stopped"
    assert status_of([{"event": "run_start"}, {"event": "failed"}]) == "failed"
    assert status_of([{"event": "run_start"}]) == "incomplete"
    store = RunStore(tmp_path)
    store.event(Event.RUN_START, tasks=["t"], resume=False, method="gpo", reused=False)
    store.event(Event.FAILED, error="boom")
    store.close()
    assert run_status(tmp_path)["status"] == "failed"
