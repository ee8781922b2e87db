"""What a method's step may do, the same way for every method: ask the optimizer LLM for new
prompts and screen its replies (``gpo.engine.proposals``), score candidates on eval within the
search budget (``score``, ``race``), probe prompts on the step's train minibatch (``probe``),
keep a beam or population (``gpo.engine.pool``) and close the step (``record``). Every
optimizer therefore spends, extracts, rejects, scores and reports alike, which is what makes
their results comparable."""

from __future__ import annotations

import random
from dataclasses import asdict

from gpo.engine.events import Event
from gpo.config import GPOConfig
from gpo.engine.pool import PoolActions
from gpo.engine.hooks import Hooks
from gpo.engine.ledger import Ledger
from gpo.engine.proposals import ProposalActions
from gpo.engine.state import SearchState, stable_seed, steps_per_epoch
from gpo.engine.stoppers import SPENT
from gpo.engine.trajectory import Candidate, Point, StepRecord
from gpo.llm.base import LLM
from gpo.scoring.evaluate import Evaluation, Evaluator
from gpo.scoring.racing import Stop, example_order, least_scorings, race
from gpo.tasks.task import Example, Task


class StepActions(PoolActions, ProposalActions):
    """The actions the engine hands a method's ``step`` (``PromptSearch.actions``), built from
    the search's config, optimizer model, Evaluator, hooks and Ledger: a method asks, screens,
    scores and records through them, and never reaches past them into the engine."""

    def __init__(self, config: GPOConfig, optimizer_llm: LLM, evaluator: Evaluator, hooks: Hooks, ledger: Ledger,
                 method: str):
        self.config, self.optimizer_llm, self.evaluator = config, optimizer_llm, evaluator
        self.hooks, self.ledger, self.method = hooks, ledger, method
        self.start_proposals()

    async def probe(self, task: Task, state: SearchState, prompts: list[str], g: int) -> list[tuple[str, Evaluation]]:
        """Score prompts on step g's train minibatch (for gradients and error examples), in
        order, as far as the search budget allows; prompts that do not fit are left out."""
        batch, fits, planned = self.minibatch(task, g), [], 0
        for p in prompts:
            need = self.evaluator.requests_needed(task, p, "train", batch)
            if planned + need <= self.ledger.remaining(task, state):
                planned += need
                fits.append(p)
        evaluations = await self.evaluator.evaluate_many(task, fits, "train", batch)
        return list(zip(fits, evaluations))

    async def score(self, task: Task, state: SearchState, candidates: list[Candidate], g: int) -> None:
        """Score the usable, new candidates on eval (together), as many as the search budget
        allows in generation order (under ``full`` each at its whole-split request count; under
        ``race`` the fewest requests a race of them can take, and the race keeps within the budget);
        the rest are marked. With ``selection='race'`` the candidates
        significantly worse than the leader stop early and are marked; every other usable
        candidate gets its whole-split eval score. Each is reported as an event."""
        fresh, planned = [], 0
        racing = self.config.selection == "race"
        for c in candidates:
            if c.rejected is not None or c.reused or c.text in (f.text for f in fresh):
                continue
            need = self.evaluator.requests_needed(task, c.text, "eval")
            if racing and fresh:  # a race needs one whole split, then a first block for each other candidate
                per = self.evaluator.requests_per_example(task)
                need = per * least_scorings(len(fresh) + 1, len(task.split("eval")), self.config.race_block) - planned
            if planned + need > self.ledger.remaining(task, state):
                c.rejected = SPENT
                continue
            planned += need
            fresh.append(c)
        stops = await self.race(task, state, [c.text for c in fresh], g) if racing else {}
        finished = [c.text for c in fresh if c.text not in stops]
        for text, ev in zip(finished, await self.evaluator.evaluate_many(task, finished, "eval")):
            state.scored(text, ev, self.config.pool == "pareto")
            self.hooks.save_evaluation(task, f"eval/step{g:03d}-{stable_seed(text):08x}", ev)
        for c in candidates:
            if c.text in stops and c.rejected is None:
                stop = stops[c.text]
                c.rejected, c.race_examples, c.race_estimate = stop.reason(), stop.examples, stop.estimate
            elif c.rejected is None:
                c.score = state.scores[c.text]
            self.hooks.event(Event.CANDIDATE, task=task.id, global_step=g, **asdict(c))

    async def race(self, task: Task, state: SearchState, prompts: list[str], g: int) -> dict[str, Stop]:
        """Race a step's new candidates over eval in one seeded example order (gpo.scoring.racing).
        Returns the stopped ones; their partial records are saved. The survivors' records are in
        the Evaluator, so their whole-split scoring sends nothing again."""
        cfg, n = self.config, len(task.split("eval"))
        if len(prompts) < 2:
            return {}

        async def fetch(alive: list[str], indices: list[int]) -> dict[str, list]:
            evaluations = await self.evaluator.evaluate_many(task, alive, "eval", indices)
            return {p: ev.items() for p, ev in zip(alive, evaluations)}

        def affordable(scorings: int) -> bool:
            return scorings * self.evaluator.requests_per_example(task) <= self.ledger.remaining(task, state)

        seed = stable_seed(cfg.seed, task.id, "race", g)
        result = await race(prompts, n, fetch, block=cfg.race_block, alpha=cfg.race_alpha, seed=seed,
                            affordable=affordable, objective=self.evaluator.objective)
        order = example_order(n, seed)
        for text, stop in result.stopped.items():
            partial = await self.evaluator.evaluate(task, text, "eval", order[: stop.examples])
            self.hooks.save_evaluation(task, f"eval/step{g:03d}-{stable_seed(text):08x}-raced", partial)
        return result.stopped

    def record(self, task: Task, state: SearchState, g: int, meta_prompt: str, candidates: list[Candidate],
               train_score: float | None = None, gradient: str | None = None) -> StepRecord:
        """Close a step of a pool method: the best prompt scored so far becomes this
        step's trajectory point (so the trajectory's best is the search's best)."""
        epoch, step = self.epoch_step(task, g)
        current, current_score = state.current, state.scores[state.current]
        best = self.ranked(state, list(state.scores))[0]
        state.trajectory.points.append(Point(best, state.scores[best], epoch, step))
        if best not in state.chosen:
            state.chosen.append(best)
        state.current = best
        return StepRecord(
            epoch=epoch, step=step, global_step=g, current=current, current_score=current_score,
            train_score=train_score, step_size=None,
            gradient=gradient, momentum=None, meta_prompt=meta_prompt, candidates=candidates,
            chosen=best, chosen_score=state.scores[best],
        )

    def rng(self, task: Task, *parts) -> random.Random:
        return random.Random(stable_seed(self.config.seed, task.id, self.method, *parts))

    def steps_per_epoch(self, task: Task) -> int:
        return steps_per_epoch(len(task.split("train")), self.config.opt_batch_size)

    def epoch_step(self, task: Task, g: int) -> tuple[int, int]:
        return divmod(g, max(1, self.steps_per_epoch(task)))

    def minibatch(self, task: Task, g: int) -> list[int]:
        """The train examples of global step g: consecutive batches, every epoch alike
        (docs/BEHAVIOUR.md, "The search loop")."""
        b, n = self.config.opt_batch_size, len(task.split("train"))
        step = self.epoch_step(task, g)[1]
        return list(range(step * b, min(n, (step + 1) * b)))

    @staticmethod
    def format_pool(task: Task) -> list[Example]:
        """Where meta-prompt exemplars come from: the format split, else train."""
        return task.splits.get("format") or task.split("train")

    def format_examples(self, task: Task, state: SearchState) -> list[Example]:
        pool = self.format_pool(task)
        return [pool[i] for i in state.format_indices]
