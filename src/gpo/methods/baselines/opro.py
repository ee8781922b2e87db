"""OPRO, Optimization by PROmpting (Yang et al., 2024, "Large Language Models as
Optimizers").

Each step shows the optimizer the best ``history`` prompts so far with their
scores, in ascending order (the best last; GPO's importance selector picks them), plus a few task exemplars drawn
afresh each step, and asks for a new prompt that scores higher than all of them.
N candidates per step at the optimizer temperature, all scored on eval; the
scored prompts are the memory of the next step. With ``pool='pareto'`` the prompts shown are drawn
from the Pareto frontier instead (gpo.engine.frontier), still in ascending order.
"""

from __future__ import annotations

from dataclasses import dataclass

from gpo.engine.search import PromptSearch
from gpo.engine.state import SearchState, stable_seed
from gpo.engine.trajectory import StepRecord
from gpo.methods.gpo.momentum import Importance
from gpo.prompts.blocks import PLACEHOLDER, Placement, format_exemplars, k_list_block
from gpo.prompts.tags import END, START
from gpo.scoring.render import placement
from gpo.tasks.task import Example, Task


def opro_prompt(history: list[tuple[str, float]], exemplars: list[Example], position: Placement) -> str:
    return "\n\n".join(
        [
            f"Your job is to write a prompt that goes in place of {PLACEHOLDER} in the task examples below.",
            k_list_block(history).rstrip() + "\n(The list is in ascending order: the best prompt is last.)",
            "Task examples, with the output a model should write:",
            format_exemplars(exemplars, position),
            "Write a new prompt that is different from every prompt above and scores higher than all of them. "
            "Keep it short, effective and general enough for every example above.",
            f"Put the new prompt between {START} and {END}.",
        ]
    )


@dataclass(frozen=True)
class OPROOptions:
    """OPRO's own options (``--method-option NAME=VALUE``)."""

    history: int = 20
    exemplars: int = 3


class OPRO(PromptSearch):
    name = "opro"
    Options = OPROOptions

    async def step(self, task: Task, state: SearchState, g: int) -> StepRecord:
        cfg = self.config
        scored = list(state.scores.items())  # every prompt scored, oldest first
        best = await Importance()(scored, self.options.history)
        history = [scored[i] for i in reversed(best)]
        drawn = self.actions.parents(task, state, g, self.options.history, [])  # pool='pareto': from the frontier
        if drawn:
            history = sorted(((p, state.scores[p]) for p in drawn), key=lambda ps: ps[1])
        pool = self.actions.format_pool(task)
        exemplars = self.actions.rng(task, g).sample(pool, min(self.options.exemplars, len(pool)))
        meta = opro_prompt(history, exemplars, placement(task, cfg.instruction_pos))
        texts = await self.actions.ask(state, [meta], cfg.num_generated_instructions_in_each_step,
                               stable_seed(cfg.seed, task.id, self.name, g))
        candidates = self.actions.screen(state, texts, state.current)
        await self.actions.score(task, state, candidates, g)
        return self.actions.record(task, state, g, meta, candidates)
