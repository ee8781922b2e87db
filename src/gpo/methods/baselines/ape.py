"""APE, Automatic Prompt Engineer (Zhou et al., 2023, "Large Language Models Are
Human-Level Prompt Engineers").

Step 0 induces instructions from demonstrations: each of N requests shows a
different random set of train input/output pairs and asks what instruction
produced them. Later steps resample: paraphrases of the best prompts so far
(iterative Monte Carlo search). Every candidate is scored on eval; the best
``keep`` prompts are carried to the next step.
"""

from __future__ import annotations

from dataclasses import dataclass

import math

from gpo.engine.search import PromptSearch, StepPlan
from gpo.engine.state import SearchState, stable_seed
from gpo.engine.trajectory import StepRecord
from gpo.prompts.blocks import paraphrase_prompt
from gpo.prompts.tags import END, START
from gpo.tasks.task import Example, Task


def induction_prompt(demos: list[Example]) -> str:
    pairs = "\n\n".join(f"Input: {ex.input}\nOutput: {ex.demo_answer}" for ex in demos)
    return (
        "I gave a friend an instruction and some inputs. For each input, my friend followed the instruction "
        "and wrote an output. Here are the input-output pairs.\n\n"
        f"{pairs}\n\n"
        f"What was the instruction? Write it between {START} and {END}."
    )


@dataclass(frozen=True)
class APEOptions:
    """APE's own options (``--method-option NAME=VALUE``)."""

    keep: int = 4
    demos: int = 5


class APE(PromptSearch):
    name = "ape"
    Options = APEOptions

    @classmethod
    def planned_step(cls, config, options, batch: int, n_eval: int) -> StepPlan:
        N = config.num_generated_instructions_in_each_step
        return StepPlan(N * n_eval, N, N + options.keep)

    async def step(self, task: Task, state: SearchState, g: int) -> StepRecord:
        N = self.config.num_generated_instructions_in_each_step
        seed = stable_seed(self.config.seed, task.id, self.name, g)
        if g == 0:
            train, rng = task.split("train"), self.actions.rng(task, g)
            k = min(self.options.demos, len(train))
            metas = [induction_prompt(rng.sample(train, k)) for _ in range(N)]
            texts = await self.actions.ask(state, metas, 1, seed)
        else:
            parents = self.actions.parents(task, state, g, self.options.keep, state.pool[: self.options.keep])
            metas = [paraphrase_prompt(p) for p in parents]
            texts = await self.actions.ask(state, metas, math.ceil(N / len(parents)), seed)
            texts = texts[:N]
        candidates = self.actions.screen(state, texts, state.current)
        await self.actions.score(task, state, candidates, g)
        self.actions.keep_best(state, candidates, self.options.keep)
        return self.actions.record(task, state, g, "\n\n-----\n\n".join(metas), candidates)
