"""The GPO optimizer: composes gradient, momentum, step size and update rule.

One step (docs/BEHAVIOUR.md, "The search loop") at epoch e, step s: score the current prompt U on a train
minibatch; optionally write a feedback gradient (and its momentum); select the
update direction from the trajectory (momentum); compute the word budget; ask the
optimizer LLM for N candidates in one call; drop leaked, empty, duplicate and
(optionally) over-budget candidates; score the rest on the eval split; choose the
best one not chosen before. The final prompt is the trajectory's best on eval;
the test split is only ever reported.

Each of the paper's switches is one piece, built once from the flat GPOConfig (as
optax builds a transformation once and applies it each step):

    gradient           feedback.FeedbackGradient, or None       (gradient_name)
    momentum           momentum.NoMomentum | KList | RealTime   (momentum_* over prompts)
    gradient_momentum  momentum.NewestGradient | KListGradients | RealTimeGradients
    update             update.UpdateRule                        (util_gradient_name, learning_rate_name,
                                                                 edit_budget_enforcement)
    schedule(task)     schedule.StepSizeSchedule, one per task  (decay_strategy, warmup)

A piece's running state (real-time summaries) lives in GPOState, so it is
checkpointed with the step. PE2 reuses the schedule, OPRO the Importance selector.

Bugs 11-16 of the spec are fixed: the initial prompt counts as chosen, U enters
the pool with its real score, re-seen candidates keep their own text and score,
dedup keeps generation order, real-time momentum scores the summary it made, and
a final best prompt is reported. State is checkpointed after every step; with the
response cache a killed run resumes to the same result without paying twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from gpo.config import GPOConfig
from gpo.engine.search import PromptSearch, StepPlan
from gpo.engine.state import SearchState, stable_seed
from gpo.engine.trajectory import Candidate, GradientEntry, Point, StepRecord
from gpo.llm.base import LLM
from gpo.llm.embed import Embedder
from gpo.methods.gpo.feedback import gradient
from gpo.methods.gpo.momentum import gradient_momentum, prompt_momentum
from gpo.methods.gpo.schedule import StepSizeSchedule
from gpo.methods.gpo.update import UpdateRule
from gpo.prompts.tags import extract_tagged, polish
from gpo.scoring.demos import split_demos, with_demos
from gpo.scoring.evaluate import Evaluation, Evaluator
from gpo.scoring.render import placement
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


@dataclass
class PieceTools:
    """What GPO's pieces may do inside one step of one task: ask the optimizer LLM for a
    greedy reply (gradients, summaries), and score a prompt on eval within the search budget."""

    search: "GPO"
    task: Task
    state: GPOState

    async def reply(self, prompt: str) -> str:
        texts = await self.search.actions.ask_raw(self.state, [self.search.actions.request(prompt, temperature=0.0)])
        return polish(extract_tagged(texts[0][0]))

    async def eval_score(self, prompt: str) -> float | None:
        """The prompt's eval score, shown with the current prompt's demonstrations; None when the
        task's search budget cannot pay for it (asked before anything is sent, like every scoring
        of a search)."""
        search, task = self.search, self.task
        prompt = with_demos(prompt, split_demos(self.state.current)[1])
        if search.evaluator.requests_needed(task, prompt, "eval") > search.ledger.remaining(task, self.state):
            return None
        evaluation = await search.evaluator.evaluate(task, prompt, "eval")
        return self.state.scores.setdefault(prompt, evaluation.score)


class GPO(PromptSearch):
    """GPO from its pieces, each built once from the flat GPOConfig: the feedback
    gradient (or none), momentum over prompts and over gradients, the update rule, and
    one step-size schedule per task."""

    name = "gpo"
    State = GPOState

    def __init__(self, config: GPOConfig, optimizer_llm: LLM, evaluator: Evaluator,
                 embedder: Embedder | None = None, *args, **kwargs):
        super().__init__(config, optimizer_llm, evaluator, embedder, *args, **kwargs)
        self.gradient = gradient(self.config)
        self.momentum = prompt_momentum(self.config, embedder)
        self.gradient_momentum = gradient_momentum(self.config, embedder)
        self.update = UpdateRule.from_config(self.config)
        self._schedules: dict[str, StepSizeSchedule | None] = {}

    @classmethod
    def needs_embedder(cls, config: GPOConfig) -> bool:
        return config.momentum_selection_name == "relevance"

    @classmethod
    def planned_test_prompts(cls, config: GPOConfig, options, task: Task) -> int:
        """With ``test_each_step`` every step's prompt is scored on test too (reporting only)."""
        return 2 + (cls.planned_steps(config, options, task) if config.test_each_step else 0)

    @classmethod
    def report_rows(cls, config: dict) -> list[tuple[str, str]]:
        c = config
        return [("momentum", f"{c.get('momentum_para_name')} / {c.get('momentum_selection_name')} / "
                             f"{c.get('momentum_update_name')} k={c.get('momentum_selection_num')}"),
                ("update", f"{c.get('util_gradient_name')}, {c.get('learning_rate_name')} {c.get('decay_strategy')} "
                           f"{c.get('initial_step_size')}->{c.get('final_step_size')}")]

    @classmethod
    def planned_step(cls, config: GPOConfig, options, batch: int, n_eval: int) -> StepPlan:
        N = config.num_generated_instructions_in_each_step
        grad, momentum, grad_momentum = gradient(config), prompt_momentum(config), gradient_momentum(config)
        requests = 1 + (grad.requests if grad else 0) + momentum.requests + grad_momentum.requests
        examples = batch + N * n_eval + (n_eval if momentum.scores else 0)
        rounds = UpdateRule.from_config(config).resample_rounds  # each may ask again for as many as were unusable
        return StepPlan(examples, requests + rounds, N * (1 + rounds) + requests - 1)

    def schedule(self, task: Task) -> StepSizeSchedule | None:
        """The step-size (word budget) schedule over this task's steps; None: no budget."""
        if task.id not in self._schedules:
            self._schedules[task.id] = StepSizeSchedule.from_config(self.config, self.total_steps(task))
        return self._schedules[task.id]

    async def step(self, task: Task, state: GPOState, g: int) -> StepRecord:
        """One step (docs/BEHAVIOUR.md, "The search loop"): the gradient of U, the update direction (momentum), the step size,
        the update meta-prompt, N candidates scored on eval, and the best not chosen before."""
        epoch, step = self.actions.epoch_step(task, g)
        tools = PieceTools(self, task, state)
        U = self.actions.parents(task, state, g, 1, [state.current])[0]  # pool='pareto': drawn from the frontier
        u_score = state.scores[U]
        instruction, held = split_demos(U)
        train_ev = await self._probe(task, state, U, g)
        grad = await self._gradient(tools, task, state, instruction, train_ev, epoch, step)
        direction, state.realtime_para = await self.momentum(self.edited_points(state, held), (instruction, u_score),
                                                             state.realtime_para, tools)
        schedule = self.schedule(task)
        step_size = schedule(self.schedule_position(state)) if schedule else None
        meta = self.update.meta_prompt(placement(task, self.config.instruction_pos), direction.kind, instruction,
                                       u_score, direction.block, self.actions.format_examples(task, state), grad, step_size)
        candidates = await self._candidates(task, state, meta, U, held, g, step_size)
        await self.actions.score(task, state, candidates, g)
        chosen, chosen_score = self._choose(state, U, candidates)
        if grad is not None:  # the gradient's improvement, for importance selection over gradients
            state.trajectory.gradients[-1].improvement = chosen_score - state.trajectory.points[-1].score
        state.trajectory.points.append(Point(chosen, chosen_score, epoch, step))
        state.chosen.append(chosen)
        state.current = chosen
        test_score = (await self.evaluator.evaluate(task, chosen, "test")).score if self.config.test_each_step else None
        return StepRecord(
            epoch=epoch, step=step, global_step=g, current=U, current_score=u_score,
            train_score=train_ev.score if train_ev is not None else None,
            step_size=step_size, gradient=grad, momentum=direction.block if direction.kind != "-" else None,
            meta_prompt=meta, candidates=candidates, chosen=chosen, chosen_score=chosen_score, test_score=test_score,
        )

    # ------------------------------------------------------------------ the step's parts
    @staticmethod
    def edited_points(state: GPOState, held: list) -> list[Point]:
        """The trajectory as the optimizer is shown it: GPO edits a prompt's instruction and holds
        its demonstrations, so it sees the points that carry the same demonstrations as U, each
        as its instruction (with no demonstrations anywhere: the whole trajectory)."""
        parts = [(split_demos(p.prompt), p) for p in state.trajectory.points]
        return [Point(instruction, p.score, p.epoch, p.step) for (instruction, demos), p in parts if demos == held]

    def schedule_position(self, state: GPOState) -> int:
        """Where the step-size schedule stands: how many trajectory points there are."""
        return len(state.trajectory.points)

    async def _probe(self, task: Task, state: GPOState, U: str, g: int) -> Evaluation | None:
        """U on the step's train minibatch: what the gradient reads (otherwise only logged,
        unless ``train_probe`` is off). None when the search budget leaves no room."""
        if not (self.config.train_probe or self.gradient):
            return None
        probed = await self.actions.probe(task, state, [U], g)
        return probed[0][1] if probed else None

    async def _gradient(self, tools: PieceTools, task: Task, state: GPOState, U: str,
                        train_ev: Evaluation | None, epoch: int, step: int) -> str | None:
        """This step's gradient, through the gradient momentum; None without a gradient."""
        if self.gradient is None or train_ev is None:
            return None
        text = await self.gradient(U, train_ev, task.split("train"), tools)
        state.trajectory.gradients.append(GradientEntry(text, None, epoch, step))
        shown, state.realtime_gradient = await self.gradient_momentum(state.trajectory.gradients,
                                                                       state.realtime_gradient, tools)
        return shown

    def _choose(self, state: GPOState, U: str, candidates: list[Candidate]) -> tuple[str, float]:
        """The best prompt not chosen before (by ``fitness``: the eval score less any length
        penalty), among U and the scored candidates in generation order (a stable sort: ties go
        to the earlier); the best overall when every one was chosen before."""
        ranked = self.actions.ranked(state, [U] + [c.text for c in candidates if c.rejected is None])
        chosen = next((p for p in ranked if p not in state.chosen), ranked[0])
        return chosen, state.scores[chosen]

    async def _candidates(self, task: Task, state: GPOState, meta: str, U: str, held: list, g: int,
                          step_size: int | None) -> list[Candidate]:
        """N candidates, in generation order, each a new instruction shown with U's demonstrations
        (``held``), either usable or marked with why not (resampled while the update rule asks
        for it and too few are usable)."""
        N = self.config.num_generated_instructions_in_each_step
        out: list[Candidate] = []
        this_step: set[str] = set()
        for r in range(1 + self.update.resample_rounds):
            want = N - sum(1 for c in out if c.rejected is None)
            if want <= 0:
                break
            request = self.actions.request(meta, want, stable_seed(self.config.seed, task.id, g, r), shape=self.actions.prompt_shape())
            texts = [with_demos(t, held) for t in await self.actions.propose(state, [request], U, self.update.reading)]
            out.extend(self.actions.screen(state, texts, U, lambda c: self.update.over_budget(c.edit_distance, step_size),
                                   this_step))
        return out
