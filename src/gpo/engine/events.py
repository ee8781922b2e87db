"""Every event a run emits, with its fields: the one list the run store writes to
``events.jsonl`` and the progress display, ``gpo runs`` and the report read back.

An event is a JSON object ``{"time": ..., "event": NAME, **fields}``. ``Event`` names
them (a ``str``, so a name compares equal to its text and serialises as it); ``FIELDS``
says what each carries, and ``check`` holds an emitter to it (the run store calls it on
every event, so a misspelt name or field fails the first test that writes it).
"""

from __future__ import annotations

from dataclasses import fields
from enum import StrEnum

from gpo.engine.state import TaskResult
from gpo.engine.trajectory import Candidate


class Event(StrEnum):
    RUN_START = "run_start"  # a run (or its resume) begins
    PLAN = "plan"  # the run's upper bounds and wall-time estimate
    TASK_START = "task_start"
    INITIAL = "initial"  # the initial prompt scored on eval
    HEADROOM = "headroom"  # the headroom check before a task's search, and where the search starts
    CANDIDATE = "candidate"  # one candidate of a step, scored or set aside
    STEP = "step"  # a step finished and was checkpointed
    SEARCH_ENDED = "search_ended"  # a stopper ended a task's search before its last step
    BUDGET_STOP = "budget_stop"  # a run cap stopped the run
    TASK_DONE = "task_done"  # a task's result (TaskResult's fields)
    TASK_USAGE = "task_usage"  # what a task's search paid
    USAGE = "usage"  # usage per role so far
    RUN_DONE = "run_done"
    RUN_STOPPED = "run_stopped"  # finished, but a run cap stopped some task early
    INTERRUPTED = "interrupted"  # Ctrl-C or cancellation; resumable
    FAILED = "failed"  # an error ended the run


# (required fields, optional fields); None: any fields (usage per role, whose members vary)
FIELDS: dict[Event, tuple[frozenset[str], frozenset[str]] | None] = {
    Event.RUN_START: (frozenset({"tasks", "resume", "method", "reused"}), frozenset({"took_over"})),
    Event.PLAN: (frozenset({"scorer_calls", "optimizer_samples", "selection", "resume", "estimated_wall_s",
                            "upper_wall_s", "size"}),
                 frozenset({"timing", "hint", "sized", "unused", "replies"})),
    Event.TASK_START: (frozenset({"task"}), frozenset()),
    Event.INITIAL: (frozenset({"task", "method", "prompt", "eval"}), frozenset()),
    Event.HEADROOM: (frozenset({"task", "n", "scores", "prompts", "omnibus", "best", "versus_initial", "constant",
                                "moves", "verdict", "requests", "cache_hits", "started_from"}), frozenset()),
    Event.CANDIDATE: (frozenset({"task", "global_step"} | {f.name for f in fields(Candidate)}), frozenset()),
    Event.STEP: (frozenset({"task", "method", "epoch", "step", "global_step", "total_steps", "chosen", "score",
                            "best", "step_size", "candidates", "usable", "scorer_requests", "scorer_tokens",
                            "optimizer_samples", "optimizer_tokens", "rejected"}), frozenset({"component"})),
    Event.SEARCH_ENDED: (frozenset({"task", "reason", "step"}), frozenset()),
    Event.BUDGET_STOP: (frozenset({"task", "reason", "step"}), frozenset({"mid_step"})),
    Event.TASK_DONE: (frozenset({"task"} | {f.name for f in fields(TaskResult)}), frozenset()),
    Event.TASK_USAGE: (frozenset({"task", "paid"}), frozenset()),
    Event.USAGE: None,
    Event.RUN_DONE: (frozenset({"results"}), frozenset()),
    Event.RUN_STOPPED: (frozenset({"results"}), frozenset()),
    Event.INTERRUPTED: None,  # the usage so far
    Event.FAILED: (frozenset({"error"}), frozenset()),
}


def check(kind: str, data: dict) -> Event:
    """The event ``kind`` names, once ``data`` is known to carry exactly its fields."""
    try:
        event = Event(kind)
    except ValueError:
        raise ValueError(f"unknown event {kind!r}; gpo.engine.events.Event lists them") from None
    spec = FIELDS[event]
    if spec is not None:
        required, optional = spec
        missing, unknown = required - data.keys(), data.keys() - required - optional
        if missing or unknown:
            raise ValueError(f"event {kind!r}: missing {sorted(missing)}, unknown {sorted(unknown)}")
    return event


def task_result(record: dict) -> TaskResult:
    """The TaskResult a ``task_done`` record carries (its ``task`` field is the task's id,
    dataset/name, where the result's is the name)."""
    task, prefix = record["task"], f"{record['dataset']}/"
    return TaskResult.from_dict({**record, "task": task[len(prefix):] if task.startswith(prefix) else task})


def of(records: list[dict], event: Event) -> list[dict]:
    """The records of one kind, in order."""
    return [r for r in records if r.get("event") == event]


def status_of(records: list[dict]) -> str:
    """What a run's event log says of it: finished, stopped (Ctrl-C or a run cap), failed, or
    incomplete (killed, or still running)."""
    kinds = [r.get("event") for r in records]
    if Event.RUN_DONE in kinds:
        return "finished"
    if Event.INTERRUPTED in kinds[-3:] or Event.BUDGET_STOP in kinds:
        return "stopped"
    if Event.FAILED in kinds[-3:]:
        return "failed"
    return "incomplete"
