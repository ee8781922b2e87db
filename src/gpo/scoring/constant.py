"""The constant yardstick: what answering the same thing every time would score.

On a task with a closed set of answers (yes / no, an option letter, a user's label
column), a prompt can raise accuracy by making the model give one answer to every
question: it then scores the share of that answer among the targets, which looks like
a gain and is none. So every closed-answer task is measured against its **best
constant answer**: for each split, the one answer (among the targets the task's
examples have) that scores highest on that split when given for every example. It is
the strongest constant there is on that split (chosen on the split itself, so it is a
demanding bar), and it costs no model call: the answer is scored by the task's own
metric, as a reply would be.

Beside it, each prompt's **answer shares** (its parsed answers, most frequent first)
show a collapse directly: a prompt whose most frequent answer covers at least
``COLLAPSE_SHARE`` of a split's examples has collapsed to one answer.

``verdict`` says, in one place, what a prompt's scores mean against the yardstick;
the closing lines, ``optimized_prompts.jsonl``, the report and the benches read it.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

from gpo.scoring.metrics import Metric, score_answer, target_letter
from gpo.scoring.stats import Comparison, compare
from gpo.tasks.task import AnswerKind, Example, Task

COLLAPSE_SHARE = 0.9  # a prompt whose most frequent answer covers this share of a split has collapsed to it
MAX_LABELS = 12  # a user's target column with more distinct values than this is not a closed set of answers
SHARES_SHOWN = 5  # answer shares kept per prompt (the rest are summed as "other")
NO_ANSWER = "(no answer)"  # a reply that gives none of the task's answers


@dataclass(frozen=True)
class ConstantAnswer:
    """One answer given for every example of a split, and what it scores on each."""

    answer: str
    split: str
    scores: tuple[float, ...]  # per example, in split order

    @property
    def score(self) -> float:
        return sum(self.scores) / len(self.scores) if self.scores else 0.0


def closed_answers(task: Task) -> list[str]:
    """The answers a constant can give on this task (empty where the answers are not a
    closed set: numbers, free text, generation, a judge or a metric without a target)."""
    metric = task.metric
    if metric == "judge" or (isinstance(metric, Metric) and not metric.needs_target):
        return []
    if not isinstance(metric, (str, Metric)) or (isinstance(metric, str) and metric != "exact"):
        return []  # a user's callable, ROUGE-L, Dyck, word sorting: no closed set to speak of
    examples = _labelled(task)
    if task.kind is AnswerKind.MULTIPLE_CHOICE:
        letters = {target_letter(e) for e in examples}
        return sorted(f"({letter.upper()})" for letter in letters if len(letter) == 1)  # an unmatched text is none
    if task.kind is AnswerKind.BOOLEAN:
        return sorted({e.target.strip() for e in examples})
    if task.kind is AnswerKind.EXACT:
        labels = sorted({e.target.strip() for e in examples})
        return labels if 2 <= len(labels) <= MAX_LABELS and len(labels) * 2 <= len(examples) else []
    return []


def _labelled(task: Task) -> list[Example]:
    """The task's examples with targets: train, eval and test."""
    return [e for split in ("train", "eval", "test") for e in task.splits.get(split) or []]


def best_constant(task: Task, split: str, extraction: str = "lenient",
                  indices: Sequence[int] | None = None) -> ConstantAnswer | None:
    """The constant answer that scores highest on ``split`` (on ``indices`` of it, if given;
    ties go to the first in sorted order), or None where the task has no closed answer set."""
    examples = task.splits.get(split) or []
    chosen = [examples[i] for i in (range(len(examples)) if indices is None else indices)]
    best: ConstantAnswer | None = None
    for answer in closed_answers(task):
        scores = tuple(_score(task, e, answer, extraction) for e in chosen)
        if best is None or sum(scores) > sum(best.scores):
            best = ConstantAnswer(answer, split, scores)
    return best


def _score(task: Task, example: Example, answer: str, extraction: str) -> float:
    return score_answer(task, example, answer, extraction)[1]


def as_answers(task: Task, parsed: Sequence[str], extraction: str = "lenient") -> list[str]:
    """Parsed answers in the task's own words: a parsed form of a closed answer ('false', 'b')
    becomes that answer ('No', '(B)'), and a reply naming exactly one of the answers (a label
    inside a sentence) becomes it; anything else is ``NO_ANSWER``."""
    answers = closed_answers(task)
    examples = _labelled(task)
    if not answers or not examples:
        return list(parsed)
    by_form = {}
    for answer in answers:
        form = score_answer(task, examples[0], answer, extraction)[0].strip().lower()
        by_form.setdefault(form, answer)
    words = {a: re.compile(rf"(?<!\w){re.escape(a.lower())}(?!\w)") for a in answers}

    def one(text: str) -> str:
        key = text.strip().lower()
        if key in by_form:
            return by_form[key]
        named = [a for a, pattern in words.items() if pattern.search(key)]
        return named[0] if len(named) == 1 else NO_ANSWER

    return [one(p) for p in parsed]


def answer_shares(answers: Sequence[str]) -> list[tuple[str, float]]:
    """A prompt's answers on a split (``as_answers``), as (answer, share), most frequent first
    (the first ``SHARES_SHOWN``, then the rest as 'other')."""
    counts = Counter(answers)
    n = max(1, len(answers))
    top = counts.most_common()
    shares = [(answer, count / n) for answer, count in top[:SHARES_SHOWN]]
    rest = sum(count for _, count in top[SHARES_SHOWN:])
    return shares + ([("other", rest / n)] if rest else [])


def collapsed_to(shares: Sequence[tuple[str, float]]) -> str | None:
    """The answer a prompt collapsed to (its most frequent covers ``COLLAPSE_SHARE``), or None
    (giving no answer at all is a failure of its own, not a collapse to one answer)."""
    if shares and shares[0][0] not in ("other", NO_ANSWER) and shares[0][1] >= COLLAPSE_SHARE:
        return shares[0][0]
    return None


def yardstick(constant: ConstantAnswer, prompt_scores: Sequence[float], answers: Sequence[str],
              alpha: float = 0.05, seed: int = 0) -> dict:
    """A prompt's scores on a split against the split's best constant answer (paired, example
    by example), and its answer shares: a JSON-ready dict that ``verdict`` reads."""
    versus = compare(list(constant.scores), list(prompt_scores), alpha=alpha, seed=seed)
    shares = answer_shares(answers)
    return {"constant": constant.answer, "constant_score": constant.score, "vs_constant": versus.as_dict(),
            "answers": [[a, s] for a, s in shares], "collapsed_to": collapsed_to(shares)}


def measure(task: Task, evaluation, extraction: str = "lenient", alpha: float = 0.05, seed: int = 0) -> dict | None:
    """A prompt's evaluation (``gpo.scoring.evaluate.Evaluation``) against the best constant
    answer on the same examples (``yardstick``), or None where the task has no closed answer set."""
    constant = best_constant(task, evaluation.split, extraction, [r.index for r in evaluation.records])
    if constant is None:
        return None
    answers = as_answers(task, [r.parsed_answer for r in evaluation.records], extraction)
    return yardstick(constant, [r.score for r in evaluation.records], answers, alpha=alpha, seed=seed)


def beats_constant(measured: dict | None) -> bool:
    """Whether a prompt is significantly better than the constant answer (True where the task
    has no constant, so nothing to beat)."""
    if not measured:
        return True
    versus = Comparison.from_dict(measured["vs_constant"])
    return versus.significant and versus.diff > 0 and not measured["collapsed_to"]


def verdict(measured: dict | None, split: str) -> str | None:
    """One line on a prompt against the constant yardstick on ``split``, or None where the
    task has no closed answer set."""
    if not measured:
        return None
    versus = Comparison.from_dict(measured["vs_constant"])
    const = f"always answering {measured['constant']!r} ({100 * measured['constant_score']:.1f})"
    if measured["collapsed_to"] is not None:
        share = dict((a, s) for a, s in measured["answers"])[measured["collapsed_to"]]
        return (f"collapsed to one answer: {measured['collapsed_to']!r} on {share:.0%} of {split} examples; "
                f"against {const}: {versus.describe()}")
    if beats_constant(measured):
        return f"better than {const} on {split}: {versus.describe()}"
    return f"not better than {const} on {split}: {versus.describe()}"
