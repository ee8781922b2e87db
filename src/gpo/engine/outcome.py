"""What happened to a task's prompt, worded once.

``outcome(result)`` reads a ``TaskResult`` and says, in plain words: whether a new prompt was
adopted (and whether its gain on eval is significant) or the initial prompt kept, and why; the
final prompt against the best constant answer (closed-answer tasks), with its per-class figures
where they matter; the human-written instruction beside it (instruction induction); and how many
proposals were usable. The CLI's closing lines, ``gpo show``, the HTML report and MLflow render
these lines; none of them words an outcome itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gpo.engine.state import TaskResult
from gpo.scoring.constant import verdict
from gpo.scoring.demos import describe
from gpo.scoring.objective import describe_classes, imbalanced_or_missed
from gpo.scoring.reference import describe as describe_reference
from gpo.scoring.stats import Comparison

# what happened to the prompt (Outcome.kind)
ADOPTED_SIGNIFICANT = "adopted: significant gain"
ADOPTED = "adopted: best on eval, not a significant gain"
KEPT_NONE_HIGHER = "kept: no candidate scored higher"
KEPT_NO_GAIN = "kept: no significant gain"
KEPT_BELOW_CONSTANT = "kept: not better than the constant answer"


@dataclass(frozen=True)
class Outcome:
    kind: str  # one of the constants above
    summary: str  # the prompt's fate in one line
    yardstick: tuple[str, ...] = ()  # the final prompt against the best constant answer, and per class
    human: str | None = None  # the human-written instruction against the final prompt
    proposals: str | None = None  # how many proposals were usable
    curve: str | None = None  # when the gain on eval first became significant, in scorer requests
    gains: dict[str, Comparison] = field(default_factory=dict)  # final against initial, by split
    headroom: str | None = None  # the headroom check's verdict, and the probe the search started from
    adoption: str | None = None  # how the final prompt was chosen, where not simply the best on eval
    length: str | None = None  # the final prompt's tokens and what they cost per 1,000 calls

    def lines(self) -> list[str]:
        return [*(x for x in (self.headroom,) if x), self.summary, *(x for x in (self.adoption,) if x),
                *self.yardstick, *(x for x in (self.human, self.length, self.proposals, self.curve) if x)]


def gain(comparison: Comparison | None) -> str:
    """`` (+12.5 points, 95% CI ..., p = ...)`` after a figure, or nothing."""
    return f" ({comparison.describe()})" if comparison else ""


def outcome(r: TaskResult) -> Outcome:
    gains = {split: c for split in ("eval", "test") if (c := r.comparison(split)) is not None}
    return Outcome(_kind(r), _summary(r), tuple(_yardstick(r)), describe_reference(r.human) if r.human else None,
                   _proposals(r), _curve(r), gains, _headroom(r), _adoption(r), _length(r))


def _adoption(r: TaskResult) -> str | None:
    """How the rule chose, where it was more than the best on eval: lcb's corrected bound, a holdout."""
    a = r.adoption or {}
    parts = []
    if a.get("split") == "holdout":
        parts.append(f"chosen on the held-out share of eval (never scored during the search), among the initial "
                     f"prompt and the {a['finalists']} best on eval")
    if a.get("holdout_unscored"):
        parts.append(f"the held-out share of eval was not scored ({a['holdout_unscored']}): chosen on eval")
    if a.get("correction") and a.get("low") is not None:
        parts.append(f"adopted by the lower bound of the gain over the initial prompt: {100 * a['low']:+.1f} points "
                     f"for the best bound, each at level {100 * (1 - a['alpha']):.2f}% (Bonferroni over the "
                     f"{a['finalists']} prompts compared)")
    return "; ".join(parts) or None


def _length(r: TaskResult) -> str | None:
    if r.final_tokens is None:
        return None
    cost = (f", ${r.cost_per_1000_calls:.4f} per 1,000 calls at the scorer's prompt price"
            if r.cost_per_1000_calls is not None else "")
    return f"the final prompt: about {r.final_tokens} tokens (4 bytes a token){cost}"


def _headroom(r: TaskResult) -> str | None:
    if not r.headroom:
        return None
    line = f"before the search: {r.headroom['verdict']}"
    return line + (f"; the search started from that probe ({r.started_from})" if r.started_from else "")


def _kind(r: TaskResult) -> str:
    if r.not_adopted:
        missed = Comparison.from_dict(r.not_adopted["comparison"])
        below = missed.significant and missed.diff > 0 and r.not_adopted.get("constant") is not None
        return KEPT_BELOW_CONSTANT if below else KEPT_NO_GAIN
    if r.final_prompt == r.initial_prompt:
        return KEPT_NONE_HIGHER
    gained = r.comparison("eval")
    return ADOPTED_SIGNIFICANT if gained is not None and gained.significant else ADOPTED


def _summary(r: TaskResult) -> str:
    final, kind = describe(r.final_prompt), _kind(r)
    where = "eval" if r.chosen_on == "eval" else "the held-out share of eval"
    if kind in (KEPT_BELOW_CONSTANT, KEPT_NO_GAIN):
        best = f"the best candidate, {describe(r.not_adopted['prompt'])},"
        if kind == KEPT_BELOW_CONSTANT:  # adopt=significant+constant
            return f"kept the initial prompt {final}: {best} is {verdict(r.not_adopted['constant'], r.chosen_on)}"
        return (f"no significant gain on {where}: kept the initial prompt {final} ({best} "
                f"was{gain(Comparison.from_dict(r.not_adopted['comparison']))})")
    if kind == KEPT_NONE_HIGHER:
        return f"no candidate scored higher on {where}: kept the initial prompt {final}"
    if kind == ADOPTED_SIGNIFICANT:
        return f"new prompt (a significant gain on eval): {final}"
    on_eval = "" if r.chosen_on == "eval" else " on eval"
    return f"new prompt, the best on {where} but not a significant gain{on_eval} (--adopt {r.adopt}): {final}"


def _yardstick(r: TaskResult) -> list[str]:
    """The final prompt against the best constant answer, on test where it was scored, and its
    per-class figures where the classes are imbalanced or one is never answered (or where the
    run chose by macro-F1)."""
    if not r.constant:
        return []
    split = r.yardstick_split
    lines = [f"the final prompt is {verdict(r.constant[split]['final'], split)}"]
    figures = r.constant[split]["final"].get("classes")
    if figures and (imbalanced_or_missed(figures) or r.objective == "macro_f1"):
        lines.append(f"per class on {split}: {describe_classes(figures)}")
    return lines


def _proposals(r: TaskResult) -> str | None:
    if not r.proposals:
        return None
    again = f", {r.repaired_proposals} of them when asked again" if r.repaired_proposals else ""
    rest = "; the rest were not prompts, over a budget or not new" if r.usable_proposals < r.proposals else ""
    return (f"proposals: {r.usable_proposals} of {r.proposals} usable ({100 * r.usable_proposals / r.proposals:.0f}%"
            f"{again}{rest})")


def _curve(r: TaskResult) -> str | None:
    if not r.curve:
        return None
    spent = r.curve[-1]["requests"]
    if r.started_from and r.requests_to_gain == r.curve[0]["requests"]:
        return (f"gain per request: the search started from a probe already significantly better than the initial "
                f"prompt on eval (the headroom check's); it spent {spent} scorer requests after that")
    if r.requests_to_gain is None:
        return f"gain per request: no significant gain on eval at any point of the search ({spent} scorer requests)"
    return (f"gain per request: the best prompt was first significantly better than the initial one on eval after "
            f"{r.requests_to_gain} of the search's {spent} scorer requests")
