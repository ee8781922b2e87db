"""What a split's score is: the mean of per-example scores (``accuracy``), or macro-F1 over the
classes of a closed-answer task (``macro_f1``), and the per-class figures beside either.

Accuracy hides a prompt that never predicts the rare classes; macro-F1 (the unweighted mean of
each class's F1) does not. Per example, a closed-answer task's record carries the class of its
target (``truth``) and the class its reply gives (``answer``, ``NO_ANSWER`` for none), both read
by ``gpo.scoring.constant.classes`` (the one reading of a reply). Macro-F1 is a figure of the
whole split, not a mean of per-example scores, so two prompts are compared on it by a paired
bootstrap over examples (``stats.bootstrap_compare``) where accuracy uses the exact paired tests
of ``stats.compare``; racing, adoption and every interval follow the objective.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from gpo.scoring.extract import NO_ANSWER
from gpo.scoring.stats import BOOTSTRAP_SAMPLES, Comparison, bootstrap_compare, compare

OBJECTIVES = ("accuracy", "macro_f1")
Pair = tuple[str, str]  # (truth, answer): an example's target class and the class its reply gives


def macro_f1(pairs: Sequence[Pair]) -> float:
    """The unweighted mean F1 of the classes that are a target or a given answer ("no answer"
    is no class: a reply giving none counts as a miss of its target's class)."""
    return float(macro_f1_rows(pairs, np.arange(len(pairs))[None, :])[0]) if pairs else 0.0


def macro_f1_rows(pairs: Sequence[Pair], rows: np.ndarray) -> np.ndarray:
    """Macro-F1 of ``pairs`` resampled by each row of example indices (the bootstrap's figure)."""
    labels = sorted({t for t, _ in pairs} | {a for _, a in pairs if a != NO_ANSWER})
    code = {label: i for i, label in enumerate(labels)}
    truth = np.array([code[t] for t, _ in pairs])[rows]
    answer = np.array([code.get(a, -1) for _, a in pairs])[rows]
    f1 = np.zeros(rows.shape[0])
    present = np.zeros(rows.shape[0])  # classes that are a target or an answer in each resample
    for i in range(len(labels)):
        t, a = truth == i, answer == i
        tp = np.sum(t & a, axis=1)
        wrong = np.sum(t != a, axis=1)  # false positives and false negatives
        seen = (tp + wrong) > 0
        f1 += np.where(seen, 2 * tp / np.maximum(2 * tp + wrong, 1), 0.0)
        present += seen
    return np.where(present > 0, f1 / np.maximum(present, 1), 0.0)


def per_class(pairs: Sequence[Pair]) -> dict:
    """Per target class: its examples, their recall (share answered with it) and how often the
    class was given as an answer; with the split's macro-F1. A JSON-ready dict."""
    support = Counter(t for t, _ in pairs)
    given = Counter(a for _, a in pairs)
    hits = Counter(t for t, a in pairs if t == a)
    return {"macro_f1": macro_f1(pairs),
            "classes": [{"label": label, "n": support[label], "hits": hits[label],
                         "recall": hits[label] / support[label], "predicted": given[label]} for label in sorted(support, key=lambda k: (-support[k], k))]}


def imbalanced_or_missed(figures: dict | None) -> bool:
    """Whether per-class figures deserve a closing line: the classes' sizes differ by more than
    half, or one class is never given as an answer."""
    if not figures or not figures["classes"]:
        return False
    sizes = [c["n"] for c in figures["classes"]]
    return max(sizes) > 1.5 * min(sizes) or any(c["predicted"] == 0 for c in figures["classes"])


def describe_classes(figures: dict) -> str:
    """'macro-F1 41.2; recall billing 75% (6/8), shipping 0% (0/8, never answered)'."""
    parts = []
    for c in figures["classes"]:
        never = ", never answered" if c["predicted"] == 0 else ""
        parts.append(f"{c['label']} {c['recall']:.0%} ({c['hits']}/{c['n']}{never})")
    return f"macro-F1 {100 * figures['macro_f1']:.1f}; recall " + ", ".join(parts)


@dataclass(frozen=True)
class Objective:
    """How a split's score is computed from its records and how two prompts' are compared."""

    name: str = "accuracy"

    @property
    def split_level(self) -> bool:
        return self.name == "macro_f1"

    def items(self, records) -> list:
        """Per example, what the objective is computed from: a score, or a (truth, answer) pair."""
        if not self.split_level:
            return [r.score for r in records]
        if any(r.truth is None for r in records):
            raise ValueError("macro_f1 needs records read as classes (a label, boolean or multiple-choice task)")
        return [(r.truth, r.answer) for r in records]

    def value(self, items: Sequence) -> float:
        if self.split_level:
            return macro_f1(items)
        return sum(items) / len(items) if items else 0.0

    def half_width(self, items: Sequence, alpha: float = 0.05, seed: int = 0) -> float:
        """Half the width of the percentile bootstrap interval of a split-level figure."""
        rows = np.random.default_rng(seed).integers(0, len(items), size=(BOOTSTRAP_SAMPLES, len(items)))
        low, high = np.quantile(macro_f1_rows(items, rows), [alpha / 2, 1 - alpha / 2])
        return float(high - low) / 2

    def compare(self, a: Sequence, b: Sequence, *, alpha: float = 0.05, seed: int = 0,
                interval: bool = True) -> Comparison:
        """B against A on the same examples, in the same order."""
        if self.split_level:
            return bootstrap_compare(a, b, macro_f1_rows, alpha=alpha, seed=seed)
        return compare(a, b, alpha=alpha, seed=seed, interval=interval)


ACCURACY = Objective("accuracy")
