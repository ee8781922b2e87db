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

A reply's answer is read once: ``classes`` turns each record's parsed answer (what the
metric compared) into the closed answer it matches, so a reply the metric scores right
gives its target's answer and every other reply another answer or ``NO_ANSWER``; the
shares, a collapse, the per-class figures and macro-F1 all count those answers.

Beside it, each prompt's **answer shares** (its answers, most frequent first)
show a collapse directly: a prompt whose most frequent answer covers at least
``COLLAPSE_SHARE`` of a split's examples has collapsed to one answer.

``verdict`` says, in one place, what a prompt's scores mean against the yardstick;
the closing lines, ``optimized_prompts.jsonl``, the report and the benches read it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Sequence

from gpo.scoring.extract import NO_ANSWER
from gpo.scoring.metrics import EXECUTION, matches, read_answer, score_answer, target_letter
from gpo.scoring.objective import ACCURACY, Objective, Pair, per_class
from gpo.scoring.stats import Comparison
from gpo.tasks.task import AnswerKind, Example, Task, label_set
from gpo.names import DATA_SPLITS

COLLAPSE_SHARE = 0.9  # a prompt whose most frequent answer covers this share of a split has collapsed to it
SHARES_SHOWN = 5  # answer shares kept per prompt (the rest are summed as "other")


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
    """The answers a constant can give on this task: a label task's labels, a boolean or
    multiple-choice task's target answers, a closed set of exact targets. Empty where the
    answers are not a closed set (numbers, free text, generation), or where the score is not
    a reading of one answer (a judge, ``contains``, a user's callable, ROUGE-L, Dyck, word
    sorting)."""
    if task.metric not in ("exact", *EXECUTION):
        return []
    examples = _labelled(task)
    if task.kind is AnswerKind.LABEL:
        return list(task.labels)
    if task.kind is AnswerKind.MULTIPLE_CHOICE:
        letters = {target_letter(e) for e in examples}
        return sorted(f"({letter.upper()})" for letter in letters if len(letter) == 1)  # an unmatched text is none
    if task.kind is AnswerKind.BOOLEAN:
        return sorted({e.target.strip() for e in examples})
    if task.kind is AnswerKind.EXACT:
        return list(label_set([e.target for e in examples]))
    return []


def _labelled(task: Task) -> list[Example]:
    """The task's examples with targets: train, eval and test."""
    return [e for split in DATA_SPLITS for e in task.splits.get(split) or []]


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


def answer_of(task: Task, example: Example, parsed: str, answers: Sequence[str], extraction: str = "lenient") -> str:
    """The closed answer a parsed reply gives: the first of ``answers`` the metric scores it
    right against, or ``NO_ANSWER``."""
    return next((a for a in answers if matches(task, example, parsed, extraction, target=a) == 1.0), NO_ANSWER)


def classes(task: Task, split: str, records, extraction: str = "lenient") -> list[Pair] | None:
    """Each record's (truth, answer): the closed answer its target is and the one its reply
    gives, read from what the metric compared; None where the task has no closed answer set."""
    answers = closed_answers(task)
    if not answers:
        return None
    examples = task.split(split)
    pairs = []
    for r in records:
        e = examples[r.index]
        truth = answer_of(task, e, read_answer(task, e, e.target, extraction), answers, extraction)
        pairs.append((truth, answer_of(task, e, r.parsed_answer, answers, extraction)))
    return pairs


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


def yardstick(constant: ConstantAnswer, prompt_items: Sequence, answers: Sequence[str],
              alpha: float = 0.05, seed: int = 0, objective: Objective = ACCURACY,
              constant_items: Sequence | None = None) -> dict:
    """A prompt on a split against the split's best constant answer (paired, example by example,
    on the objective: ``prompt_items`` and ``constant_items`` as ``Objective.items`` gives them,
    the constant's per-example scores by default) and its answer shares: a JSON-ready dict that
    ``verdict`` reads."""
    base = list(constant.scores) if constant_items is None else list(constant_items)
    versus = objective.compare(base, list(prompt_items), alpha=alpha, seed=seed)
    shares = answer_shares(answers)
    return {"constant": constant.answer, "constant_score": versus.mean_a, "vs_constant": versus.as_dict(),
            "answers": [[a, s] for a, s in shares], "collapsed_to": collapsed_to(shares)}


def measure(task: Task, evaluation, extraction: str = "lenient", alpha: float = 0.05, seed: int = 0,
            objective: Objective = ACCURACY) -> dict | None:
    """A prompt's evaluation (``gpo.scoring.evaluate.Evaluation``) against the best constant
    answer on the same examples (``yardstick``) on the objective, with its per-class figures
    (``classes``: recall per target class, macro-F1); None where the task has no closed answer set."""
    indices = [r.index for r in evaluation.records]
    constant = best_constant(task, evaluation.split, extraction, indices)
    if constant is None:
        return None
    pairs = classes(task, evaluation.split, evaluation.records, extraction)
    answers = [a for _, a in pairs]
    constant_items = [(t, constant.answer) for t, _ in pairs] if objective.split_level else None
    prompt_items = pairs if objective.split_level else [r.score for r in evaluation.records]
    return yardstick(constant, prompt_items, answers, alpha=alpha, seed=seed, objective=objective,
                     constant_items=constant_items) | {"classes": per_class(pairs)}


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
