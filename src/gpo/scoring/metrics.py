"""Per-example scores in [0, 1]: exact, boolean, multiple choice, numeric, Dyck,
word sorting, ROUGE-L against several references, or a user callable."""

from __future__ import annotations

import functools
import re
from typing import Callable

from gpo.scoring import original
from gpo.scoring.extract import FALSE_WORDS, TRUE_WORDS, _clean, extract_answer, parse_choice
from gpo.tasks.task import AnswerKind, Example, Task, TaskError

MetricFn = Callable[[str, Example], float]
_CLOSERS = re.compile(r"[)\]}>](?:[\s)\]}>])*")


def _truth(word: str) -> str | None:
    w = word.strip().lower()
    return "true" if w in TRUE_WORDS else "false" if w in FALSE_WORDS else None


def _numbers_equal(a: str, b: str) -> bool:
    try:
        return abs(float(a) - float(b)) < 1e-6
    except ValueError:
        return False


def target_letter(example: Example) -> str:
    """The target's option letter; targets given as option text are mapped back."""
    t = example.target.strip()
    m = re.fullmatch(r"\(?([A-Za-z])\)?", t)
    if m:
        return m.group(1).lower()
    return parse_choice(t, example)


def dyck_match(answer: str, target: str) -> float:
    runs = _CLOSERS.findall(answer)
    if not runs:
        return 0.0
    return float(" ".join(runs[-1].split()) == " ".join(target.split()))


_BULLET = re.compile(r"^\s*(?:\d+[.)]|[-*\u2022])\s+", re.M)


def word_sorting_match(answer: str, target: str) -> float:
    want = target.lower().split()
    answer = _BULLET.sub("", answer)  # "1. apple" / "- apple" list items
    candidates = [answer, answer.rsplit(":", 1)[-1]] + answer.splitlines()
    candidates.append(" ".join(line.strip() for line in answer.splitlines() if " " not in line.strip()))
    for text in candidates:
        if re.sub(r"[,.]", " ", text).lower().split() == want:
            return 1.0
    return 0.0


@functools.lru_cache(maxsize=1)
def _rouge():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


def rouge_l(answer: str, references: list[str]) -> float:
    """Mean ROUGE-L F1 over the references; an empty answer scores 0."""
    answer = answer.strip()
    refs = [r for r in references if r.strip()]
    if not answer or not refs:
        return 0.0
    scorer = _rouge()
    return sum(scorer.score(r, answer)["rougeL"].fmeasure for r in refs) / len(refs)


def score_answer(task: Task, example: Example, raw_answer: str, extraction: str = "lenient") -> tuple[str, float]:
    """(parsed answer, score) for one model reply; ``extraction`` picks gpo's parsing
    (``lenient``) or the original code's (``original``, gpo.scoring.original)."""
    if callable(task.metric):
        return raw_answer.strip(), float(task.metric(raw_answer, example))
    metric = task.metric
    rouge = metric == "rouge_l" or task.kind is AnswerKind.GENERATION
    if not rouge and metric not in ("exact", "dyck", "word_sorting"):
        raise TaskError(f"task {task.id}: unknown metric {metric!r}")
    if extraction == "original" and not rouge:  # ROUGE-L reads the stripped reply in both
        parsed = original.normalize(raw_answer, task.kind)
        return parsed, original.accuracy(parsed, example.target, metric)
    parsed = extract_answer(raw_answer, task.kind, example)
    if rouge:
        return parsed, rouge_l(parsed, list(example.references) or [example.target])
    if metric == "dyck":
        return parsed, dyck_match(parsed, example.target)
    if metric == "word_sorting":
        return parsed, word_sorting_match(parsed, example.target)
    if task.kind is AnswerKind.NUMERIC:
        return parsed, float(_numbers_equal(parsed, example.target))
    if task.kind is AnswerKind.BOOLEAN:
        want = _truth(example.target)
        if want is not None:
            return parsed, float(parsed == want)
        return parsed, float(_clean(parsed) == _clean(example.target))
    if task.kind is AnswerKind.MULTIPLE_CHOICE:
        return parsed, float(parsed == target_letter(example))
    return parsed, float(_clean(parsed) == _clean(example.target))
