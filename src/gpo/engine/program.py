"""Searching a user's program: each step, the method edits one of its named prompts.

A program's search state holds the whole program (``state.current``, every prompt
encoded by ``gpo.tasks.program.encode``) and, in ``state.parts``, one search state per
prompt: that prompt's own trajectory, in the method's own terms. Step ``g`` picks a
prompt in turn (round robin: every prompt gets as many steps) and runs the method's
``step`` on a view of the task in which texts are that prompt's, the others as the
program has them now (``Task.focus``; the Evaluator scores the whole program). The
method proposes, screens and scores candidates for that one prompt exactly as it does
for a single prompt. The program takes the method's choice only where it scores higher
than the program did, otherwise that prompt stays as it was (coordinate ascent: a step
on one prompt never lowers the program; the prompt's own state still follows the
method's rule, and starts again from the program's text the next time). Racing,
budgets, checkpoints and resume are the loop's own, so they work unchanged; the run's
trajectory is of whole programs, and each step record names the prompt it edited.
"""

from __future__ import annotations

import dataclasses

from gpo.engine.state import SearchState
from gpo.engine.trajectory import Point, StepRecord
from gpo.tasks.task import Task


def prompt_of_step(task: Task, g: int) -> str:
    """The program prompt step ``g`` edits: each in turn."""
    names = task.program.names
    return names[g % len(names)]


async def program_step(search, task: Task, state: SearchState, g: int) -> StepRecord:
    """One step of ``search``'s method on one prompt of the program in ``state.current``."""
    name = prompt_of_step(task, g)
    view = dataclasses.replace(task, focus=(name, state.current))
    text, score = task.program.decode(state.current)[name], state.scores[state.current]
    part = search.State.from_dict(state.parts[name]) if name in state.parts else _first(search, state, text, score)
    # the prompt as the program has it now, with the program's score now (others may have changed since)
    part.current = text
    part.scores[text] = score
    if part.trajectory.points[-1].prompt != text or part.trajectory.points[-1].score != score:
        part.trajectory.points.append(Point(text, score, -1, -1))
    # budget checks inside the step see the whole search's spending
    part.scorer_requests, part.scorer_tokens = state.scorer_requests, state.scorer_tokens
    samples, tokens = state.optimizer_samples, state.optimizer_tokens
    part.optimizer_samples, part.optimizer_tokens = samples, tokens
    part.next_step = g
    search.actions.begin(view, part)
    record = await search.step(view, part, g)
    state.optimizer_samples += part.optimizer_samples - samples
    state.optimizer_tokens += part.optimizer_tokens - tokens
    state.parts[name] = part.to_dict()
    for candidate in record.candidates:
        whole = view.whole(candidate.text)
        state.seen.append(whole)
        if candidate.score is not None:
            state.scores.setdefault(whole, candidate.score)
    chosen_score = part.scores.get(part.current, record.chosen_score)
    if chosen_score > score:
        state.current = view.whole(part.current)
        state.scores[state.current] = score = chosen_score
    state.trajectory.points.append(Point(state.current, score, record.epoch, record.step))
    state.chosen.append(state.current)
    return dataclasses.replace(record, component=name)


def _first(search, state: SearchState, text: str, score: float) -> SearchState:
    """A prompt's own search state before its first step, as ``PromptSearch._start`` makes one."""
    part = search.State(current=text, format_indices=list(state.format_indices), pool=[text])
    part.trajectory.points.append(Point(text, score, -1, -1))
    part.seen.append(text)
    part.chosen.append(text)
    return part
