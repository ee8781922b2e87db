"""What a search keeps: its state between steps (checkpointed after each one), what it
returns for a task, and the two small rules every method shares (the steps of an epoch,
and seeds derived from names)."""

from __future__ import annotations

import zlib
from dataclasses import asdict, dataclass, field, fields

from gpo.engine.trajectory import Trajectory
from gpo.scoring.stats import Comparison


def steps_per_epoch(n: int, batch_size: int) -> int:
    """A trailing partial batch counts only if it holds at least half a batch; a split smaller
    than half a batch still gives one step (docs/BEHAVIOUR.md, "The search loop")."""
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
    stopped: str | None = None  # why a run budget stopped the run early (test not scored), else None
    method: str = "gpo"
    search_ended: str | None = None  # why the search ended before its last step (per-task search budget)
    scorer_requests: int = 0  # scorer requests the search made (initial prompt included, test excluded)
    scorer_tokens: int = 0
    optimizer_samples: int = 0  # optimizer completions the search asked for
    optimizer_tokens: int = 0
    selection: str = "full"  # how candidates were scored: race or full
    adopt: str = "best"  # how the final prompt was adopted: best (eval mean) or significant
    objective: str = "accuracy"  # what the eval and test figures are: accuracy or macro_f1 (gpo.scoring.objective)
    eval_comparison: dict | None = None  # final against initial on eval (stats.Comparison.as_dict)
    test_comparison: dict | None = None  # final against initial on test
    not_adopted: dict | None = None  # adopt=significant kept the initial prompt: the best one, its eval and comparison
    proposals: int = 0  # candidates the search's steps proposed
    usable_proposals: int = 0  # of which were usable prompts (``usable_proposals``)
    repaired_proposals: int = 0  # of those, usable only when asked again (``repair``)
    # closed-answer tasks: the best constant answer on eval and test, and the initial and final
    # prompts against it with their answer shares ({split: {"initial": ..., "final": ...}},
    # each gpo.scoring.constant.measure, with per-class figures); None where the answers are not a closed set
    constant: dict | None = None
    # instruction induction: the human-written instruction on test, alone and with the final prompt's
    # demonstrations, each against the final prompt (gpo.scoring.reference); None where the task has none
    human: dict | None = None
    # the gain per request: after the initial scoring and each step, the scorer requests spent and the best eval
    # score so far with its 95% interval and its gain over the initial prompt (gpo.engine.adoption.gain_curve);
    # and the requests spent when that gain first became significant (None: it never did)
    curve: list[dict] | None = None
    requests_to_gain: int | None = None
    headroom: dict | None = None  # the headroom check before the search (gpo.scoring.headroom.Headroom.as_dict)
    started_from: str | None = None  # the probe prompt the search started from (significantly above the initial)
    chosen_on: str = "eval"  # where the adoption rule chose: eval, or holdout (final_holdout)
    adoption: dict | None = None  # the rule, how many prompts it chose among, and lcb's bound (gpo.engine.adoption)
    final_tokens: int | None = None  # the final prompt's tokens (gpo.prompts.length)
    cost_per_1000_calls: float | None = None  # what they cost over 1,000 calls at the scorer's prompt price

    def as_dict(self) -> dict:
        return asdict(self)

    def comparison(self, split: str) -> Comparison | None:
        """The final prompt against the initial one on ``split`` (eval or test), typed."""
        found = {"eval": self.eval_comparison, "test": self.test_comparison}[split]
        return Comparison.from_dict(found) if found else None

    @property
    def yardstick_split(self) -> str | None:
        """Where the final prompt was set beside the best constant answer: test where it was
        scored, else eval (None: the task has no closed answer set)."""
        if not self.constant:
            return None
        return "test" if self.constant.get("test") else "eval"

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
    start_requests: int = 0  # scorer requests of the initial prompt's scoring (the gain curve's first point)
    paid: dict[str, list[int]] = field(default_factory=dict)  # what the search scored ({"split digest": indices}, gpo.scoring.paid)
    parts: dict[str, dict] = field(default_factory=dict)  # a program's search: each prompt's own state
    headroom: dict | None = None  # the headroom check before the search (Headroom.as_dict), where it ran
    started_from: str | None = None  # the probe whose prompt the search started from, where one beat the initial
    # pool='pareto': each prompt scored on all of eval, its per-example scores (the frontier's material,
    # gpo.engine.frontier), and the pairs merged so far (--merge)
    example_scores: dict[str, list[float]] = field(default_factory=dict)
    merged: list[list[str]] = field(default_factory=list)

    def scored(self, text: str, evaluation, per_example: bool = False) -> None:
        """Keep a prompt's eval score (an ``Evaluation`` of all of eval) and, with ``per_example``
        (the Pareto pool), its score on each example, in example order."""
        self.scores[text] = evaluation.score
        if per_example:
            self.example_scores[text] = [r.score for r in sorted(evaluation.records, key=lambda r: r.index)]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["trajectory"] = self.trajectory.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "SearchState":
        d = dict(d)
        d["trajectory"] = Trajectory.from_dict(d["trajectory"])
        return cls(**d)
