"""Per-example scores in [0, 1]: exact, boolean, multiple choice, numeric, Dyck,
word sorting, ROUGE-L against several references, or a user callable."""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from gpo.files import read_json_file
from gpo.scoring import original
from gpo.scoring.extract import FALSE_WORDS, TRUE_WORDS, _clean, extract_answer, parse_choice, parse_short
from gpo.tasks.user_code import import_function
from gpo.tasks.task import AnswerKind, Example, Task, TaskError
from gpo.names import DATA_SPLITS

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


def target_letter(example: Example, target: str | None = None) -> str:
    """The target's option letter (``target``, default the example's own); targets given as
    option text are mapped back."""
    t = (example.target if target is None else target).strip()
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
    (``lenient``) or the original code's (``original``, gpo.scoring.original). The parsed
    answer is the one reading of the reply: the score, the constant yardstick's answers and
    the per-class figures all compare it (``matches``)."""
    if callable(task.metric):
        return raw_answer.strip(), metric_result(task.metric(raw_answer, example))[0]
    parsed = read_answer(task, example, raw_answer, extraction)
    return parsed, matches(task, example, parsed, extraction)


EXECUTION = ("execution", "execution_unordered")  # instruction induction: any reference, exactly (items in any order)


def _rouge_scored(task: Task) -> bool:
    if task.metric not in ("exact", "dyck", "word_sorting", "rouge_l", *EXECUTION):
        raise TaskError(f"task {task.id}: unknown metric {task.metric!r}")
    return task.metric == "rouge_l" or task.kind is AnswerKind.GENERATION


def read_answer(task: Task, example: Example, raw_answer: str, extraction: str = "lenient") -> str:
    """The answer a reply gives, as the task's matcher compares it (a named metric's tasks)."""
    if task.kind is AnswerKind.LABEL:  # the original code knew no label tasks: one reading for both
        return extract_answer(raw_answer, task.kind, example, task.labels)
    if task.metric in EXECUTION:  # nor instruction induction
        return parse_short(raw_answer)
    if extraction == "original" and not _rouge_scored(task):  # ROUGE-L reads the stripped reply in both
        return original.normalize(raw_answer, task.kind)
    return extract_answer(raw_answer, task.kind, example)


def matches(task: Task, example: Example, parsed: str, extraction: str = "lenient", target: str | None = None) -> float:
    """The score of a parsed answer against ``target`` (default: the example's own)."""
    target = example.target if target is None else target
    metric = task.metric
    if _rouge_scored(task):
        own = target == example.target and example.references
        return rouge_l(parsed, list(example.references) if own else [target])
    if task.kind is AnswerKind.LABEL:
        return float(parsed == target.strip())
    if metric in EXECUTION:
        own = target == example.target and example.references
        wanted = example.references if own else references_of(task, target)
        same = _same_items if metric == "execution_unordered" else (lambda a, b: _clean(a) == _clean(b))
        return float(any(same(parsed, ref) for ref in wanted))
    if extraction == "original":
        return original.accuracy(parsed, target, metric)
    if metric == "dyck":
        return dyck_match(parsed, target)
    if metric == "word_sorting":
        return word_sorting_match(parsed, target)
    if task.kind is AnswerKind.NUMERIC:
        return float(_numbers_equal(parsed, target))
    if task.kind is AnswerKind.BOOLEAN:
        want = _truth(target)
        if want is not None:
            return float(parsed == want)
        return float(_clean(parsed) == _clean(target))
    if task.kind is AnswerKind.MULTIPLE_CHOICE:
        return float(parsed == target_letter(example, target))
    return float(_clean(parsed) == _clean(target))


def references_of(task: Task, target: str) -> tuple[str, ...]:
    """Every answer accepted where ``target`` is: the references of the examples whose target
    it is (the target alone where none lists any)."""
    refs = {r for split in DATA_SPLITS for e in task.splits.get(split) or [] if e.target == target
            for r in e.references}
    return tuple(sorted(refs)) or (target,)


def _same_items(answer: str, target: str) -> bool:
    """The same items, in any order (a list separated by commas or 'and')."""
    items = lambda s: sorted(_clean(i) for i in re.split(r",|\band\b", s) if _clean(i))  # noqa: E731
    return bool(items(target)) and items(answer) == items(target)


# ---------------------------------------------------------------- metrics named on the command line

@dataclass(frozen=True)
class Metric:
    """A named per-example metric ``(output, example) -> score in [0, 1]``; the reply is
    scored as written (stripped), without answer extraction."""

    name: str
    fn: MetricFn
    needs_target: bool = False

    def __call__(self, output: str, example: Example) -> float | tuple[float, str]:
        value = self.fn(output, example)
        return value if isinstance(value, tuple) else float(value)


def metric_result(value) -> tuple[float, str | None]:
    """A metric's ``score`` or ``(score, feedback)`` (feedback: text for the optimizer),
    the score checked to lie in [0, 1]."""
    score, feedback = value if isinstance(value, tuple) and len(value) == 2 else (value, None)
    score = float(score)
    if not 0.0 <= score <= 1.0:
        raise ValueError(f"a score must lie in [0, 1], got {score}")
    return score, (str(feedback) if feedback else None)


METRIC_FORMS = "exact, contains, rouge_l, regex:PATTERN, json, json:SCHEMA_FILE, python:MODULE_OR_FILE:FUNCTION, judge"


def needs_target(metric: object) -> bool:
    if isinstance(metric, Metric):
        return metric.needs_target
    return metric in ("exact", "rouge_l", "dyck", "word_sorting", *EXECUTION)


@functools.lru_cache(maxsize=None)  # a spec is checked, then used: a user's module runs once
def build_metric(spec: str) -> object:
    """A task's metric from its command-line form (see ``METRIC_FORMS``). ``exact``,
    ``rouge_l`` and ``judge`` stay names (the Evaluator knows them); the rest become
    ``Metric`` callables. Bad forms fail here, in one line."""
    spec = spec.strip()
    if spec in ("exact", "rouge_l", "judge"):
        return spec
    if spec == "contains":
        return Metric("contains", lambda out, ex: float(_clean(ex.target) in _clean(out)), needs_target=True)
    if spec.startswith("regex:"):
        pattern = spec[len("regex:"):]
        try:
            rx = re.compile(pattern, re.S)
        except re.error as err:
            raise TaskError(f"--metric {spec}: not a valid regular expression ({err})") from None
        return Metric(spec, lambda out, ex: float(rx.search(out) is not None))
    if spec == "json" or spec.startswith("json:"):
        return Metric(spec, _json_metric(spec[len("json:"):] if spec.startswith("json:") else None))
    if spec.startswith("python:"):
        return Metric(spec, _python_metric(spec))
    from gpo.errors import suggest

    raise TaskError(f"unknown metric {spec!r}{suggest(spec.split(':')[0], ['exact', 'contains', 'rouge_l', 'regex', 'json', 'python', 'judge'])}; "
                    f"metrics are {METRIC_FORMS}")


_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.S)


def _json_metric(schema_file: str | None) -> MetricFn:
    validator = None
    if schema_file:
        schema = read_json_file(schema_file, f"--metric json:{schema_file}", "the schema")
        import jsonschema

        try:
            cls = jsonschema.validators.validator_for(schema)
            cls.check_schema(schema)
        except jsonschema.SchemaError as err:
            raise TaskError(f"--metric json:{schema_file}: not a valid JSON Schema ({err.message})") from None
        validator = cls(schema)

    def score(output: str, example: Example) -> float:
        text = output.strip()
        fenced = _FENCE.match(text)
        try:
            value = json.loads(fenced.group(1) if fenced else text)
        except json.JSONDecodeError:
            return 0.0
        return float(validator is None or validator.is_valid(value))

    return score


def _python_metric(spec: str) -> MetricFn:
    """``python:module:function`` or ``python:path/to/file.py:function``."""
    return import_function(spec[len("python:"):], f"--metric {spec}", "metric")
