"""What a method's step may do, the same way for every method: ask the optimizer LLM
(``ask``, ``ask_raw``), screen its replies (``screen``: leaks, not an instruction,
duplicates, re-seen prompts), score candidates on eval within the search budget
(``score``, ``race``), probe prompts on the step's train minibatch (``probe``), keep a
beam or population (``keep_best``) and close the step (``record``). Every optimizer
therefore spends, extracts, rejects, scores and reports alike, which is what makes their
results comparable."""

from __future__ import annotations

import random
from dataclasses import asdict
from typing import Callable, Sequence

from gpo.engine.events import Event
from gpo.config import GPOConfig
from gpo.engine.pool import PoolActions
from gpo.engine.hooks import Hooks
from gpo.engine.ledger import Ledger
from gpo.engine.state import SearchState, stable_seed, steps_per_epoch
from gpo.engine.stoppers import SPENT
from gpo.engine.trajectory import Candidate, Point, StepRecord
from gpo.llm.base import LLM, ReplyShape, Request
from gpo.prompts.checks import ExampleSpans, leak_reason, not_an_instruction, word_edit_distance
from gpo.prompts.length import too_long
from gpo.prompts.tags import END, START, extract_tagged, polish
from gpo.scoring.demos import split_demos
from gpo.scoring.evaluate import Evaluation, Evaluator
from gpo.scoring.racing import Stop, example_order, least_scorings, race
from gpo.tasks.task import Example, Task


def rejection_counts(candidates: Sequence[Candidate]) -> dict[str, int]:
    """How many of a step's candidates were set aside, by kind of reason (the text before
    any detail: 'not an instruction', 'too long', 'stopped by racing', ...)."""
    kinds = [c.rejected.split(":")[0].split(" (")[0] for c in candidates if c.rejected]
    return {k: kinds.count(k) for k in dict.fromkeys(kinds)}


SCORING_STOPS = ("stopped by racing", SPENT)
SHOWN_SPLITS = ("train", "eval", "format", "few_shot")  # the splits a search may read: a candidate copies none  # set aside after screening: the proposal itself was usable


def usable_proposals(candidates: Sequence[Candidate]) -> int:
    """How many of a step's proposals were usable prompts: parsed, new (not a duplicate nor
    seen before), within the length and word budgets and not a copy of the meta-prompt; a
    candidate that racing or the search budget stopped still counts, as its text was usable."""
    return sum(1 for c in candidates
               if not c.reused and (c.rejected is None or c.rejected.startswith(SCORING_STOPS)))


def _shown(asked: list[str], state: SearchState) -> str:
    """A step's meta-prompts with the prompts they quote cut out: what a reply copies when it
    continues the meta-prompt or repeats an example instead of writing a prompt."""
    text = "\n".join(asked)
    quoted = {*state.seen, *state.scores, *state.chosen}
    for prompt in sorted(quoted | {split_demos(p)[0] for p in quoted}, key=len, reverse=True):
        if prompt:
            text = text.replace(prompt, "\n")
    return text


class StepActions(PoolActions):
    """The actions the engine hands a method's ``step`` (``PromptSearch.actions``), built from
    the search's config, optimizer model, Evaluator, hooks and Ledger: a method asks, screens,
    scores and records through them, and never reaches past them into the engine."""

    def __init__(self, config: GPOConfig, optimizer_llm: LLM, evaluator: Evaluator, hooks: Hooks, ledger: Ledger,
                 method: str):
        self.config, self.optimizer_llm, self.evaluator = config, optimizer_llm, evaluator
        self.hooks, self.ledger, self.method = hooks, ledger, method
        self.asked: dict[int, list[str]] = {}  # id(state) -> this step's meta-prompts (what a reply must not copy)
        self.examples: dict[int, ExampleSpans] = {}  # id(state) -> its task's examples' runs of words
        self._spans: dict[str, ExampleSpans] = {}  # task id -> the same, built once

    def begin(self, task: Task, state: SearchState) -> None:
        """A step of ``state``'s search on ``task`` begins: nothing asked yet, and its task's examples
        (the inputs and targets of every split but test, which no search reads) are what a
        candidate must not copy."""
        self.asked[id(state)] = []
        if task.id not in self._spans:
            self._spans[task.id] = ExampleSpans([[ex.input, ex.target] for split in SHOWN_SPLITS
                                                 for ex in task.splits.get(split) or []])
        self.examples[id(state)] = self._spans[task.id]

    def request(self, prompt: str, n: int = 1, seed: int = 0, temperature: float | None = None,
                shape: ReplyShape | None = None) -> Request:
        t = self.config.optimizer_temperature if temperature is None else temperature
        return Request.chat(prompt, temperature=t, max_tokens=self.config.optimizer_max_tokens, n=n, seed=seed,
                            shape=shape)

    async def ask_raw(self, state: SearchState, requests: list[Request]) -> list[list[str]]:
        """The optimizer's raw replies to several requests (sent together), counted against the task."""
        replies = await self.optimizer_llm.generate(requests)
        self.asked.setdefault(id(state), []).extend(
            text for r in requests for _, text in (r.messages or (("user", r.prompt or ""),)))
        for reply in replies:
            state.optimizer_samples += len(reply.samples)
            state.optimizer_tokens += sum(s.prompt_tokens + s.completion_tokens for s in reply.samples)
        return [reply.texts for reply in replies]

    def prompt_shape(self) -> ReplyShape | None:
        """The shape a reply that should be a new prompt is held to (``constrained_replies``)."""
        return ReplyShape(START, END, self.config.max_prompt_words) if self.config.constrained_replies else None

    async def ask(self, state: SearchState, prompts: list[str], n: int, seed: int,
                  temperature: float | None = None) -> list[str]:
        """New prompts: n samples for each meta-prompt, extracted from <START>...<END> and polished
        (with ``constrained_replies``, the backend holds each reply to that shape)."""
        requests = [self.request(p, n, stable_seed(seed, i), temperature, self.prompt_shape())
                    for i, p in enumerate(prompts)]
        return [polish(extract_tagged(t)) for texts in await self.ask_raw(state, requests) for t in texts]

    def screen(self, state: SearchState, texts: list[str], reference: str,
               check: Callable[[Candidate], str | None] | None = None,
               this_step: set[str] | None = None) -> list[Candidate]:
        """Each text as a Candidate, in generation order, either usable or marked with why not:
        leaked scaffolding, too long (words or ``max_prompt_tokens``), not an instruction (a transcript,
        a form, or a copy of the step's meta-prompts or their examples), a copy of a train or eval
        example (``ExampleSpans``), repeated within the step, failing
        ``check``, or seen before (re-used with its stored score when it was scored). Pass
        ``this_step`` to carry the step's texts across several calls. Only a text's instruction
        is judged (and its edit distance from the reference's): demonstrations come from the data."""
        out, this_step = [], (set() if this_step is None else this_step)
        shown = _shown(self.asked.get(id(state), []), state)
        examples, cap = self.examples.get(id(state)), self.config.max_prompt_tokens
        for text in texts:
            instruction, start = split_demos(text)[0], split_demos(reference)[0]
            c = Candidate(text=text, edit_distance=word_edit_distance(start, instruction))
            c.rejected = (leak_reason(instruction, self.config.max_prompt_words) or too_long(instruction, cap)
                          or not_an_instruction(instruction, shown)
                          or (examples.copied(instruction, allowed=start) if examples else None))
            failed = None
            if c.rejected is None and text in this_step:
                c.rejected = "duplicate in this step"
            elif c.rejected is None and check is not None and (failed := check(c)):
                c.rejected = failed
            elif c.rejected is None and text in state.seen:
                c.reused = text in state.scores
                if not c.reused:
                    c.rejected = "seen before, never scored"
            if c.rejected is None or c.rejected == failed:
                this_step.add(text)
            if text not in state.seen:
                state.seen.append(text)
            out.append(c)
        return out

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
