"""EvoPrompt (Guo et al., 2024, "Connecting Large Language Models with Evolutionary
Algorithms Yields Powerful Prompt Optimizers").

Both variants keep a population of ``population`` prompts, started from the
initial prompt and paraphrases of it (step 0). The LLM does the evolutionary
operators in words:

- GA: N children per step, each from two parents chosen by roulette wheel on
  eval score, crossed over and then mutated; the population becomes the best
  ``population`` of parents and children.
- DE: one child per member p_i: mutate the parts in which two other members
  differ, put them into the best member, cross the result over with p_i; the
  child replaces p_i when it scores higher.
"""

from __future__ import annotations

from dataclasses import dataclass

from gpo.engine.search import PromptSearch, StepPlan
from gpo.engine.state import SearchState, stable_seed
from gpo.engine.trajectory import Candidate, StepRecord
from gpo.prompts.blocks import paraphrase_prompt
from gpo.prompts.tags import END, START
from gpo.tasks.task import Task


def crossover_mutation_prompt(a: str, b: str) -> str:
    return "\n".join(
        [
            "Follow these two steps to write a better prompt.",
            "1. Cross over the two prompts below: combine parts of both into one new prompt.",
            f"Prompt 1: {a}",
            f"Prompt 2: {b}",
            "2. Mutate the prompt you wrote in step 1: change some of its words or phrases.",
            f"Put only the final prompt between {START} and {END}.",
        ]
    )


def differential_prompt(a: str, b: str, best: str, basic: str) -> str:
    return "\n".join(
        [
            "Follow these steps to write a better prompt.",
            "1. Find the parts in which Prompt 1 and Prompt 2 differ.",
            f"Prompt 1: {a}",
            f"Prompt 2: {b}",
            "2. Change those different parts at random.",
            "3. Take Prompt 3 and replace some of its parts with the changed parts from step 2.",
            f"Prompt 3: {best}",
            "4. Cross over the prompt from step 3 with the basic prompt below to make a final prompt.",
            f"Basic prompt: {basic}",
            f"Put only the final prompt between {START} and {END}.",
        ]
    )


@dataclass(frozen=True)
class EvoPromptGAOptions:
    """EvoPromptGA's own options (``--method-option NAME=VALUE``)."""

    population: int = 4


class EvoPromptGA(PromptSearch):
    name = "evoprompt-ga"
    Options = EvoPromptGAOptions

    @classmethod
    def planned_step(cls, config, options, batch: int, n_eval: int) -> StepPlan:
        N = max(config.num_generated_instructions_in_each_step, options.population)
        return StepPlan(N * n_eval, N, N)

    async def step(self, task: Task, state: SearchState, g: int) -> StepRecord:
        seed = stable_seed(self.config.seed, task.id, self.name, g)
        if g == 0 and len(state.pool) < self.options.population:
            metas = [paraphrase_prompt(state.pool[0])]
            texts = await self.actions.ask(state, metas, self.options.population - len(state.pool), seed)
            candidates = self.actions.screen(state, texts, state.current)
            await self.actions.score(task, state, candidates, g)
            self.actions.keep_best(state, candidates, self.options.population)
        else:
            metas, candidates = await self.evolve(task, state, g, seed)
        return self.actions.record(task, state, g, "\n\n-----\n\n".join(metas), candidates)

    async def evolve(self, task: Task, state: SearchState, g: int, seed: int) -> tuple[list[str], list[Candidate]]:
        rng, pop = self.actions.rng(task, g), state.pool
        weights = [state.scores[p] + 1e-3 for p in pop]  # roulette wheel; a zero score keeps a small chance
        metas = []
        for _ in range(self.config.num_generated_instructions_in_each_step):
            a = rng.choices(pop, weights)[0]
            rest = [p for p in pop if p != a] or pop
            b = rng.choices(rest, [state.scores[p] + 1e-3 for p in rest])[0]
            metas.append(crossover_mutation_prompt(a, b))
        candidates = self.actions.screen(state, await self.actions.ask(state, metas, 1, seed), state.current)
        await self.actions.score(task, state, candidates, g)
        self.actions.keep_best(state, candidates, self.options.population)
        return metas, candidates


class EvoPromptDE(EvoPromptGA):
    name = "evoprompt-de"

    async def evolve(self, task: Task, state: SearchState, g: int, seed: int) -> tuple[list[str], list[Candidate]]:
        rng, pop = self.actions.rng(task, g), list(state.pool)
        best = pop[0]  # the pool is kept best first
        metas = []
        for p in pop:
            others = [q for q in pop if q != p]
            a, b = rng.sample(others, 2) if len(others) >= 2 else (others + [p, p])[:2]
            metas.append(differential_prompt(a, b, best, p))
        texts = await self.actions.ask(state, metas, 1, seed)
        candidates = self.actions.screen(state, texts, state.current)
        await self.actions.score(task, state, candidates, g)
        for i, (p, c) in enumerate(zip(pop, candidates)):
            if c.rejected is None and state.scores[c.text] > state.scores[p] and c.text not in pop:
                pop[i] = c.text
        state.pool = self.actions.ranked(state, pop)
        return metas, candidates
