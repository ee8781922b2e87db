"""What every prompt optimizer in gpo shares: the search loop around a ``step``.

An optimizer (GPO or a baseline) scores the initial prompt on eval, then runs steps until
its step count ends the search or a stopper (``stoppers``: a run budget, the per-task
search budget, a caller's own) halts it; the final prompt is the best on eval and only
then is the test split scored. The loop checkpoints after every step through ``Hooks``,
so a killed run resumes where it stopped, and with the response cache nothing is paid
twice. A step cut short by a run cap is dropped whole. A method implements ``step`` with
the actions of ``engine.actions``.
"""

from __future__ import annotations

import random
from typing import Callable, ClassVar, NamedTuple, Sequence

from gpo.config import GPOConfig
from gpo.engine.actions import StepActions
from gpo.engine.proposals import rejection_counts, usable_proposals
from gpo.engine.adoption import finish
from gpo.engine.events import Event
from gpo.engine.hooks import Hooks, NoHooks
from gpo.engine.ledger import Ledger
from gpo.engine.merge import merge
from gpo.engine.start import check_headroom, start_from
from gpo.engine.options import NoOptions, parse_options
from gpo.engine.program import program_step
from gpo.engine.state import SearchState, TaskResult, stable_seed, steps_per_epoch
from gpo.engine.stoppers import NoImprovement, RunBudget, SearchBudget, Stopper, any_of
from gpo.engine.trajectory import Point, StepRecord
from gpo.llm.base import LLM
from gpo.llm.embed import Embedder
from gpo.llm.meter import BudgetSpent, charge_to
from gpo.scoring.evaluate import Evaluator
from gpo.tasks.task import Task, hold_out

__all__ = ["PromptSearch", "StepPlan"]


class StepPlan(NamedTuple):
    """Upper estimate of one step of a method, declared from its config and options alone."""

    examples: int  # examples scored (a candidate on all of eval counts len(eval))
    optimizer_requests: int
    optimizer_samples: int  # completions the optimizer writes (a request may ask for several)


class PromptSearch:
    """Base of every method, its contract: ``name``; ``Options``, its own typed options; ``step``,
    one step written with the engine's actions, which it holds as an object (``self.actions``, a
    ``StepActions``; what it has spent is ``self.ledger``); and, from its config and options
    alone, its plan (``StepPlan``) (``planned_steps``, ``planned_step``, ``planned_test_prompts``), where it
    starts (``initial_prompt_for``) and any options it fixes (``configured``)."""

    name: ClassVar[str] = "?"
    Options: ClassVar[type] = NoOptions  # the method's own options, a frozen dataclass
    State: ClassVar[type[SearchState]] = SearchState

    def __init__(
        self,
        config: GPOConfig,
        optimizer_llm: LLM,
        evaluator: Evaluator,
        embedder: Embedder | None = None,
        hooks: Hooks | None = None,
        budget_exceeded: Callable[[], str | None] | None = None,
        options: dict | None = None,
        stoppers: Sequence[Stopper] = (),
    ):
        self.config = config = self.configured(config)
        self.optimizer_llm = optimizer_llm  # the model that writes prompts (a PromptSearch is the optimizer)
        self.evaluator = evaluator
        self.embedder = embedder
        self.hooks = hooks or NoHooks()
        cap = config.budget.scorer_calls_per_task
        self.stop = any_of(RunBudget(budget_exceeded or (lambda: None)),
                           *([SearchBudget(cap)] if cap is not None else []),
                           *([NoImprovement(config.patience)] if config.patience else []), *stoppers)
        self.options = self.parse_options(options or {})
        self.ledger = Ledger(evaluator, cap)  # what each task's search has spent on scoring
        self.actions = StepActions(config, optimizer_llm, evaluator, self.hooks, self.ledger, self.name)

    @classmethod
    def parse_options(cls, options: dict):
        """The method's typed ``Options`` from ``--method-option`` values (strings from the
        command line, typed values from a config file), each checked."""
        return parse_options(cls.name, cls.Options, options)

    # ------------------------------------------------------------------ the loop
    async def optimize(self, task: Task) -> TaskResult:
        """Search one task (resuming from its checkpoint); the run's meter charges its paid calls to it."""
        with charge_to(task.id):  # with final_holdout, the search sees eval without its held-out share
            return await self._optimize(hold_out(task, self.config.final_holdout, self.config.seed))

    async def _optimize(self, task: Task) -> TaskResult:
        saved = self.hooks.load_state(task)
        try:
            state = self.State.from_dict(saved) if saved else await self._start(task)
        except BudgetSpent as err:
            raise BudgetSpent(f"task {task.id}: the run budget ({err}) was spent before the initial prompt "
                              f"was scored on eval; raise the budget and resume") from None
        if state.done and state.result:
            return TaskResult.from_dict(state.result)
        self.ledger.resume(task, state)  # what earlier processes scored is not counted again
        total = self.total_steps(task)
        stopped = ended = None
        while state.next_step < total:
            halt = self.stop(self, task, state)
            if halt is not None:
                stopped, ended = (halt.reason, None) if halt.run_budget else (None, halt.reason)
                self.hooks.event(Event.BUDGET_STOP if halt.run_budget else Event.SEARCH_ENDED, task=task.id,
                                 reason=halt.reason, step=state.next_step)
                break
            g = state.next_step
            before = state.to_dict()  # a step cut short leaves no half-changed state, whatever the hooks keep
            self.ledger.begin(task)
            self.actions.begin(task, state)
            try:
                record = await (program_step(self, task, state, g) if task.program is not None
                                else self.step(task, state, g))
                await merge(self.actions, task, state, g, record)  # --merge: after the step, within its budget
            except BudgetSpent as err:  # a request would have passed a run budget: the step is dropped
                stopped = str(err)
                self.hooks.event(Event.BUDGET_STOP, task=task.id, reason=stopped, step=g, mid_step=True)
                state = self.State.from_dict(before)
                break
            finally:
                self.ledger.limit.pop(task.id, None)  # a phase's share binds the step it was set for only
            self.ledger.settle(task, state)
            record.scorer_requests = state.scorer_requests
            state.trajectory.steps.append(record)
            state.next_step = g + 1
            self.hooks.event(Event.STEP, task=task.id, method=self.name, epoch=record.epoch, step=record.step,
                             global_step=g, total_steps=total, chosen=record.chosen, score=record.chosen_score,
                             best=state.trajectory.best().score, step_size=record.step_size,
                             candidates=len(record.candidates), usable=usable_proposals(record.candidates),
                             scorer_requests=state.scorer_requests, scorer_tokens=state.scorer_tokens,
                             optimizer_samples=state.optimizer_samples, optimizer_tokens=state.optimizer_tokens,
                             rejected=rejection_counts(record.candidates),
                             **({"component": record.component} if record.component else {}))
            self.hooks.save_state(task, state.to_dict())
        return await finish(self.evaluator, self.hooks, self.config, self.name, task, state, total, stopped, ended)

    # ------------------------------------------------------------------ what a method needs
    @classmethod
    def needs_embedder(cls, config: GPOConfig) -> bool:
        """Whether this method, so configured, embeds prompts (relevance selection)."""
        return False


    @classmethod
    def report_rows(cls, config: dict) -> list[tuple[str, str]]:
        """The method's own settings, as rows of the run report (``config``: run.json's)."""
        return []

    # ------------------------------------------------------------------ the plan: from config and options alone
    @classmethod
    def configured(cls, config: GPOConfig) -> GPOConfig:
        """The run's config as this method runs it (a method that fixes some options sets them here)."""
        return config

    @classmethod
    def check_task(cls, config: GPOConfig, options, task: Task) -> None:
        """Refuse (``ConfigError``, one line) a task whose data cannot bind the method's options."""

    @classmethod
    def planned_steps(cls, config: GPOConfig, options, task: Task) -> int:
        """The steps of a task's search."""
        return config.num_search_epochs * steps_per_epoch(len(task.split("train")), config.opt_batch_size)

    @classmethod
    def planned_step(cls, config: GPOConfig, options, batch: int, n_eval: int) -> StepPlan:
        """Upper estimate of one step: (examples scored, optimizer requests, optimizer samples)."""
        N = config.num_generated_instructions_in_each_step
        return StepPlan(N * n_eval, 1, N)

    @classmethod
    def phase_shares(cls, options) -> list[tuple[str, float]]:
        """A method with phases: each phase's name and its share of the search budget, in order
        (the plan refuses a budget that cannot buy a proposal in each); none by default."""
        return []

    @classmethod
    def planned_test_prompts(cls, config: GPOConfig, options, task: Task) -> int:
        """How many prompts the run scores on test: the initial and the final one."""
        return 2

    @classmethod
    def initial_prompt_for(cls, config: GPOConfig, task: Task) -> str:
        """The config's initial instruction; an MMLU subject's own template; the starting
        system prompt a user's templated task brings (``--system-template`` with ``--optimize system``);
        or a program's named prompts (``--prompts``)."""
        if task.program is not None:
            return task.program.initial
        if task.template is not None and task.initial_instruction:
            return task.initial_instruction
        subject_template = config.initial_instruction.startswith("The following are multiple choice questions about")
        return task.initial_instruction if (task.initial_instruction and subject_template) else config.initial_instruction

    def total_steps(self, task: Task) -> int:
        return self.planned_steps(self.config, self.options, task)

    def initial_prompt(self, task: Task) -> str:
        return self.initial_prompt_for(self.config, task)

    async def step(self, task: Task, state: SearchState, g: int) -> StepRecord:
        raise NotImplementedError

    # ------------------------------------------------------------------ phases
    async def _start(self, task: Task) -> SearchState:
        cfg = self.config
        initial = self.initial_prompt(task)
        headroom = (await check_headroom(cfg, self.evaluator, task, initial)  # before the ledger begins: outside
                    if self.total_steps(task) else None)                   # the search budget
        self.ledger.begin(task)
        fmt_pool = list(range(len(self.actions.format_pool(task))))
        k = min(cfg.format_data_num, len(fmt_pool))
        fmt_idx = sorted(random.Random(stable_seed(cfg.seed, task.id, "format")).sample(fmt_pool, k))
        ev = await self.evaluator.evaluate(task, initial, "eval")
        self.hooks.save_evaluation(task, "eval/initial", ev)
        state = self.State(current=initial, format_indices=fmt_idx, pool=[initial])
        state.trajectory.points.append(Point(initial, ev.score, -1, -1))
        state.scored(initial, ev, cfg.pool == "pareto")
        state.seen.append(initial)
        state.chosen.append(initial)
        self.ledger.settle(task, state)
        state.start_requests = state.scorer_requests
        self.hooks.event(Event.INITIAL, task=task.id, method=self.name, prompt=initial, eval=ev.score)
        if headroom is not None:
            await start_from(self.evaluator, self.hooks, task, state, headroom, cfg.pool == "pareto")
        self.hooks.save_state(task, state.to_dict())
        return state

    # ------------------------------------------------------------------ helpers
