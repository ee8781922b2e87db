"""What a task is: examples, an answer kind, and the five splits of the GPO layout."""

from __future__ import annotations

import dataclasses
import random
import re
import zlib
from dataclasses import dataclass, field
from enum import Enum

from gpo.errors import TaskError  # noqa: F401 - re-exported: the tasks layer's error
from gpo.tasks.program import encode
from gpo.names import DATA_SPLITS, HOLDOUT, SPLITS  # noqa: F401 - SPLITS re-exported

_OPTION_LINE = re.compile(r"^\s*\(([A-Za-z])\)\s*(.+?)\s*$", re.M)


class AnswerKind(str, Enum):
    BOOLEAN = "boolean"
    MULTIPLE_CHOICE = "multiple_choice"
    NUMERIC = "numeric"
    EXACT = "exact"  # free text compared exactly (with task-specific matchers: dyck, word_sorting)
    GENERATION = "generation"  # scored by ROUGE-L against references
    LABEL = "label"  # one of a closed set of labels (a user's label column), read inside a sentence too


MAX_LABELS = 12  # a target column with more distinct values than this is not a closed set of labels


def label_set(targets: list[str]) -> tuple[str, ...]:
    """The labels of a target column that is a small closed set (2 to ``MAX_LABELS`` distinct
    values, each given on average at least twice), sorted; empty where it is not one."""
    labels = sorted({t.strip() for t in targets if t.strip()})
    closed = 2 <= len(labels) <= MAX_LABELS and len(labels) * 2 <= len(targets)
    return tuple(labels) if closed else ()


@dataclass(frozen=True)
class Example:
    input: str
    target: str  # canonical answer as text
    references: tuple[str, ...] = ()  # several acceptable outputs (generation tasks)
    solution: str | None = None  # worked answer, when the data has one (GSM8K)
    fields: tuple[tuple[str, str], ...] = ()  # the row's columns, for a prompt template (user data)

    def options(self) -> dict[str, str]:
        """Multiple-choice options found in the input as ``(A) text`` lines: letter -> text."""
        return {m.group(1).upper(): m.group(2) for m in _OPTION_LINE.finditer(self.input)}

    @property
    def demo_answer(self) -> str:
        """The answer shown in a demonstration (first reference for generation tasks)."""
        return self.references[0] if self.references else self.target


@dataclass
class Task:
    """A named task with its splits and how its answers are judged.

    ``metric`` names the matcher (``exact``, ``dyck``, ``word_sorting``, ``rouge_l``)
    or is a user callable ``(prediction: str, example: Example) -> float``.
    ``second_round`` is the "prompting again" instruction that asks a chat scorer
    for the bare final answer; None where the task has none (generation tasks).
    """

    name: str
    dataset: str
    kind: AnswerKind
    splits: dict[str, list[Example]] = field(default_factory=dict)
    metric: object = "exact"
    second_round: str | None = None
    initial_instruction: str | None = None  # task-specific start (MMLU subject template)
    template: object = None  # gpo.tasks.template.Template for users' templated tasks; None: the paper's rendering
    program: object = None  # gpo.tasks.program.Program: a user's pipeline scores the prompts; None: the scorer alone
    labels: tuple[str, ...] = ()  # AnswerKind.LABEL: the labels a reply may name, as the data writes them
    # the reference a person wrote (instruction induction): scored beside every result, never read by a search
    human_instruction: str | None = None
    # a program's search step edits one prompt (name) of a program (its encoded prompts): texts scored
    # for this view of the task are that prompt's, the others as they are in the program
    focus: tuple[str, str] | None = None
    # examples of a split that a run's caps (--max-examples, --budget) left unused, by split
    left_out: dict[str, int] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.dataset}/{self.name}"

    def whole(self, text: str) -> str:
        """What is scored for ``text``: a program's every prompt where the task views one of them."""
        if self.focus is None:
            return text
        name, program = self.focus
        return encode({**self.program.decode(program), name: text})

    def split(self, name: str) -> list[Example]:
        if name not in SPLITS and name != HOLDOUT:
            raise TaskError(f"unknown split {name!r}; splits are {', '.join(SPLITS)}")
        examples = self.splits.get(name) or []
        if not examples and name in DATA_SPLITS:
            raise TaskError(f"task {self.id}: split {name!r} is empty; nothing to score")
        return examples

    def sizes(self) -> dict[str, int]:
        return {s: len(self.splits.get(s) or []) for s in SPLITS}

    def second_round_for(self, example: Example) -> str | None:
        """The second-round instruction; multiple choice names the example's own letter range."""
        if self.second_round is None:
            return None
        if "{last}" in self.second_round:
            letters = sorted(example.options()) or ["D"]
            return self.second_round.format(last=f"({letters[-1]})")
        return self.second_round


def hold_out(task: Task, fraction: float, seed: int) -> Task:
    """The task as a search with ``final_holdout`` sees it: ``fraction`` of its eval examples (a
    seeded sample, at least one) moved to the ``holdout`` split, the rest left in eval in their
    order. Unchanged where ``fraction`` is 0; an eval too small to keep one example on each side
    is refused."""
    if not fraction:
        return task
    examples = task.split("eval")
    n = max(1, round(fraction * len(examples)))
    if n >= len(examples):
        raise TaskError(f"task {task.id}: final_holdout {fraction} of its {len(examples)} eval examples leaves "
                        f"none to search on; use a smaller share or more eval examples")
    held = set(random.Random(zlib.crc32(f"{seed}|{task.id}|holdout".encode())).sample(range(len(examples)), n))
    splits = {**task.splits, "eval": [e for i, e in enumerate(examples) if i not in held],
              HOLDOUT: [e for i, e in enumerate(examples) if i in held]}
    return dataclasses.replace(task, splits=splits)
