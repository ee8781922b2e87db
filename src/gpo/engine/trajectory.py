"""The optimisation history: chosen prompts with eval scores, and per-step details
(candidates, gradient, momentum text, step size). Plain dataclasses that round-trip
through JSON, so the whole optimizer state can be checkpointed after every step."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class Point:
    """One trajectory entry: a chosen prompt and its eval score (epoch = step = -1 for the initial prompt)."""

    prompt: str
    score: float
    epoch: int
    step: int


@dataclass
class Candidate:
    text: str
    score: float | None = None  # eval score; None when rejected before evaluation
    edit_distance: int | None = None  # words changed relative to the current prompt
    rejected: str | None = None  # why it was not evaluated (leak, empty, duplicate, over budget)
    reused: bool = False  # seen in an earlier step; its stored score was used
    race_examples: int | None = None  # stopped by racing: eval examples it was scored on
    race_estimate: float | None = None  # stopped by racing: its mean on those examples (not an eval score)
    merged: list[str] | None = None  # a merge (--merge): the two frontier prompts it combines
    first_reply: str | None = None  # asked for again (--repair): the reply set aside, and why
    first_rejected: str | None = None


@dataclass
class StepRecord:
    epoch: int
    step: int
    global_step: int
    current: str
    current_score: float
    train_score: float | None  # the train-batch probe, when one was scored
    step_size: int | None
    gradient: str | None
    momentum: str | None
    meta_prompt: str
    candidates: list[Candidate] = field(default_factory=list)
    chosen: str = ""
    chosen_score: float = 0.0
    test_score: float | None = None
    component: str | None = None  # a program's search: the prompt this step edited (texts above are its)
    scorer_requests: int | None = None  # the search's scorer requests once this step was done (its curve)


@dataclass
class GradientEntry:
    text: str
    improvement: float | None  # filled in once the step's choice is known
    epoch: int
    step: int


@dataclass
class Trajectory:
    points: list[Point] = field(default_factory=list)
    steps: list[StepRecord] = field(default_factory=list)
    gradients: list[GradientEntry] = field(default_factory=list)

    def best(self) -> Point:
        """Highest eval score; the earliest wins ties (the test split is never consulted)."""
        return max(self.points, key=lambda p: p.score)  # max keeps the first maximum

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Trajectory":
        steps = []
        for s in data.get("steps", []):
            s = dict(s)
            s["candidates"] = [Candidate(**c) for c in s.get("candidates", [])]
            steps.append(StepRecord(**s))
        return cls(
            points=[Point(**p) for p in data.get("points", [])],
            steps=steps,
            gradients=[GradientEntry(**g) for g in data.get("gradients", [])],
        )
