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

from dataclasses import dataclass

from gpo.optim import feedback as fb
from gpo.optim.momentum import select, summarise_prompts_prompt
from gpo.optim.schedule import StepSizeSchedule
from gpo.optim.search import (  # noqa: F401  (re-exported: the names of gpo's first API)
    Hooks,
    PromptSearch,
    SearchState,
    TaskResult,
    stable_seed,
    steps_per_epoch,
)
from gpo.optim.trajectory import Candidate, GradientEntry, Point, StepRecord
from gpo.optim.update import (
    UpdateSpec,
    build_update_prompt,
    current_block,
    extract_tagged,
    k_list_block,
    polish,
    real_time_block,
)
from gpo.scoring.render import placement
from gpo.config import GPOConfig
from gpo.tasks.task import Task


@dataclass
class GPOState(SearchState):
    """The shared search state plus GPO's real-time momentum summaries."""

    realtime_para: tuple[str, float] | None = None
    realtime_gradient: str | None = None

    @classmethod
    def from_dict(cls, d: dict) -> "GPOState":
        state = super().from_dict(d)
        if state.realtime_para is not None:
            state.realtime_para = tuple(state.realtime_para)
        return state


class GPO(PromptSearch):
    name = "gpo"

    @classmethod
    def needs_embedder(cls, config: GPOConfig) -> bool:
        return config.momentum_selection_name == "relevance"

    def planned_test_prompts(self, task: Task) -> int:
        """With ``test_each_step`` every step's prompt is scored on test too (reporting only)."""
        return 2 + (self.total_steps(task) if self.config.test_each_step else 0)

    @classmethod
    def report_rows(cls, config: dict) -> list[tuple[str, str]]:
        c = config
        return [("momentum", f"{c.get('momentum_para_name')} / {c.get('momentum_selection_name')} / "
                             f"{c.get('momentum_update_name')} k={c.get('momentum_selection_num')}"),
                ("update", f"{c.get('util_gradient_name')}, {c.get('learning_rate_name')} {c.get('decay_strategy')} "
                           f"{c.get('initial_step_size')}->{c.get('final_step_size')}")]
    State = GPOState

    def planned_step(self, batch: int, n_eval: int) -> tuple[int, int, int]:
        cfg = self.config
        N = cfg.num_generated_instructions_in_each_step
        examples, requests = batch + N * n_eval, 1 + (1 if cfg.gradient_name == "feedback" else 0)
        if cfg.momentum_update_name == "real-time":
            requests += 1
            examples += n_eval
        return examples, requests, N + requests - 1

    async def step(self, task: Task, state: GPOState, g: int) -> StepRecord:
        cfg = self.config
        epoch, step = self.epoch_step(task, g)
        batch = self.minibatch(task, g)
        schedule = self._schedule(self.total_steps(task))
        U = state.current
        u_score = state.scores[U]
        train_ev = None
        if cfg.train_probe or cfg.gradient_name == "feedback":  # the probe is only logged unless a gradient uses it
            probed = await self.probe(task, state, [U], g)
            train_ev = probed[0][1] if probed else None
        gradient = None
        if cfg.gradient_name == "feedback" and train_ev is not None:
            gradient = await self._gradient(task, state, U, train_ev, batch, epoch, step)
        block, momentum_kind = await self._trajectory_block(task, state, U, u_score, g)
        step_size = schedule(len(state.trajectory.points)) if schedule else None
        exemplars = self.format_examples(task, state)
        meta = build_update_prompt(
            UpdateSpec(cfg.util_gradient_name, placement(task, cfg.instruction_pos), momentum_kind),
            U, u_score, block, exemplars, gradient, step_size if cfg.learning_rate_name == "w_lr" else None,
        )
        candidates = await self._candidates(task, state, meta, U, g, step_size)
        await self.score(task, state, candidates, g)
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
            epoch=epoch, step=step, global_step=g, current=U, current_score=u_score,
            train_score=train_ev.score if train_ev is not None else None,
            step_size=step_size, gradient=gradient, momentum=block if momentum_kind != "-" else None,
            meta_prompt=meta, candidates=candidates, chosen=chosen, chosen_score=chosen_score, test_score=test_score,
        )

    # ------------------------------------------------------------------ pieces
    def _schedule(self, total: int) -> StepSizeSchedule | None:
        return StepSizeSchedule.from_config(self.config, total)

    async def _reply(self, state: GPOState, prompt: str) -> str:
        """One greedy optimizer reply (gradients, summaries), extracted and polished."""
        texts = await self.ask_raw(state, [self.request(prompt, temperature=0.0)])
        return polish(extract_tagged(texts[0][0]))

    async def _gradient(self, task, state: GPOState, U, train_ev, batch, epoch, step) -> str:
        cfg = self.config
        examples = task.split("train")
        prompt = fb.feedback_prompt(U, train_ev, examples, cfg.gradient_max_examples)
        if prompt is None:
            text = fb.ALL_CORRECT
        else:
            text = await self._reply(state, prompt)
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
            state.realtime_gradient = await self._reply(state, fb.integrate_gradients_prompt(state.realtime_gradient, text))
        return state.realtime_gradient

    async def _trajectory_block(self, task, state: GPOState, U: str, u_score: float, g: int) -> tuple[str, str]:
        """The trajectory block of the update meta-prompt, and which kind it is ("-", "k-list", "real-time")."""
        cfg = self.config
        if cfg.momentum_para_name != "para":
            return current_block(U, u_score), "-"
        if cfg.momentum_update_name == "k-list":
            history = [(p.prompt, p.score) for p in state.trajectory.points]
            picked = await select(history, cfg.momentum_selection_name, cfg.momentum_selection_num, self.embedder)
            return k_list_block([history[i] for i in picked]), "k-list"
        # real-time: fold U into the running summary, score the summary itself. At the first
        # step there is no summary yet: the block shows U, and no summary is asked to be studied.
        if state.realtime_para is None:
            state.realtime_para = (U, u_score)
            return current_block(U, u_score), "-"
        prev, prev_score = state.realtime_para
        summary = await self._reply(state, summarise_prompts_prompt(prev, prev_score, U, u_score)) or U
        ev = await self.evaluator.evaluate(task, summary, "eval")
        state.scores.setdefault(summary, ev.score)
        state.realtime_para = (summary, ev.score)
        return real_time_block(summary, ev.score), "real-time"

    async def _candidates(self, task, state: GPOState, meta: str, U: str, g: int, step_size) -> list[Candidate]:
        """N candidates, in generation order, each either usable or marked with why not."""
        cfg = self.config
        N = cfg.num_generated_instructions_in_each_step
        enforce = cfg.edit_budget_enforcement
        rounds = 1 + (cfg.max_resample_rounds if enforce == "resample" else 0)

        def within_budget(c: Candidate) -> str | None:
            if step_size is not None and enforce != "off" and c.edit_distance > step_size:
                return f"changes {c.edit_distance} words, budget {step_size}"
            return None

        out: list[Candidate] = []
        this_step: set[str] = set()
        for r in range(rounds):
            want = N - sum(1 for c in out if c.rejected is None)
            if want <= 0:
                break
            request = self.request(meta, want, stable_seed(cfg.seed, task.id, g, r))
            texts = [polish(extract_tagged(t)) for t in (await self.ask_raw(state, [request]))[0]]
            out.extend(self.screen(state, texts, U, within_budget, this_step))
            if enforce != "resample":
                break
        return out
