"""PE2, Prompt Engineering a Prompt Engineer (Ye et al., 2024).

The meta-prompt has PE2's three parts: a detailed description of the prompt
engineering task, a context specification (the prompt's place in the model's
input, shown on a task example), and a step-by-step reasoning template over the
examples the prompt gets wrong (is the output right, does the prompt describe
the task, should the prompt change, and how). It also shows the recent
optimization history and a step size: change at most ``step_size`` words, on GPO's
step-size schedule (``decay``: fixed, linear or cosine down to ``final_step_size``). Every
prompt of a ``beam`` is expanded into N / beam edits; the best ``beam`` on eval
go on.
"""

from __future__ import annotations

from dataclasses import dataclass

import math

from gpo.config import ConfigError, normalised
from gpo.engine.search import PromptSearch, StepPlan
from gpo.engine.state import SearchState, stable_seed
from gpo.engine.trajectory import StepRecord
from gpo.methods.gpo.feedback import wrong_examples
from gpo.methods.gpo.schedule import StepSizeSchedule
from gpo.prompts.blocks import PLACEHOLDER, Placement, format_exemplars, k_list_block
from gpo.prompts.tags import END, START
from gpo.scoring.render import placement
from gpo.tasks.task import Example, Task


def pe2_prompt(current: str, score: float, history: list[tuple[str, float]], context: list[Example],
               wrong: str | None, position: Placement, step_size: int) -> str:
    failures = wrong or "(The prompt answered every example of this batch correctly; look for ways it could generalise better.)"
    return "\n\n".join(
        [
            "A prompt engineering task. A language model answers questions; every question is given to it with "
            f"a prompt placed {position.phrase}. The model's answer is compared with the correct label. Your job "
            "is to improve the prompt so that the model answers more questions correctly.",
            f"This is how the model's input is put together ({PLACEHOLDER} stands for the prompt):\n\n"
            + format_exemplars(context, position),
            k_list_block(history).rstrip(),
            f"The current prompt, with score {100 * score:.1f}:\n{current}",
            f"Examples the current prompt gets wrong:\n\n{failures}",
            "For each example, reason step by step:\n"
            "1. Is the model's output correct compared with the label?\n"
            "2. Does the prompt describe the task correctly?\n"
            "3. Is it necessary to edit the prompt?\n"
            "4. If so, give concrete suggestions for how to edit it.",
            f"Then review your reasoning and write an improved prompt. Change at most {step_size} words of the "
            f"current prompt. Put the new prompt between {START} and {END}.",
        ]
    )


@dataclass(frozen=True)
class PE2Options:
    """PE2's own options (``--method-option NAME=VALUE``)."""

    beam: int = 2
    errors: int = 2
    history: int = 3
    step_size: int = 50
    decay: str = "fixed"  # fixed | linear | cosine, GPO's schedule
    final_step_size: int = 10

    def __post_init__(self) -> None:
        object.__setattr__(self, "decay", normalised("decay_strategy", self.decay)[1])


class PE2(PromptSearch):
    name = "pe2"
    Options = PE2Options

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        try:
            self.schedule(1)
        except ValueError as err:
            raise ConfigError(f"method 'pe2' option decay: {err}") from None

    def schedule(self, total_steps: int) -> StepSizeSchedule:
        o = self.options
        return StepSizeSchedule(o.decay, o.step_size, o.final_step_size, total_steps)

    @classmethod
    def planned_step(cls, config, options, batch: int, n_eval: int) -> StepPlan:
        N = config.num_generated_instructions_in_each_step
        return StepPlan(options.beam * batch + N * n_eval, options.beam, N + options.beam)

    async def step(self, task: Task, state: SearchState, g: int) -> StepRecord:
        o, cfg = self.options, self.config
        train = task.split("train")
        probed = await self.actions.probe(task, state, list(state.pool), g)
        history = [(p.prompt, p.score) for p in state.trajectory.points[-o.history:]] if o.history else []
        context = self.actions.format_examples(task, state)[:1]
        position = placement(task, cfg.instruction_pos)
        step_size = self.schedule(self.total_steps(task))(len(state.trajectory.points))
        metas = [pe2_prompt(p, state.scores[p], history, context, wrong_examples(ev, train, o.errors),
                            position, step_size) for p, ev in probed]
        N = cfg.num_generated_instructions_in_each_step
        texts = await self.actions.ask(state, metas, math.ceil(N / max(1, len(metas))), stable_seed(cfg.seed, task.id, self.name, g))
        candidates = self.actions.screen(state, texts[:N], state.current)
        await self.actions.score(task, state, candidates, g)
        self.actions.keep_best(state, candidates, o.beam)
        return self.actions.record(task, state, g, "\n\n-----\n\n".join(metas), candidates,
                           train_score=probed[0][1].score if probed else None)
