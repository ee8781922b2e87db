"""The Evaluator: score prompts on a split through the scorer model.

All examples of all prompts go to the model layer at once (its concurrency limit
and cache apply). Chat scorers get the second "prompting again" round where the
task has one, unless switched off. The same prompt on the same examples is scored
once per Evaluator, down to single examples: scoring a prompt on examples it was
already scored on sends nothing again. ``requests`` and ``tokens`` count, per task,
what the scorer was asked for (a cached response counts, so the figures are what a
fresh run pays and do not depend on the cache); optimizers budget their search on
them. Across processes the response cache makes repeats free, and what an earlier process
of the run scored is not counted again (``gpo.scoring.paid``).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

from gpo.aio import cancel_all, settled
from gpo.files import atomic_write_text
from gpo.llm.base import LLM, Request
from gpo.scoring.demos import split_demos
from gpo.scoring.extract import second_round_context
from gpo.scoring.constant import classes, closed_answers
from gpo.scoring.judge import Judge
from gpo.scoring.metrics import metric_result, score_answer
from gpo.scoring.objective import ACCURACY, Objective
from gpo.scoring.paid import Paid
from gpo.scoring.program import run_program
from gpo.scoring.render import PromptFormat, prompt_text, render
from gpo.scoring.stats import Comparison
from gpo.tasks.task import Example, Task, TaskError
from gpo.names import DEFAULT_MAX_TOKENS


@dataclass
class Record:
    """One example's journey: what was asked, what came back, how it scored."""

    index: int
    prompt: str
    raw_answer: str
    parsed_answer: str
    target: str
    score: float
    second_round_prompt: str | None = None
    raw_answer_second_round: str | None = None
    judge_reply: str | None = None  # --metric judge: the judge's reply the score was read from
    trace: str | None = None  # a program's intermediate texts (gpo.tasks.program)
    feedback: str | None = None  # a metric's textual feedback, where it gives one
    # closed-answer tasks (gpo.scoring.constant.classes): the target's class and the class the reply gives
    truth: str | None = None
    answer: str | None = None


@dataclass
class Evaluation:
    task: str
    split: str
    instruction: str
    records: list[Record] = field(default_factory=list)
    objective: Objective = ACCURACY  # what ``score`` is: the mean of the records' scores, or macro-F1

    @property
    def n(self) -> int:
        return len(self.records)

    @property
    def score(self) -> float:
        return self.objective.value(self.items())

    def items(self) -> list:
        """Per example, what the objective is computed from (``Objective.items``)."""
        return self.objective.items(self.records)

    @property
    def ci95(self) -> float:
        """Half-width of a 95% confidence interval: of the mean by the normal approximation,
        of a split-level figure by the percentile bootstrap."""
        if self.n < 2:
            return float("nan")
        if self.objective.split_level:
            return self.objective.half_width(self.items())
        mean = self.score
        var = sum((r.score - mean) ** 2 for r in self.records) / (self.n - 1)
        return 1.96 * math.sqrt(var / self.n)

    def versus(self, baseline: "Evaluation", alpha: float = 0.05, seed: int = 0) -> Comparison:
        """This prompt against ``baseline``, paired on the same examples (``stats.compare``)."""
        if [r.index for r in self.records] != [r.index for r in baseline.records] or self.split != baseline.split:
            raise ValueError(f"{self.task}: paired comparison needs the same {self.split} examples for both prompts")
        return self.objective.compare(baseline.items(), self.items(), alpha=alpha, seed=seed)

    def wrong(self) -> list[Record]:
        """Records that did not score full marks (the feedback gradient's material)."""
        return [r for r in self.records if r.score < 1.0]

    def summary(self) -> dict:
        return {"task": self.task, "split": self.split, "instruction": self.instruction,
                "score": self.score, "ci95": self.ci95, "n": self.n, "objective": self.objective.name}

    def write(self, path: str | Path) -> Path:
        """Per-example records as JSON Lines (first line: the summary)."""
        lines = [json.dumps({"summary": self.summary()}, ensure_ascii=False)]
        lines += [json.dumps(asdict(r), ensure_ascii=False) for r in self.records]
        return atomic_write_text(path, "\n".join(lines) + "\n")

    @classmethod
    def read(cls, path: str | Path) -> "Evaluation":
        """An evaluation as ``write`` stored it."""
        lines = Path(path).read_text(encoding="utf-8").splitlines()
        summary = json.loads(lines[0])["summary"]
        return cls(task=summary["task"], split=summary["split"], instruction=summary["instruction"],
                   records=[Record(**json.loads(line)) for line in lines[1:]],
                   objective=Objective(summary.get("objective", "accuracy")))


def scoring_requests(task: Task, fmt, second_round) -> tuple[int, int]:
    """Requests that scoring one example sends: (the scorer's rounds, the judge's grades).
    The Evaluator spends by it and ``gpo.api.plan`` plans by it. A program is planned at one
    request per prompt it has (it may send more or fewer; what it sends is counted)."""
    if task.program is not None:
        return len(task.program.names), 0
    return (2 if second_round_applies(fmt, second_round, task) else 1), (1 if task.metric == "judge" else 0)


@dataclass
class Evaluator:
    scorer: LLM
    format: PromptFormat = field(default_factory=PromptFormat)
    second_round: bool | None = None  # None: on for zero-shot chat scorers where the task has one
    max_tokens: int = DEFAULT_MAX_TOKENS
    second_round_max_tokens: int = 100
    extraction: str = "lenient"  # or "original": the original code's parsing (gpo.scoring.original)
    judge: Judge | None = None  # grades outputs for tasks whose metric is "judge"
    objective: Objective = ACCURACY  # what an Evaluation's score is (gpo.scoring.objective)

    def __post_init__(self) -> None:
        self._done: dict[tuple, Evaluation] = {}
        self._pending: dict[tuple, asyncio.Future] = {}
        self._records: dict[tuple, Record] = {}  # (task, split, instruction, index) -> its record
        self.requests: Counter[str] = Counter()  # task id -> scorer requests sent (cache hits included)
        self.tokens: Counter[str] = Counter()  # task id -> prompt + completion tokens of those requests
        self.paid = Paid()  # what the run has scored, earlier processes included (not counted again)

    def requests_needed(self, task: Task, instruction: str, split: str = "eval", indices: Sequence[int] | None = None) -> int:
        """Scorer requests that scoring this would send (0 for examples already scored)."""
        chosen, instruction = range(len(task.split(split))) if indices is None else indices, task.whole(instruction)
        todo = sum(1 for i in chosen if (task.id, split, instruction, i) not in self._records)
        return todo * self.requests_per_example(task)

    def requests_per_example(self, task: Task) -> int:
        """Scoring requests per example: the scorer's rounds, and the judge's grade."""
        return sum(scoring_requests(task, self.format, self.second_round))

    def uses_second_round(self, task: Task) -> bool:
        return second_round_applies(self.format, self.second_round, task)

    async def evaluate(
        self, task: Task, instruction: str, split: str = "eval", indices: Sequence[int] | None = None
    ) -> Evaluation:
        instruction = task.whole(instruction)  # a program's every prompt, where the task views one
        key = (task.id, split, tuple(indices) if indices is not None else None, instruction)
        if key in self._done:
            return self._done[key]
        if key not in self._pending:  # concurrent asks for the same scoring share one
            self._pending[key] = asyncio.ensure_future(self._evaluate(task, instruction, split, indices))
        try:
            result = await asyncio.shield(self._pending[key])
        finally:
            fut = self._pending.get(key)
            if fut is not None and fut.done():
                del self._pending[key]
        self._done[key] = result
        return result

    async def evaluate_many(
        self, task: Task, instructions: Sequence[str], split: str = "eval", indices: Sequence[int] | None = None
    ) -> list[Evaluation]:
        return await settled(self.evaluate(task, i, split, indices) for i in instructions)

    async def cancel_pending(self) -> None:
        """Stop the scorings still running (left behind by a caller that was cancelled) and
        wait until they have stopped, so their requests on the wire are counted before the
        models' clients close."""
        await cancel_all(list(self._pending.values()))
        self._pending.clear()

    async def _evaluate(self, task: Task, instruction: str, split: str, indices) -> Evaluation:
        if self.objective.split_level and not closed_answers(task):
            raise TaskError(f"task {task.id}: --objective {self.objective.name} needs classes to count: a label, "
                            f"boolean or multiple-choice task scored by the exact metric (this one is "
                            f"{task.kind.value}, metric {_name(task.metric)})")
        chosen = list(range(len(task.split(split)))) if indices is None else list(indices)
        todo = [i for i in dict.fromkeys(chosen) if (task.id, split, instruction, i) not in self._records]
        if todo:
            new, again = self.paid.partition(task.id, split, instruction, todo)
            records = [*(await self._score_examples(task, instruction, split, new) if new else []),
                       *(await self._score_examples(task, instruction, split, again, count=False) if again else [])]
            self.paid.add(task.id, split, instruction, todo)
            for record, (truth, answer) in zip(records, classes(task, split, records, self.extraction) or []):
                record.truth, record.answer = truth, answer  # the one reading of each reply, kept with it
            for record in records:
                self._records[(task.id, split, instruction, record.index)] = record
        records = [self._records[(task.id, split, instruction, i)] for i in chosen]
        return Evaluation(task=task.id, split=split, instruction=instruction, records=records, objective=self.objective)

    def first_requests(self, task: Task, instruction: str, split: str, chosen: Sequence[int]) -> list[Request]:
        """The first-round scorer requests for these examples (greedy, rendered as configured)."""
        examples = task.split(split)
        demos = task.splits.get("few_shot", [])[: self.format.few_shot] if self.format.few_shot else []
        return [_greedy(render(instruction, examples[i], self.format, demos, task.template), self.max_tokens)
                for i in chosen]

    def second_request(self, task: Task, example: Example, first: Request, answer: str) -> Request:
        """The second round ("prompting again"): the first exchange, then the task's request for the bare answer."""
        messages = first.message_dicts() + [
            {"role": "assistant", "content": second_round_context(answer, self.format.include_qa)},
            {"role": "user", "content": task.second_round_for(example)},
        ]
        return Request.chat(messages, temperature=0.0, max_tokens=self.second_round_max_tokens, continues=True)

    async def _score_examples(self, task: Task, instruction: str, split: str, chosen: list[int],
                              count: bool = True) -> list[Record]:
        """Score ``chosen`` examples; ``count`` False: an earlier process paid for them (``Paid``)."""
        if task.program is not None:
            return await self._score_program(task, instruction, split, chosen, count)
        examples = task.split(split)
        firsts = self.first_requests(task, instruction, split, chosen)
        first_out = await self.scorer.generate(firsts)
        self._count(task, first_out, count)
        answers = [c.text for c in first_out]
        seconds: list[Request | None] = [None] * len(chosen)
        if self.uses_second_round(task):
            for j, i in enumerate(chosen):
                seconds[j] = self.second_request(task, examples[i], firsts[j], answers[j])
            second_out = await self.scorer.generate([r for r in seconds if r is not None])
            self._count(task, second_out, count)
            second_answers = iter(c.text for c in second_out)
        finals = [next(second_answers) if seconds[j] is not None else answers[j] for j in range(len(chosen))]
        graded = await self._judge(task, [examples[i] for i in chosen], finals, count)
        shows_demos = bool(self.format.few_shot or split_demos(instruction)[1])
        records = []
        for j, i in enumerate(chosen):
            final = finals[j]
            if graded is not None:
                (score, judge_reply), parsed, feedback = graded[j], final.strip(), None
            else:
                judge_reply = None
                parsed, score, feedback = self._score(task, split, i, examples[i], final, shows_demos)
            records.append(
                Record(
                    index=i,
                    prompt=prompt_text(firsts[j]),
                    raw_answer=answers[j],
                    parsed_answer=parsed,
                    target=_target_text(examples[i]),
                    score=score,
                    second_round_prompt=seconds[j].messages[-1][1] if seconds[j] is not None else None,
                    raw_answer_second_round=final if seconds[j] is not None else None,
                    judge_reply=judge_reply,
                    feedback=feedback,
                )
            )
        return records

    async def _score_program(self, task: Task, text: str, split: str, chosen: list[int], count: bool) -> list[Record]:
        """A user's program run on each example with the prompts ``text`` encodes, its output
        scored by the task's metric (which may add feedback)."""
        program, examples = task.program, task.split(split)
        if task.metric == "judge":
            raise TaskError(f"task {task.id}: a program is scored by its own metric (--metric python:...), not a judge")
        runs = await settled(run_program(program, task, text, split, i, examples[i], self.scorer, self.max_tokens)
                             for i in chosen)
        self.requests[task.id] += count * sum(max(1, r.calls) for r in runs)  # a program that calls no model: its runs
        self.tokens[task.id] += count * sum(r.tokens for r in runs)
        unread = [n for n in program.names if not any(n in r.read for r in runs)]
        if unread:
            raise TaskError(f"--prompts: program {program.source} never read {', '.join(map(repr, unread))} on "
                            f"{split} example{'s' if len(chosen) > 1 else ''} {', '.join(map(str, chosen[:5]))}: "
                            f"a prompt it does not read cannot be optimized (it read {', '.join(sorted(runs[0].read)) or 'none'})")
        records = []
        for i, run in zip(chosen, runs):
            parsed, score, feedback = self._score(task, split, i, examples[i], run.output)
            records.append(Record(index=i, prompt=examples[i].input, raw_answer=run.output, parsed_answer=parsed,
                                  target=_target_text(examples[i]), score=score, trace=run.trace, feedback=feedback))
        return records

    async def _judge(self, task: Task, examples: list[Example], outputs: list[str],
                     count: bool) -> list[tuple[float, str]] | None:
        if task.metric != "judge":
            return None
        if self.judge is None:
            raise TaskError(f"task {task.id}: the metric is 'judge' but no judge model is set")
        before = self.judge.requests[task.id]
        graded = await self.judge.grade(task.id, examples, outputs)
        self.requests[task.id] += count * (self.judge.requests[task.id] - before)  # grades, and any asked again
        return graded

    def _score(self, task: Task, split: str, index: int, example: Example, reply: str,
               shows_demos: bool = False) -> tuple[str, float, str | None]:
        """Parsed answer, score and the metric's feedback (a user metric may give some); a
        user metric that raises is named with the example."""
        text = self.answer_text(reply, shows_demos)
        try:
            if callable(task.metric):
                return text.strip(), *metric_result(task.metric(text, example))
            return *score_answer(task, example, text, self.extraction), None
        except TaskError:
            raise
        except Exception as err:  # noqa: BLE001 - a user's metric: one line naming it and the example
            raise TaskError(f"task {task.id}: metric {_name(task.metric)} raised {type(err).__name__}: {err} "
                            f"on {split} example {index} (input: {example.input[:60]!r})") from None

    def answer_text(self, reply: str, shows_demos: bool | None = None) -> str:
        """The part of a reply that is parsed. A base scorer shown demonstrations (the format's,
        or the prompt's own) goes on to write the next questions itself, so only the first line
        of its continuation counts (after a leading ':'), as in the original (docs/BEHAVIOUR.md, "Scoring a prompt")."""
        shows_demos = bool(self.format.few_shot) if shows_demos is None else shows_demos
        if shows_demos and not self.format.chat:
            return reply.strip().strip(":").strip().split("\n")[0]
        return reply

    def _count(self, task: Task, completions: list, count: bool) -> None:
        self.requests[task.id] += count * len(completions)
        self.tokens[task.id] += count * sum(s.prompt_tokens + s.completion_tokens for c in completions for s in c.samples)


def _greedy(request: Request, max_tokens: int) -> Request:
    return Request(messages=request.messages, prompt=request.prompt, temperature=0.0, max_tokens=max_tokens)


def second_round_applies(fmt: PromptFormat, second_round: bool | None, task: Task) -> bool:
    """Whether scoring asks a second time for the bare answer. Only chat scorers can be
    asked; by default only zero-shot ones are, as in the original (demonstrations already
    show the answer's form); ``second_round`` True or False overrides that."""
    wanted = (fmt.chat and not fmt.few_shot) if second_round is None else second_round
    return bool(wanted and fmt.chat and task.second_round)


def _name(metric) -> str:
    return getattr(metric, "name", getattr(metric, "__name__", repr(metric)))


def _target_text(example: Example) -> str:
    return " || ".join(example.references) if example.references else example.target
