"""Where a search starts: the headroom check before it (``config.probe``; gpo.scoring.headroom)
and, where a probe prompt beat the initial prompt significantly on the check's sample, that
probe as the search's starting point. The check is paid outside the search budget (the run's
budgets and the plan count it); the initial prompt stays the one every gain is measured from."""

from __future__ import annotations

from gpo.config import GPOConfig
from gpo.engine.events import Event
from gpo.engine.hooks import Hooks
from gpo.engine.state import SearchState
from gpo.engine.trajectory import Point
from gpo.scoring.evaluate import Evaluator
from gpo.scoring.headroom import Headroom, probe
from gpo.tasks.task import Task


async def check_headroom(cfg: GPOConfig, evaluator: Evaluator, task: Task, initial: str) -> Headroom | None:
    """The headroom check on a task whose prompt is one text (a program's search has none)."""
    if not cfg.probe or task.program is not None:
        return None
    return await probe(evaluator, task, initial, seed=cfg.seed, alpha=cfg.race_alpha, extraction=cfg.extraction)


async def start_from(evaluator: Evaluator, hooks: Hooks, task: Task, state: SearchState, headroom: Headroom,
                     per_example: bool = False) -> None:
    """Record the check in ``state``, and where its best probe beat the initial prompt significantly
    (and the best constant answer, where the task has one: a prompt collapsed to one answer is no
    place to start), score that probe on all of eval and start the search from it: it joins the
    trajectory (so it can be adopted like any candidate) and the pool, and is the current prompt."""
    found = headroom.versus_initial
    if headroom.best != "initial" and found.significant and found.diff > 0 and headroom.above_constant:
        start = headroom.prompts[headroom.best]
        ev = await evaluator.evaluate(task, start, "eval")
        hooks.save_evaluation(task, "eval/probe", ev)
        state.trajectory.points.append(Point(start, ev.score, -1, -1))
        state.scored(start, ev, per_example)
        state.seen.append(start)
        state.chosen.append(start)
        state.pool.append(start)
        state.current, state.started_from = start, headroom.best
    state.headroom = headroom.as_dict()
    hooks.event(Event.HEADROOM, **{**state.headroom, "task": task.id, "started_from": state.started_from})
