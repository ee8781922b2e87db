"""Merges of the Pareto pool (``pool='pareto'`` with ``merge=N``, after GEPA's ``use_merge``):
after a step, while fewer than N merges have been made in the task's search, two frontier
prompts that each win eval examples the other loses are shown to the optimizer with up to
``SHOWN`` of those examples each, and its one reply is screened and scored like any candidate
(raced, counted in the search budget and the step's record). A merged prompt better than every
prompt so far (by ``fitness``) joins the trajectory, so it can be adopted."""

from __future__ import annotations

from gpo.engine.actions import StepActions
from gpo.engine.frontier import merge_pair
from gpo.engine.state import SearchState, stable_seed
from gpo.engine.trajectory import Point, StepRecord
from gpo.prompts.blocks import format_exemplars, merge_prompt
from gpo.scoring.demos import split_demos, with_demos
from gpo.scoring.render import placement
from gpo.tasks.task import Task

SHOWN = 3  # examples shown for each prompt of a merge


async def merge(actions: StepActions, task: Task, state: SearchState, g: int, record: StepRecord) -> None:
    """Step g's merge, where one is due and a pair is found (else nothing)."""
    cfg = actions.config
    if cfg.pool != "pareto" or len(state.merged) >= cfg.merge or task.program is not None:
        return
    pair = merge_pair(state.example_scores, state.merged)
    if pair is None:
        return
    a, b, only_a, only_b = pair
    state.merged.append([a, b])
    examples, where = task.split("eval"), placement(task, cfg.instruction_pos)
    (first, demos), second = split_demos(a), split_demos(b)[0]
    meta = merge_prompt(first, second, format_exemplars([examples[i] for i in only_a[:SHOWN]], where),
                        format_exemplars([examples[i] for i in only_b[:SHOWN]], where))
    texts = await actions.ask(state, [meta], 1, stable_seed(cfg.seed, task.id, "merge", g))
    candidates = actions.screen(state, [with_demos(t, demos) for t in texts], a)
    for c in candidates:
        c.merged = [a, b]
    await actions.score(task, state, candidates, g)
    record.candidates.extend(candidates)
    record.meta_prompt += "\n\n-----\n\n" + meta
    best = state.trajectory.best()
    for c in candidates:
        if c.rejected is None and actions.fitness(state, c.text) > actions.fitness(state, best.prompt):
            state.trajectory.points.append(Point(c.text, state.scores[c.text], record.epoch, record.step))
            state.chosen.append(c.text)
