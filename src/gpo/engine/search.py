"""What every prompt optimizer in gpo shares: the search loop around a ``step``.

An optimizer (GPO or a baseline) scores the initial prompt on eval, then runs
steps until its step count ends the search or a stopper (gpo.engine.stoppers: a run
budget, the per-task search budget, a caller's own) halts it; the final prompt is the
best on eval and only then is the test split scored. The loop checkpoints after every
step through ``Hooks``, so a killed run resumes where it stopped, and with the response
cache nothing is paid twice.

Subclasses implement ``step`` with the helpers here: ``ask`` (one optimizer
request, n samples, replies extracted and polished), ``screen`` (leaks,
duplicates, re-seen prompts), ``score`` (eval scoring within the search budget)
and ``keep_best`` (a beam or population of the best prompts). Every optimizer
therefore spends, extracts, rejects, scores and reports the same way, which is
what makes their results comparable.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import asdict, dataclass, field, fields
from typing import Callable, ClassVar, Protocol, Sequence

from gpo.config import ConfigError, GPOConfig
from gpo.llm.base import LLM, ReplyShape, Request
from gpo.llm.meter import BudgetSpent, charge_to
from gpo.llm.embed import Embedder
from gpo.engine.stoppers import SPENT, NoImprovement, RunBudget, SearchBudget, Stopper, any_of
from gpo.engine.trajectory import Candidate, Point, StepRecord, Trajectory
from gpo.prompts.checks import leak_reason, not_an_instruction, word_edit_distance
from gpo.prompts.tags import END, START, extract_tagged, polish
from gpo.scoring.constant import beats_constant, measure
from gpo.scoring.evaluate import Evaluation, Evaluator
from gpo.scoring.racing import Stop, example_order, least_scorings, race
from gpo.scoring.stats import Comparison
from gpo.errors import suggest
from gpo.tasks.task import Example, Task


def steps_per_epoch(n: int, batch_size: int) -> int:
    """GPO_SPEC 5.3: a trailing partial batch counts only if it holds at least half a
    batch. Deviation: a split smaller than half a batch still gives one step."""
    if n <= 0:
        return 0
    full, rest = divmod(n, batch_size)
    steps = full + (1 if rest >= batch_size / 2 else 0)
    return max(steps, 1)


def stable_seed(*parts) -> int:
    return zlib.crc32("|".join(map(str, parts)).encode()) & 0x7FFFFFFF


def rejection_counts(candidates: Sequence[Candidate]) -> dict[str, int]:
    """How many of a step's candidates were set aside, by kind of reason (the text before
    any detail: 'not an instruction', 'too long', 'stopped by racing', ...)."""
    kinds = [c.rejected.split(":")[0].split(" (")[0] for c in candidates if c.rejected]
    return {k: kinds.count(k) for k in dict.fromkeys(kinds)}


SCORING_STOPS = ("stopped by racing", SPENT)  # set aside after screening: the proposal itself was usable


def usable_proposals(candidates: Sequence[Candidate]) -> int:
    """How many of a step's proposals were usable prompts: parsed, new (not a duplicate nor
    seen before), within the length and word budgets and not a copy of the meta-prompt; a
    candidate that racing or the search budget stopped still counts, as its text was usable."""
    return sum(1 for c in candidates
               if not c.reused and (c.rejected is None or c.rejected.startswith(SCORING_STOPS)))


@dataclass
class TaskResult:
    dataset: str
    task: str
    initial_prompt: str
    initial_eval: float
    final_prompt: str
    final_eval: float
    initial_test: float | None = None
    final_test: float | None = None
    steps_done: int = 0
    total_steps: int = 0
    stopped: str | None = None  # why a run budget stopped the run early (test not scored), else None
    method: str = "gpo"
    search_ended: str | None = None  # why the search ended before its last step (per-task search budget)
    scorer_requests: int = 0  # scorer requests the search made (initial prompt included, test excluded)
    scorer_tokens: int = 0
    optimizer_samples: int = 0  # optimizer completions the search asked for
    optimizer_tokens: int = 0
    selection: str = "full"  # how candidates were scored: race or full
    adopt: str = "best"  # how the final prompt was adopted: best (eval mean) or significant
    eval_comparison: dict | None = None  # final against initial on eval (stats.Comparison.as_dict)
    test_comparison: dict | None = None  # final against initial on test
    not_adopted: dict | None = None  # adopt=significant kept the initial prompt: the best one, its eval and comparison
    proposals: int = 0  # candidates the search's steps proposed
    usable_proposals: int = 0  # of which were usable prompts (``usable_proposals``)
    # closed-answer tasks: the best constant answer on eval and test, and the initial and final
    # prompts against it with their answer shares ({split: {"initial": ..., "final": ...}},
    # each gpo.scoring.constant.yardstick); None where the answers are not a closed set
    constant: dict | None = None

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TaskResult":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class SearchState:
    """Everything needed to continue a task's search after the last finished step."""

    next_step: int = 0  # global step to run next
    current: str = ""
    trajectory: Trajectory = field(default_factory=Trajectory)
    scores: dict[str, float] = field(default_factory=dict)  # eval score of every prompt scored
    seen: list[str] = field(default_factory=list)  # every candidate generated, in order
    chosen: list[str] = field(default_factory=list)  # step-best prompts, initial prompt first
    pool: list[str] = field(default_factory=list)  # the beam or population a method carries
    format_indices: list[int] = field(default_factory=list)
    initial_test: float | None = None
    done: bool = False
    result: dict | None = None
    scorer_requests: int = 0  # spent by finished phases (survives a resume)
    scorer_tokens: int = 0
    optimizer_samples: int = 0
    optimizer_tokens: int = 0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["trajectory"] = self.trajectory.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "SearchState":
        d = dict(d)
        d["trajectory"] = Trajectory.from_dict(d["trajectory"])
        return cls(**d)


class Hooks(Protocol):
    """Where a search reports to: the run store (``gpo.runs.store.RunStore``), a progress
    display, or nothing (``NoHooks``)."""

    def event(self, kind: str, **data) -> None: ...

    def save_state(self, task: Task, state: dict) -> None: ...

    def load_state(self, task: Task) -> dict | None: ...

    def save_evaluation(self, task: Task, name: str, evaluation) -> None: ...


class NoHooks:
    """Hooks that keep nothing: a search run only for its result."""

    def event(self, kind: str, **data) -> None: ...

    def save_state(self, task: Task, state: dict) -> None: ...

    def load_state(self, task: Task) -> dict | None:
        return None

    def save_evaluation(self, task: Task, name: str, evaluation) -> None: ...


class PromptSearch:
    """Base of every optimizer. Subclasses set ``name`` (and ``defaults`` for their own
    options) and implement ``step``; ``initial_prompt`` and ``total_steps`` may change."""

    name: ClassVar[str] = "?"
    defaults: ClassVar[dict] = {}
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
        self.config = config
        self.optimizer_llm = optimizer_llm  # the model that writes prompts (a PromptSearch is the optimizer)
        self.evaluator = evaluator
        self.embedder = embedder
        self.hooks = hooks or NoHooks()
        cap = config.budget.scorer_calls_per_task
        self.stop = any_of(RunBudget(budget_exceeded or (lambda: None)),
                           *([SearchBudget(cap)] if cap is not None else []),
                           *([NoImprovement(config.patience)] if config.patience else []), *stoppers)
        self.options = self.parse_options(options or {})
        self._base: dict[str, tuple[int, int]] = {}  # task -> evaluator counters when the phase began
        self._asked: dict[int, list[str]] = {}  # id(state) -> this step's meta-prompts (what a reply must not copy)

    @classmethod
    def parse_options(cls, options: dict) -> dict:
        out = dict(cls.defaults)
        for key, value in options.items():
            key = key.replace("-", "_")
            if key not in cls.defaults:
                known = ", ".join(cls.defaults) or "none"
                raise ConfigError(f"method {cls.name!r} has no option {key!r}{suggest(key, cls.defaults)}; options: {known}")
            try:
                out[key] = type(cls.defaults[key])(value)
            except (TypeError, ValueError):
                raise ConfigError(f"method {cls.name!r} option {key}={value!r}: expected {type(cls.defaults[key]).__name__}") from None
            if isinstance(out[key], (int, float)) and out[key] < 0:
                raise ConfigError(f"method {cls.name!r} option {key} must be >= 0, got {value!r}")
        return out

    # ------------------------------------------------------------------ the loop
    async def optimize(self, task: Task) -> TaskResult:
        """Search one task (resuming from its checkpoint); the run's meter charges its paid calls to it."""
        with charge_to(task.id):
            return await self._optimize(task)

    async def _optimize(self, task: Task) -> TaskResult:
        saved = self.hooks.load_state(task)
        try:
            state = self.State.from_dict(saved) if saved else await self._start(task)
        except BudgetSpent as err:
            raise BudgetSpent(f"task {task.id}: the run budget ({err}) was spent before the initial prompt "
                              f"was scored on eval; raise the budget and resume") from None
        if state.done and state.result:
            return TaskResult.from_dict(state.result)
        total = self.total_steps(task)
        stopped = ended = None
        while state.next_step < total:
            halt = self.stop(self, task, state)
            if halt is not None:
                stopped, ended = (halt.reason, None) if halt.run_budget else (None, halt.reason)
                self.hooks.event("budget_stop" if halt.run_budget else "search_ended", task=task.id,
                                 reason=halt.reason, step=state.next_step)
                break
            g = state.next_step
            before = state.to_dict()  # a step cut short leaves no half-changed state, whatever the hooks keep
            self._begin(task)
            self._asked[id(state)] = []
            try:
                record = await self.step(task, state, g)
            except BudgetSpent as err:  # a request would have passed a run budget: the step is dropped
                stopped = str(err)
                self.hooks.event("budget_stop", task=task.id, reason=stopped, step=g, mid_step=True)
                state = self.State.from_dict(before)
                break
            self._settle(task, state)
            state.trajectory.steps.append(record)
            state.next_step = g + 1
            self.hooks.event("step", task=task.id, method=self.name, epoch=record.epoch, step=record.step,
                             global_step=g, total_steps=total, chosen=record.chosen, score=record.chosen_score,
                             best=state.trajectory.best().score, step_size=record.step_size,
                             candidates=len(record.candidates), usable=usable_proposals(record.candidates),
                             scorer_requests=state.scorer_requests, rejected=rejection_counts(record.candidates))
            self.hooks.save_state(task, state.to_dict())
        return await self._finish(task, state, total, stopped, ended)

    # ------------------------------------------------------------------ what a method needs
    @classmethod
    def needs_embedder(cls, config: GPOConfig) -> bool:
        """Whether this method, so configured, embeds prompts (relevance selection)."""
        return False

    def planned_test_prompts(self, task: Task) -> int:
        """How many prompts the run scores on test: the initial and the final one."""
        return 2

    @classmethod
    def report_rows(cls, config: dict) -> list[tuple[str, str]]:
        """The method's own settings, as rows of the run report (``config``: run.json's)."""
        return []

    def total_steps(self, task: Task) -> int:
        return self.config.num_search_epochs * self.steps_per_epoch(task)

    def steps_per_epoch(self, task: Task) -> int:
        return steps_per_epoch(len(task.split("train")), self.config.opt_batch_size)

    def epoch_step(self, task: Task, g: int) -> tuple[int, int]:
        return divmod(g, max(1, self.steps_per_epoch(task)))

    def minibatch(self, task: Task, g: int) -> list[int]:
        """The train examples of global step g (GPO_SPEC 5.4: consecutive batches, every epoch alike)."""
        b, n = self.config.opt_batch_size, len(task.split("train"))
        step = self.epoch_step(task, g)[1]
        return list(range(step * b, min(n, (step + 1) * b)))

    def planned_step(self, batch: int, n_eval: int) -> tuple[int, int, int]:
        """Upper estimate of one step: (examples scored, optimizer requests, optimizer samples)."""
        N = self.config.num_generated_instructions_in_each_step
        return N * n_eval, 1, N

    def initial_prompt(self, task: Task) -> str:
        """The config's initial instruction; an MMLU subject's own template; or the starting
        system prompt a user's templated task brings (``--system-template`` with ``--optimize system``)."""
        cfg = self.config
        if task.template is not None and task.initial_instruction:
            return task.initial_instruction
        subject_template = cfg.initial_instruction.startswith("The following are multiple choice questions about")
        return task.initial_instruction if (task.initial_instruction and subject_template) else cfg.initial_instruction

    async def step(self, task: Task, state: SearchState, g: int) -> StepRecord:
        raise NotImplementedError

    # ------------------------------------------------------------------ phases
    async def _start(self, task: Task) -> SearchState:
        cfg = self.config
        self._begin(task)
        initial = self.initial_prompt(task)
        fmt_pool = list(range(len(self.format_pool(task))))
        k = min(cfg.format_data_num, len(fmt_pool))
        fmt_idx = sorted(random.Random(stable_seed(cfg.seed, task.id, "format")).sample(fmt_pool, k))
        ev = await self.evaluator.evaluate(task, initial, "eval")
        self.hooks.save_evaluation(task, "eval/initial", ev)
        state = self.State(current=initial, format_indices=fmt_idx, pool=[initial])
        state.trajectory.points.append(Point(initial, ev.score, -1, -1))
        state.scores[initial] = ev.score
        state.seen.append(initial)
        state.chosen.append(initial)
        self._settle(task, state)
        self.hooks.event("initial", task=task.id, method=self.name, prompt=initial, eval=ev.score)
        self.hooks.save_state(task, state.to_dict())
        return state

    async def _finish(self, task: Task, state: SearchState, total: int, stopped: str | None,
                      ended: str | None = None) -> TaskResult:
        """The final prompt is the best on eval (with ``adopt='significant'``: only if it beats
        the initial prompt significantly there, else the initial prompt stays). Both are compared
        on eval and, except after a run-budget stop, which spends nothing more, on test."""
        cfg = self.config
        best, initial = state.trajectory.best(), state.trajectory.points[0]
        eval_cmp = await self.compare(task, initial.prompt, best.prompt, "eval")
        yardsticks = {"eval": await self.yardstick(task, initial.prompt, best.prompt, "eval")}
        final, not_adopted = best, None
        against_constant = (yardsticks["eval"] or {}).get("final")  # None: no closed answer set
        if best.prompt != initial.prompt and cfg.adopt != "best":
            if not eval_cmp.significant or (cfg.adopt == "significant+constant" and not beats_constant(against_constant)):
                final, not_adopted = initial, {"prompt": best.prompt, "eval": best.score, "comparison": eval_cmp.as_dict(),
                                               "constant": against_constant}
                eval_cmp = await self.compare(task, initial.prompt, initial.prompt, "eval")
                yardsticks["eval"] = await self.yardstick(task, initial.prompt, initial.prompt, "eval")
        test_cmp = init_test = final_test = None
        if not stopped:
            try:
                test_cmp = await self.compare(task, initial.prompt, final.prompt, "test", save=True)
                init_test, final_test = test_cmp.mean_a, test_cmp.mean_b
                yardsticks["test"] = await self.yardstick(task, initial.prompt, final.prompt, "test")
            except BudgetSpent as err:  # the search fitted the run budget; test scoring does not
                stopped = f"{err}, before test scoring"
                self.hooks.event("budget_stop", task=task.id, reason=stopped, step=state.next_step)
        result = TaskResult(
            dataset=task.dataset, task=task.name, initial_prompt=initial.prompt, initial_eval=initial.score,
            final_prompt=final.prompt, final_eval=final.score, initial_test=init_test,
            final_test=final_test, steps_done=state.next_step, total_steps=total, stopped=stopped,
            method=self.name, search_ended=ended, scorer_requests=state.scorer_requests,
            scorer_tokens=state.scorer_tokens, optimizer_samples=state.optimizer_samples,
            optimizer_tokens=state.optimizer_tokens, selection=cfg.selection, adopt=cfg.adopt,
            eval_comparison=eval_cmp.as_dict(), test_comparison=test_cmp.as_dict() if test_cmp else None,
            not_adopted=not_adopted, constant=yardsticks if yardsticks["eval"] else None,
            proposals=sum(len(s.candidates) for s in state.trajectory.steps),
            usable_proposals=sum(usable_proposals(s.candidates) for s in state.trajectory.steps),
        )
        state.done = not stopped
        state.result = result.as_dict()
        self.hooks.save_state(task, state.to_dict())
        self.hooks.event("task_done", **{**result.as_dict(), "task": task.id})
        return result

    async def compare(self, task: Task, initial: str, final: str, split: str, save: bool = False) -> Comparison:
        """Final against initial prompt on the whole split, paired example by example.
        (Eval scorings are already in the Evaluator, or in the response cache after a resume.)"""
        init_ev, final_ev = await self.evaluator.evaluate_many(task, [initial, final], split)
        if save:
            self.hooks.save_evaluation(task, f"{split}/initial", init_ev)
            self.hooks.save_evaluation(task, f"{split}/final", final_ev)
        return final_ev.versus(init_ev, alpha=self.config.race_alpha, seed=stable_seed(self.config.seed, task.id, split))

    async def yardstick(self, task: Task, initial: str, final: str, split: str) -> dict | None:
        """Both prompts on the whole split against its best constant answer (None where the task
        has no closed answer set); their scorings are already in the Evaluator, so it sends nothing."""
        evaluations = await self.evaluator.evaluate_many(task, [initial, final], split)
        cfg, seed = self.config, stable_seed(self.config.seed, task.id, split, "constant")
        measured = [measure(task, ev, cfg.extraction, cfg.race_alpha, seed) for ev in evaluations]
        return None if measured[0] is None else dict(zip(("initial", "final"), measured))

    # ------------------------------------------------------------------ spending
    def _begin(self, task: Task) -> None:
        self._base[task.id] = (self.evaluator.requests[task.id], self.evaluator.tokens[task.id])

    def _settle(self, task: Task, state: SearchState) -> None:
        requests, tokens = self._base[task.id]
        state.scorer_requests += self.evaluator.requests[task.id] - requests
        state.scorer_tokens += self.evaluator.tokens[task.id] - tokens
        self._begin(task)

    def spent(self, task: Task, state: SearchState) -> int:
        """Scorer requests of this task's search so far, the running phase included."""
        return state.scorer_requests + self.evaluator.requests[task.id] - self._base.get(task.id, (0, 0))[0]

    def remaining(self, task: Task, state: SearchState) -> float:
        cap = self.config.budget.scorer_calls_per_task
        return float("inf") if cap is None else cap - self.spent(task, state)

    # ------------------------------------------------------------------ helpers
    def request(self, prompt: str, n: int = 1, seed: int = 0, temperature: float | None = None,
                shape: ReplyShape | None = None) -> Request:
        t = self.config.optimizer_temperature if temperature is None else temperature
        return Request.chat(prompt, temperature=t, max_tokens=self.config.optimizer_max_tokens, n=n, seed=seed,
                            shape=shape)

    async def ask_raw(self, state: SearchState, requests: list[Request]) -> list[list[str]]:
        """The optimizer's raw replies to several requests (sent together), counted against the task."""
        replies = await self.optimizer_llm.generate(requests)
        self._asked.setdefault(id(state), []).extend(
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
        leaked scaffolding, too long, not an instruction (a transcript, a form, or a copy of
        the step's meta-prompts or their examples), repeated within the step, failing
        ``check``, or seen before (re-used with its stored score when it was scored). Pass
        ``this_step`` to carry the step's texts across several calls."""
        out, this_step = [], (set() if this_step is None else this_step)
        shown = self._shown(state)
        for text in texts:
            c = Candidate(text=text, edit_distance=word_edit_distance(reference, text))
            c.rejected = leak_reason(text, self.config.max_prompt_words) or not_an_instruction(text, shown)
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

    def _shown(self, state: SearchState) -> str:
        """This step's meta-prompts with the prompts they quote cut out: what a reply copies
        when it continues the meta-prompt or repeats an example instead of writing a prompt."""
        text = "\n".join(self._asked.get(id(state), []))
        for prompt in sorted({*state.seen, *state.scores, *state.chosen}, key=len, reverse=True):
            if prompt:
                text = text.replace(prompt, "\n")
        return text

    async def probe(self, task: Task, state: SearchState, prompts: list[str], g: int) -> list[tuple[str, Evaluation]]:
        """Score prompts on step g's train minibatch (for gradients and error examples), in
        order, as far as the search budget allows; prompts that do not fit are left out."""
        batch, fits, planned = self.minibatch(task, g), [], 0
        for p in prompts:
            need = self.evaluator.requests_needed(task, p, "train", batch)
            if planned + need <= self.remaining(task, state):
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
            if planned + need > self.remaining(task, state):
                c.rejected = SPENT
                continue
            planned += need
            fresh.append(c)
        stops = await self.race(task, state, [c.text for c in fresh], g) if racing else {}
        finished = [c.text for c in fresh if c.text not in stops]
        for text, ev in zip(finished, await self.evaluator.evaluate_many(task, finished, "eval")):
            state.scores[text] = ev.score
            self.hooks.save_evaluation(task, f"eval/step{g:03d}-{stable_seed(text):08x}", ev)
        for c in candidates:
            if c.text in stops and c.rejected is None:
                stop = stops[c.text]
                c.rejected, c.race_examples, c.race_estimate = stop.reason(), stop.examples, stop.estimate
            elif c.rejected is None:
                c.score = state.scores[c.text]
            self.hooks.event("candidate", task=task.id, global_step=g, **asdict(c))

    async def race(self, task: Task, state: SearchState, prompts: list[str], g: int) -> dict[str, Stop]:
        """Race a step's new candidates over eval in one seeded example order (gpo.scoring.racing).
        Returns the stopped ones; their partial records are saved. The survivors' records are in
        the Evaluator, so their whole-split scoring sends nothing again."""
        cfg, n = self.config, len(task.split("eval"))
        if len(prompts) < 2:
            return {}

        async def fetch(alive: list[str], indices: list[int]) -> dict[str, list[float]]:
            evaluations = await self.evaluator.evaluate_many(task, alive, "eval", indices)
            return {p: [r.score for r in ev.records] for p, ev in zip(alive, evaluations)}

        def affordable(scorings: int) -> bool:
            return scorings * self.evaluator.requests_per_example(task) <= self.remaining(task, state)

        seed = stable_seed(cfg.seed, task.id, "race", g)
        result = await race(prompts, n, fetch, block=cfg.race_block, alpha=cfg.race_alpha, seed=seed,
                            affordable=affordable)
        order = example_order(n, seed)
        for text, stop in result.stopped.items():
            partial = await self.evaluator.evaluate(task, text, "eval", order[: stop.examples])
            self.hooks.save_evaluation(task, f"eval/step{g:03d}-{stable_seed(text):08x}-raced", partial)
        return result.stopped

    def ranked(self, state: SearchState, prompts: list[str]) -> list[str]:
        """Scored prompts, best first on eval; ties keep the given order (deterministic)."""
        scored = [p for p in dict.fromkeys(prompts) if p in state.scores]
        return sorted(scored, key=lambda p: -state.scores[p])

    def keep_best(self, state: SearchState, candidates: list[Candidate], size: int) -> list[str]:
        """The method's pool (beam, population) after a step: the best ``size`` of the old
        pool and this step's scored candidates."""
        new = [c.text for c in candidates if c.rejected is None]
        state.pool = self.ranked(state, state.pool + new)[: max(1, size)]
        return state.pool

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
        return random.Random(stable_seed(self.config.seed, task.id, self.name, *parts))

    @staticmethod
    def format_pool(task: Task) -> list[Example]:
        """Where meta-prompt exemplars come from: the format split, else train."""
        return task.splits.get("format") or task.split("train")

    def format_examples(self, task: Task, state: SearchState) -> list[Example]:
        pool = self.format_pool(task)
        return [pool[i] for i in state.format_indices]
