"""The GPO optimizer: composes gradient, momentum, step size and update rule.

One step (GPO_SPEC 5.4) at epoch e, step s: score the current prompt U on a train
minibatch; optionally write a feedback gradient (and its momentum); select the
update direction from the trajectory (momentum); compute the word budget; ask the
optimizer LLM for N candidates in one call; drop leaked, empty, duplicate and
(optionally) over-budget candidates; score the rest on the eval split; choose the
best one not chosen before. The final prompt is the trajectory's best on eval;
the test split is only ever reported.

Bugs 11-16 of the spec are fixed: the initial prompt counts as chosen, U enters
the pool with its real score, re-seen candidates keep their own text and score,
dedup keeps generation order, real-time momentum scores the summary it made, and
a final best prompt is reported. State is checkpointed after every step; with the
response cache a killed run resumes to the same result without paying twice.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import asdict, dataclass, field
from typing import Callable

from gpo.config import GPOConfig
from gpo.llm.base import LLM, Request
from gpo.llm.embed import Embedder
from gpo.optim import feedback as fb
from gpo.optim.momentum import select, summarise_prompts_prompt
from gpo.optim.schedule import StepSizeSchedule
from gpo.optim.trajectory import Candidate, GradientEntry, Point, StepRecord, Trajectory
from gpo.optim.update import (
    UpdateSpec,
    build_update_prompt,
    current_block,
    extract_tagged,
    k_list_block,
    leak_reason,
    polish,
    real_time_block,
    word_edit_distance,
)
from gpo.scoring.evaluate import Evaluator
from gpo.scoring.render import Position
from gpo.tasks.task import Task


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
    stopped: str | None = None  # why the run stopped early (budget), else None

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class GPOState:
    """Everything needed to continue a task's optimisation after the last finished step."""

    next_step: int = 0  # global step to run next
    current: str = ""
    trajectory: Trajectory = field(default_factory=Trajectory)
    scores: dict[str, float] = field(default_factory=dict)  # eval score of every prompt scored
    seen: list[str] = field(default_factory=list)  # every candidate generated, in order
    chosen: list[str] = field(default_factory=list)  # step-best prompts, initial prompt first
    realtime_para: tuple[str, float] | None = None
    realtime_gradient: str | None = None
    format_indices: list[int] = field(default_factory=list)
    initial_test: float | None = None
    done: bool = False
    result: dict | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["trajectory"] = self.trajectory.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "GPOState":
        d = dict(d)
        d["trajectory"] = Trajectory.from_dict(d["trajectory"])
        if d.get("realtime_para") is not None:
            d["realtime_para"] = tuple(d["realtime_para"])
        return cls(**d)


class Hooks:
    """Where the optimizer reports to (run store, progress display). No-ops by default."""

    def event(self, kind: str, **data) -> None: ...

    def save_state(self, task: Task, state: dict) -> None: ...

    def load_state(self, task: Task) -> dict | None:
        return None

    def save_evaluation(self, task: Task, name: str, evaluation) -> None: ...


class GPO:
    def __init__(
        self,
        config: GPOConfig,
        optimizer: LLM,
        evaluator: Evaluator,
        embedder: Embedder | None = None,
        hooks: Hooks | None = None,
        budget_exceeded: Callable[[], str | None] | None = None,
    ):
        self.config = config
        self.optimizer = optimizer
        self.evaluator = evaluator
        self.embedder = embedder
        self.hooks = hooks or Hooks()
        self.budget_exceeded = budget_exceeded or (lambda: None)
        if config.momentum_selection_name == "relevance" and embedder is None:
            raise ValueError("relevance momentum selection needs an embedder")

    # ------------------------------------------------------------------ public
    async def optimize(self, task: Task) -> TaskResult:
        cfg = self.config
        saved = self.hooks.load_state(task)
        state = GPOState.from_dict(saved) if saved else await self._start(task)
        if state.done and state.result:
            return TaskResult(**state.result)
        n_train = len(task.split("train"))
        per_epoch = steps_per_epoch(n_train, cfg.opt_batch_size)
        total = cfg.num_search_epochs * per_epoch
        schedule = self._schedule(total)
        stopped = None
        while state.next_step < total:
            stopped = self.budget_exceeded()
            if stopped:
                self.hooks.event("budget_stop", task=task.id, reason=stopped, step=state.next_step)
                break
            g = state.next_step
            epoch, step = divmod(g, per_epoch)
            batch = list(range(step * cfg.opt_batch_size, min(n_train, (step + 1) * cfg.opt_batch_size)))
            record = await self._step(task, state, epoch, step, g, batch, schedule)
            state.trajectory.steps.append(record)
            state.next_step = g + 1
            self.hooks.event("step", task=task.id, epoch=epoch, step=step, global_step=g, total_steps=total,
                             chosen=record.chosen, score=record.chosen_score,
                             best=state.trajectory.best().score, step_size=record.step_size,
                             candidates=len(record.candidates))
            self.hooks.save_state(task, state.to_dict())
        result = await self._finish(task, state, total, stopped)
        return result

    # ------------------------------------------------------------------ phases
    async def _start(self, task: Task) -> GPOState:
        cfg = self.config
        initial = task.initial_instruction if (
            task.initial_instruction and cfg.initial_instruction.startswith("The following are multiple choice questions about")
        ) else cfg.initial_instruction
        fmt_pool = list(range(len(task.splits.get("format") or task.split("train"))))
        k = min(cfg.format_data_num, len(fmt_pool))
        fmt_idx = sorted(random.Random(stable_seed(cfg.seed, task.id, "format")).sample(fmt_pool, k))
        ev = await self.evaluator.evaluate(task, initial, "eval")
        self.hooks.save_evaluation(task, "eval/initial", ev)
        state = GPOState(current=initial, format_indices=fmt_idx)
        state.trajectory.points.append(Point(initial, ev.score, -1, -1))
        state.scores[initial] = ev.score
        state.seen.append(initial)
        state.chosen.append(initial)
        self.hooks.event("initial", task=task.id, prompt=initial, eval=ev.score)
        self.hooks.save_state(task, state.to_dict())
        return state

    async def _step(self, task, state: GPOState, epoch, step, g, batch, schedule) -> StepRecord:
        cfg = self.config
        U = state.current
        u_score = state.scores[U]
        train_ev = await self.evaluator.evaluate(task, U, "train", batch)
        gradient = await self._gradient(task, state, U, train_ev, batch, epoch, step) if cfg.gradient_name == "feedback" else None
        momentum_kind = cfg.momentum_update_name if cfg.momentum_para_name == "para" else "-"
        block = await self._trajectory_block(task, state, U, u_score, g)
        step_size = schedule(len(state.trajectory.points)) if schedule else None
        exemplars = [task.splits.get("format", task.split("train"))[i] for i in state.format_indices]
        meta = build_update_prompt(
            UpdateSpec(cfg.util_gradient_name, Position.parse(cfg.instruction_pos), momentum_kind),
            U, u_score, block, exemplars, gradient, step_size if cfg.learning_rate_name == "w_lr" else None,
        )
        candidates = await self._candidates(task, state, meta, U, g, step_size)
        fresh = [c.text for c in candidates if c.rejected is None and not c.reused]
        evaluations = await self.evaluator.evaluate_many(task, fresh, "eval")
        for c_text, ev in zip(fresh, evaluations):
            state.scores[c_text] = ev.score
            self.hooks.save_evaluation(task, f"eval/step{g:03d}-{stable_seed(c_text):08x}", ev)
        for c in candidates:
            if c.rejected is None:
                c.score = state.scores[c.text]
            self.hooks.event("candidate", task=task.id, global_step=g, **asdict(c))
        # pool: U with its real score, then candidates in generation order; stable sort by score
        pool: dict[str, float] = {U: u_score}
        for c in candidates:
            if c.rejected is None:
                pool.setdefault(c.text, c.score)
        ranked = sorted(pool.items(), key=lambda kv: -kv[1])
        chosen, chosen_score = next(((p, s) for p, s in ranked if p not in state.chosen), ranked[0])
        previous_best = state.trajectory.points[-1].score
        state.trajectory.points.append(Point(chosen, chosen_score, epoch, step))
        state.chosen.append(chosen)
        state.current = chosen
        if gradient is not None and state.trajectory.gradients:
            state.trajectory.gradients[-1].improvement = chosen_score - previous_best
        test_score = None
        if cfg.test_each_step:
            test_ev = await self.evaluator.evaluate(task, chosen, "test")
            test_score = test_ev.score
        return StepRecord(
            epoch=epoch, step=step, global_step=g, current=U, current_score=u_score, train_score=train_ev.score,
            step_size=step_size, gradient=gradient, momentum=block if momentum_kind != "-" else None,
            meta_prompt=meta, candidates=candidates, chosen=chosen, chosen_score=chosen_score, test_score=test_score,
        )

    async def _finish(self, task: Task, state: GPOState, total: int, stopped: str | None) -> TaskResult:
        """The final prompt is the best on eval. Its test score (and the initial prompt's)
        is reported, except after a budget stop, which spends nothing more."""
        best = state.trajectory.best()
        initial = state.trajectory.points[0]
        init_test = best_test = None
        if not stopped:
            init_ev = await self.evaluator.evaluate(task, initial.prompt, "test")
            best_ev = await self.evaluator.evaluate(task, best.prompt, "test")
            self.hooks.save_evaluation(task, "test/initial", init_ev)
            self.hooks.save_evaluation(task, "test/final", best_ev)
            init_test, best_test = init_ev.score, best_ev.score
        result = TaskResult(
            dataset=task.dataset, task=task.name, initial_prompt=initial.prompt, initial_eval=initial.score,
            final_prompt=best.prompt, final_eval=best.score, initial_test=init_test,
            final_test=best_test, steps_done=state.next_step, total_steps=total, stopped=stopped,
        )
        state.done = not stopped
        state.result = result.as_dict()
        self.hooks.save_state(task, state.to_dict())
        self.hooks.event("task_done", **{**result.as_dict(), "task": task.id})
        return result

    # ------------------------------------------------------------------ pieces
    def _schedule(self, total: int) -> StepSizeSchedule | None:
        cfg = self.config
        if cfg.decay_strategy == "-" or total == 0:
            return None
        return StepSizeSchedule(cfg.decay_strategy, cfg.initial_step_size, cfg.final_step_size, total,
                                cfg.use_warmup_strategy, cfg.warmup_steps)

    def _ask(self, prompt: str, temperature: float, seed: int, n: int = 1) -> Request:
        return Request.chat(prompt, temperature=temperature, max_tokens=self.config.optimizer_max_tokens, n=n, seed=seed)

    async def _gradient(self, task, state: GPOState, U, train_ev, batch, epoch, step) -> str:
        cfg = self.config
        examples = task.split("train")
        prompt = fb.feedback_prompt(U, train_ev, examples, cfg.gradient_max_examples)
        if prompt is None:
            text = fb.ALL_CORRECT
        else:
            reply = await self.optimizer.complete(self._ask(prompt, 0.0, 0))
            text = polish(extract_tagged(reply.text))
        state.trajectory.gradients.append(GradientEntry(text, None, epoch, step))
        if cfg.momentum_para_name != "feedback":
            return text
        if cfg.momentum_update_name == "k-list":
            history = [(gr.text, gr.improvement if gr.improvement is not None else 0.0) for gr in state.trajectory.gradients]
            picked = await select(history, cfg.momentum_selection_name, cfg.momentum_selection_num,
                                  self.embedder, force_newest=True)
            return "\n\n".join(history[i][0] for i in picked)
        if state.realtime_gradient is None:
            state.realtime_gradient = text
        else:
            reply = await self.optimizer.complete(
                self._ask(fb.integrate_gradients_prompt(state.realtime_gradient, text), 0.0, 0))
            state.realtime_gradient = polish(extract_tagged(reply.text))
        return state.realtime_gradient

    async def _trajectory_block(self, task, state: GPOState, U: str, u_score: float, g: int) -> str:
        cfg = self.config
        if cfg.momentum_para_name != "para":
            return current_block(U, u_score)
        if cfg.momentum_update_name == "k-list":
            history = [(p.prompt, p.score) for p in state.trajectory.points]
            picked = await select(history, cfg.momentum_selection_name, cfg.momentum_selection_num, self.embedder)
            return k_list_block([history[i] for i in picked])
        # real-time: fold U into the running summary, score the summary itself
        if state.realtime_para is None:
            state.realtime_para = (U, u_score)
            return current_block(U, u_score)
        prev, prev_score = state.realtime_para
        reply = await self.optimizer.complete(
            self._ask(summarise_prompts_prompt(prev, prev_score, U, u_score), 0.0, 0))
        summary = polish(extract_tagged(reply.text)) or U
        ev = await self.evaluator.evaluate(task, summary, "eval")
        state.scores.setdefault(summary, ev.score)
        state.realtime_para = (summary, ev.score)
        return real_time_block(summary, ev.score)

    async def _candidates(self, task, state: GPOState, meta: str, U: str, g: int, step_size) -> list[Candidate]:
        """N candidates, in generation order, each either usable or marked with why not."""
        cfg = self.config
        N = cfg.num_generated_instructions_in_each_step
        enforce = cfg.edit_budget_enforcement
        rounds = 1 + (cfg.max_resample_rounds if enforce == "resample" else 0)
        out: list[Candidate] = []
        this_step: set[str] = set()
        for r in range(rounds):
            want = N - sum(1 for c in out if c.rejected is None)
            if want <= 0:
                break
            seed = stable_seed(cfg.seed, task.id, g, r)
            reply = await self.optimizer.complete(self._ask(meta, cfg.optimizer_temperature, seed, n=want))
            for raw in reply.texts:
                text = polish(extract_tagged(raw))
                c = Candidate(text=text, edit_distance=word_edit_distance(U, text))
                c.rejected = leak_reason(text, cfg.max_prompt_words)
                if c.rejected is None and text in this_step:
                    c.rejected = "duplicate in this step"
                elif c.rejected is None and step_size is not None and enforce != "off" and c.edit_distance > step_size:
                    c.rejected = f"changes {c.edit_distance} words, budget {step_size}"
                elif c.rejected is None and text in state.seen:
                    c.reused = text in state.scores
                    if not c.reused:
                        c.rejected = "seen before, never scored"
                if c.rejected is None or c.rejected.startswith("changes"):
                    this_step.add(text)
                if text not in state.seen:
                    state.seen.append(text)
                out.append(c)
            if enforce != "resample":
                break
        return out
