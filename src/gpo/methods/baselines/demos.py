"""Demonstrations as the parameter: the instruction stays, the search chooses which k
solved train examples the scorer is shown before each question.

A small scorer responds to demonstrations far more than to instruction wording, and
choosing them needs no capable optimizer: candidates come from the data and the scorer
judges them. Both searches propose N demonstration sets a step, each added to the
initial instruction (``gpo.scoring.demos``), score them on eval like any candidate
(racing, the search budget, adoption and the constant yardstick apply unchanged) and
carry the best one.

- ``demos``: random search over demonstration sets drawn from train with their gold
  answers (DSPy's LabeledFewShot under random search).
- ``bootstrap``: bootstrapped demonstrations, as DSPy's BootstrapFewShot: each step
  scores the instruction on its train minibatch and keeps the examples the scorer itself
  answers correctly, shown with its own reply (its reasoning, where the prompt asks for
  steps, then the bare answer it gave when asked again); sets are drawn from all kept so
  far, filled with gold-labelled examples while fewer than k are kept.

No optimizer model is called. Option ``k`` (default 3): demonstrations per candidate.

- ``gpo+demos``: the joint search: GPO's instruction steps, then steps that pair the best
  instructions with demonstration sets, at random or by Optuna's TPE as MIPROv2 does
  (``InstructionsThenDemos``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gpo.config import ConfigError
from gpo.engine.search import PromptSearch, StepPlan
from gpo.engine.state import SearchState, stable_seed
from gpo.engine.trajectory import Candidate, StepRecord
from gpo.methods.gpo.method import GPO, GPOState
from gpo.methods.gpo.schedule import StepSizeSchedule
from gpo.scoring.demos import split_demos, with_demos
from gpo.tasks.task import Example, Task


@dataclass
class DemoState(SearchState):
    """The shared search state plus the train examples the scorer answered correctly
    (bootstrap): their index in train and the reply shown as the demonstration's answer."""

    bootstrapped: list[list] = field(default_factory=list)  # [train index, answer shown]


def check_k(method: str, k: int, task: Task) -> None:
    """A demonstration count that can bind: at least one, and no more than train holds."""
    if k < 1:
        raise ConfigError(f"--demos {k} (method {method!r} option k): a demonstration search shows at least 1 "
                          f"demonstration")
    train = len(task.split("train"))
    if k > train:
        raise ConfigError(f"--demos {k} (method {method!r} option k): task {task.id} has {train} train example"
                          f"{'s' if train != 1 else ''} to draw demonstrations from; ask for {train} or fewer")


@dataclass(frozen=True)
class DemoSearchOptions:
    """DemoSearch's own options (``--method-option NAME=VALUE``)."""

    k: int = 3


class DemoSearch(PromptSearch):
    name = "demos"
    Options = DemoSearchOptions
    State = DemoState

    @classmethod
    def check_task(cls, config, options, task: Task) -> None:
        check_k(cls.name, options.k, task)

    @classmethod
    def planned_step(cls, config, options, batch: int, n_eval: int) -> StepPlan:
        return StepPlan(config.num_generated_instructions_in_each_step * n_eval, 0, 0)

    def instruction(self, state: SearchState) -> str:
        """The instruction every candidate carries: the initial prompt's."""
        return split_demos(state.trajectory.points[0].prompt)[0]

    async def demo_pool(self, task: Task, state: DemoState, g: int) -> tuple[list[Example], list[Example]]:
        """The examples demonstrations are drawn from: (preferred, fill); a set takes k of the
        preferred ones, or all of them and the rest from the fill. Here: train, gold answers."""
        return task.split("train"), []

    async def step(self, task: Task, state: DemoState, g: int) -> StepRecord:
        preferred, fill = await self.demo_pool(task, state, g)
        k, rng = self.options.k, self.actions.rng(task, g)

        def draw() -> list[Example]:
            if len(preferred) >= k:
                return rng.sample(preferred, k)
            return preferred + rng.sample(fill, min(len(fill), k - len(preferred)))

        texts = [with_demos(self.instruction(state), draw())
                 for _ in range(self.config.num_generated_instructions_in_each_step)]
        candidates = self.new_candidates(state, texts)
        await self.actions.score(task, state, candidates, g)
        self.actions.keep_best(state, candidates, 1)
        return self.actions.record(task, state, g, "", candidates)

    @staticmethod
    def new_candidates(state: SearchState, texts: list[str]) -> list[Candidate]:
        """Each drawn set as a candidate; one drawn twice in a step, or scored before, is not new."""
        out: list[Candidate] = []
        for text in texts:
            c = Candidate(text=text)
            if any(o.text == text for o in out):
                c.rejected = "duplicate in this step"
            elif text in state.seen:
                c.reused = text in state.scores
                c.rejected = None if c.reused else "seen before, never scored"
            else:
                state.seen.append(text)
            out.append(c)
        return out


class BootstrapDemos(DemoSearch):
    name = "bootstrap"

    @classmethod
    def planned_step(cls, config, options, batch: int, n_eval: int) -> StepPlan:
        examples = super().planned_step(config, options, batch, n_eval).examples
        return StepPlan(examples + batch, 0, 0)  # the train minibatch the instruction is scored on

    async def demo_pool(self, task: Task, state: DemoState, g: int) -> tuple[list[Example], list[Example]]:
        train = task.split("train")
        for _, evaluation in await self.actions.probe(task, state, [self.instruction(state)], g):
            known = {i for i, _ in state.bootstrapped}
            for r in evaluation.records:
                if r.score >= 1.0 and r.index not in known:
                    shown = r.raw_answer.strip()
                    if r.raw_answer_second_round is not None:
                        shown = f"{shown}\n\n{r.raw_answer_second_round.strip()}"
                    state.bootstrapped.append([r.index, shown])
        taken = {i for i, _ in state.bootstrapped}
        own = [Example(train[i].input, answer, fields=train[i].fields) for i, answer in state.bootstrapped]
        return own, [e for i, e in enumerate(train) if i not in taken]  # gold-labelled fill


SAMPLERS = ("random", "tpe")  # how gpo+demos pairs instructions with demonstration sets
ORDERS = ("instructions-first", "demos-first")  # which of gpo+demos's phases runs first


@dataclass(frozen=True)
class InstructionsThenDemosOptions:
    """InstructionsThenDemos's own options (``--method-option NAME=VALUE``)."""

    k: int = 3
    demo_steps: int = 2
    instructions: int = 3
    sampler: str = "random"  # random | tpe
    demo_sets: int = 8
    instruction_share: float = 0.5
    order: str = "instructions-first"  # instructions-first | demos-first

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise ConfigError(f"method 'gpo+demos' option sampler={self.sampler!r}: one of {', '.join(SAMPLERS)}")
        if self.order not in ORDERS:
            raise ConfigError(f"method 'gpo+demos' option order={self.order!r}: one of {', '.join(ORDERS)}")
        if not 0.0 <= self.instruction_share <= 1.0:
            raise ConfigError(f"method 'gpo+demos' option instruction_share={self.instruction_share}: "
                              "a share of the search budget, from 0 to 1")


class InstructionsThenDemos(GPO):
    """Instruction and demonstrations searched jointly (``--method gpo+demos``).

    Two phases, in the order option ``order`` says:

    - GPO's own steps write instructions (the recipe as configured; under a per-task search
      budget, until ``instruction_share`` of it is spent);
    - ``demo_steps`` demonstration steps (under a budget: while the rest lasts) each propose N
      candidates, every one an instruction from the ``instructions`` best on eval so far
      paired with a set of k train examples, scored on eval like any candidate (raced, under
      ``selection='race'``).

    ``instructions-first`` (default) runs GPO first, then pairs its best instructions with
    demonstrations. ``demos-first`` finds demonstrations for the initial instruction first,
    then GPO rewrites the instruction of the best prompt with its demonstrations held (GPO
    edits a prompt's instruction and keeps its demonstrations): where a small scorer needs
    demonstrations to know what is asked, the instruction is then judged where it matters,
    beside them. The final prompt is the best on eval over both phases. How the pairs are
    chosen (option ``sampler``):

    - ``random`` (default): each pair drawn at random, a fresh set of examples each time;
    - ``tpe``: as MIPROv2 does, Optuna's TPE sampler over (instruction, demonstration set)
      with ``demo_sets`` sets drawn once per task, fitted on every pair scored so far (a
      raced-out pair by its estimate). The study is built anew each step from the
      checkpointed scores with a seed of that step, so a resumed run asks what an
      uninterrupted one would. Needs ``pip install 'gpo[tpe]'``.
    """

    name = "gpo+demos"
    Options = InstructionsThenDemosOptions

    @classmethod
    def check_task(cls, config, options, task: Task) -> None:
        check_k(cls.name, options.k, task)

    def instruction_steps(self, task: Task) -> int:
        return GPO.planned_steps(self.config, self.options, task)

    @classmethod
    def planned_steps(cls, config, options, task: Task) -> int:
        return GPO.planned_steps(config, options, task) + options.demo_steps

    def schedule(self, task: Task):
        """GPO's step-size schedule over its own (instruction) steps only."""
        if task.id not in self._schedules:
            self._schedules[task.id] = StepSizeSchedule.from_config(self.config, self.instruction_steps(task))
        return self._schedules[task.id]

    def writes_instructions(self, task: Task, state: GPOState, g: int) -> bool:
        """Whether step g is one of GPO's. Instructions first: GPO's steps remain, no
        demonstration step was taken, and under a search budget less than
        ``instruction_share`` of it is spent (the rest is left for the demonstrations).
        Demonstrations first: the ``demo_steps`` are taken, or under a budget the
        demonstrations have spent their share (1 - ``instruction_share``)."""
        cap, share = self.config.budget.scorer_calls_per_task, self.options.instruction_share
        demo_steps = sum(1 for st in state.trajectory.steps if not st.meta_prompt)
        if self.options.order == "demos-first":
            return demo_steps >= self.options.demo_steps or (
                demo_steps > 0 and cap is not None and self.ledger.spent(task, state) >= (1 - share) * cap)
        if g >= self.instruction_steps(task) or (cap is not None and self.ledger.spent(task, state) >= share * cap):
            return False
        return demo_steps == 0

    def schedule_position(self, state: GPOState) -> int:
        """GPO's step-size schedule counts its own steps only (and the initial prompt)."""
        return 1 + sum(1 for st in state.trajectory.steps if st.meta_prompt)

    @classmethod
    def phase_shares(cls, options) -> list[tuple[str, float]]:
        shares = [("instruction", options.instruction_share), ("demonstration", 1 - options.instruction_share)]
        return shares if options.order == "instructions-first" else shares[::-1]

    async def step(self, task: Task, state: GPOState, g: int) -> StepRecord:
        instructions = self.writes_instructions(task, state, g)
        cap, (first, share) = self.config.budget.scorer_calls_per_task, self.phase_shares(self.options)[0]
        in_first = instructions == (first == "instruction")
        self.ledger.limit[task.id] = share * cap if cap is not None and in_first else None  # a step fits its phase
        if instructions:
            return await super().step(task, state, g)
        ranked = [p for p in self.actions.ranked(state, list(state.scores)) if not split_demos(p)[1]]
        instructions = ranked[: self.options.instructions] or [state.trajectory.points[0].prompt]
        n = self.config.num_generated_instructions_in_each_step
        if self.options.sampler == "tpe":
            pairs = self.tpe_pairs(task, state, g, instructions, n)
        else:
            train, rng = task.split("train"), self.actions.rng(task, g)
            pairs = [(rng.choice(instructions), rng.sample(train, min(self.options.k, len(train))))
                     for _ in range(n)]
        candidates = DemoSearch.new_candidates(state, [with_demos(i, d) for i, d in pairs])
        await self.actions.score(task, state, candidates, g)
        return self.actions.record(task, state, g, "", candidates)

    def demo_sets(self, task: Task) -> list[list[Example]]:
        """The ``demo_sets`` demonstration sets TPE chooses among, drawn once per task."""
        train, rng = task.split("train"), self.actions.rng(task, "demo-sets")
        return [rng.sample(train, min(self.options.k, len(train))) for _ in range(self.options.demo_sets)]

    def tpe_pairs(self, task: Task, state: GPOState, g: int, instructions: list[str],
                  n: int) -> list[tuple[str, list[Example]]]:
        """n (instruction, demonstration set) pairs from TPE fitted on the pairs scored so far."""
        try:
            import optuna
        except ImportError:
            raise ConfigError("method 'gpo+demos' with sampler=tpe needs Optuna: pip install 'gpo[tpe]'") from None
        from optuna.distributions import CategoricalDistribution

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        sets = self.demo_sets(task)
        space = {"instruction": CategoricalDistribution(list(range(len(instructions)))),
                 "demos": CategoricalDistribution(list(range(len(sets))))}
        pair_of = {with_demos(p, d): (i, j) for i, p in enumerate(instructions) for j, d in enumerate(sets)}
        seen = dict(state.scores)
        for step in state.trajectory.steps:  # a pair racing stopped counts at its estimate
            for c in step.candidates:
                if c.race_estimate is not None:
                    seen.setdefault(c.text, c.race_estimate)
        sampler = optuna.samplers.TPESampler(seed=stable_seed(self.config.seed, task.id, "tpe", g),
                                             n_startup_trials=n, constant_liar=True)
        study = optuna.create_study(direction="maximize", sampler=sampler)
        for text, score in seen.items():
            if text in pair_of:
                i, j = pair_of[text]
                study.add_trial(optuna.trial.create_trial(params={"instruction": i, "demos": j},
                                                          distributions=space, value=score))
        out = []
        for _ in range(n):
            trial = study.ask(space)
            out.append((instructions[trial.params["instruction"]], sets[trial.params["demos"]]))
        return out
