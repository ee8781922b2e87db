"""Other libraries' optimizers run on gpo's engine: what they share.

A peer (GEPA, promptolution's CAPO, OPRO, EvoPrompt-GA) owns its own loop and is
synchronous, so its whole run is one gpo step, run in a worker thread. Everything it
asks of a model goes through ``Bridge``, back on the run's event loop:

- ``score`` scores a prompt on examples with gpo's Evaluator (same rendering, extraction,
  metric, response cache and request counting as every gpo method), and refuses with
  ``ShareSpent`` a scoring that would pass the peer's share of the search budget;
- ``ask`` sends one optimizer request through gpo's optimizer LLM, counted like any
  method's.

The peer's share is the per-task budget less one eval scoring, kept back so that the
prompt the peer returns as its best can be scored on the whole eval split afterwards.
The final prompt is then chosen as for every gpo method: the best on eval.
"""

from __future__ import annotations

import asyncio
import random
from typing import ClassVar

from gpo.config import ConfigError
from gpo.engine.search import PromptSearch, StepPlan
from gpo.engine.state import SearchState, stable_seed
from gpo.engine.stoppers import SPENT
from gpo.engine.trajectory import Candidate, StepRecord
from gpo.llm.base import Request
from gpo.prompts.checks import word_edit_distance
from gpo.scoring.evaluate import Record
from gpo.tasks.task import Task

STALL = 50


class ShareSpent(Exception):
    """A peer asked for a scoring that would pass its share of the search budget."""


class Bridge:
    """A peer's way to gpo's scorer and optimizer, callable from the peer's own thread."""

    def __init__(self, search: "PeerSearch", task: Task, state: SearchState, loop: asyncio.AbstractEventLoop,
                 share: float):
        self.search, self.task, self.state, self.loop = search, task, state, loop
        self.share = share  # scorer requests the peer may send
        self.proposed: list[str] = []  # every prompt the peer had scored, in order
        self.asked = 0
        self.idle = 0  # scorings in a row that sent nothing (the peer only re-scores what it has)

    def _run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def sent(self) -> int:
        return self.search.ledger.spent(self.task, self.state)

    def exhausted(self) -> bool:
        """The peer's share is spent, or it has stalled: STALL scorings in a row sent nothing."""
        return self.sent() >= self.share or self.idle >= STALL

    def records(self, prompt: str, split: str, indices: list[int]) -> list[Record]:
        """The records of ``prompt`` on these examples of ``split``, in their order."""
        evaluator, task = self.search.evaluator, self.task
        need = evaluator.requests_needed(task, prompt, split, indices)
        if self.sent() + need > self.share:
            raise ShareSpent(f"{SPENT} ({self.sent()} of {self.share:.0f} for the peer)")
        if prompt not in self.proposed:
            self.proposed.append(prompt)
        self.idle = 0 if need else self.idle + 1
        ev = self._run(evaluator.evaluate(task, prompt, split, indices))
        if split == "eval" and evaluator.requests_needed(task, prompt, "eval") == 0 and prompt not in self.state.scores:
            self.register(prompt)
        return ev.records

    def register(self, prompt: str) -> None:
        """Keep a prompt's whole-eval score (scored already: sends nothing)."""
        ev = self._run(self.search.evaluator.evaluate(self.task, prompt, "eval"))
        self.state.scores[prompt] = ev.score
        self.search.hooks.save_evaluation(self.task, f"eval/{self.search.name}-{stable_seed(prompt):08x}", ev)

    def ask(self, text: str, system: str | None = None) -> str:
        """One optimizer reply, seeded by the run's seed and the request's place in the peer's run."""
        self.asked += 1
        seed = stable_seed(self.search.config.seed, self.task.id, self.search.name, self.asked)
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": text}]
        cfg = self.search.config
        request = Request.chat(messages, temperature=cfg.optimizer_temperature, max_tokens=cfg.optimizer_max_tokens,
                               seed=seed)
        return self._run(self.search.actions.ask_raw(self.state, [request]))[0][0]


class PeerSearch(PromptSearch):
    """A peer's whole run as gpo's one search step. Subclasses implement ``run_peer``,
    which returns the prompts the peer ranks best, best first."""

    library: ClassVar[str] = "?"  # the PyPI package the peer needs

    @classmethod
    def planned_steps(cls, config, options, task: Task) -> int:
        return 1

    @classmethod
    def planned_step(cls, config, options, batch: int, n_eval: int) -> StepPlan:
        """A rough guess (the peer decides its own spending; with a search budget, the plan is
        capped by it): one scoring of N candidates on eval and N optimizer requests an epoch."""
        N, epochs = config.num_generated_instructions_in_each_step, config.num_search_epochs
        return StepPlan(epochs * N * n_eval, epochs * N, epochs * N)

    def share(self, task: Task, state: SearchState) -> float:
        """Scorer requests the peer may send: the per-task budget (or, with none set, what
        GPO's own search would spend scoring every candidate on eval) less one eval scoring."""
        one_eval = len(task.split("eval")) * self.evaluator.requests_per_example(task)
        cap = self.config.budget.scorer_calls_per_task
        if cap is None:
            steps = self.config.num_search_epochs * self.actions.steps_per_epoch(task)
            cap = state.scorer_requests + steps * self.config.num_generated_instructions_in_each_step * one_eval
        return cap - one_eval

    def run_peer(self, bridge: Bridge, task: Task, initial: str) -> list[str]:
        raise NotImplementedError

    async def step(self, task: Task, state: SearchState, g: int) -> StepRecord:
        self.require()
        bridge = Bridge(self, task, state, asyncio.get_running_loop(), self.share(task, state))
        best = await asyncio.to_thread(self._run_seeded, bridge, task, state.current)
        for prompt in best[:1]:  # the peer's own pick, scored on the whole eval split if it is not yet
            if prompt not in state.scores and prompt.strip():
                candidate = Candidate(text=prompt)
                await self.actions.score(task, state, [candidate], g)
        candidates = [Candidate(text=p, score=state.scores.get(p), edit_distance=word_edit_distance(state.current, p),
                                rejected=None if p in state.scores else "not scored on the whole eval split")
                      for p in bridge.proposed if p != state.current]
        note = f"{self.name}: {len(bridge.proposed)} prompts scored, {bridge.asked} optimizer requests"
        return self.actions.record(task, state, g, note, candidates)

    def _run_seeded(self, bridge: Bridge, task: Task, initial: str) -> list[str]:
        import numpy as np

        seed = stable_seed(self.config.seed, task.id, self.name)
        random.seed(seed)  # peers draw from the global RNGs
        np.random.seed(seed)
        return self.run_peer(bridge, task, initial)

    @classmethod
    def require(cls) -> None:
        import importlib.util

        if importlib.util.find_spec(cls.library) is None:
            raise ConfigError(f"method {cls.name!r} needs the package {cls.library!r}: pip install 'gpo[peers]'")
