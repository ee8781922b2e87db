"""A headroom check: before any search, whether the prompt moves this model on this task at all.

A few contrasting prompts are scored on a sample of eval: the initial prompt, the empty prompt,
an answer-format instruction for the task's kind of answer, and the initial prompt with two
random sets of demonstrations from train. One omnibus test (Cochran's Q for 0/1 scores,
Friedman's otherwise; p-values from shuffling the prompts within each example) says whether
they differ at all; the best probe is set beside the initial prompt (paired, with its interval)
and beside the best constant answer. Scorings go through the Evaluator, so the response cache
keeps them: a search that scores the same prompt on the same examples pays nothing again.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from gpo.scoring.constant import beats_constant, measure, verdict
from gpo.scoring.demos import with_demos
from gpo.scoring.evaluate import Evaluation, Evaluator
from gpo.scoring.racing import example_order
from gpo.scoring.stats import Comparison, Omnibus, format_p, related_samples
from gpo.tasks.task import AnswerKind, Task

SAMPLE = 32  # eval examples a probe scores at most
DEMOS = 3  # demonstrations in each of the two random sets

FORMATS = {  # an answer-format instruction for each kind of answer
    AnswerKind.BOOLEAN: "Answer with Yes or No only.",
    AnswerKind.MULTIPLE_CHOICE: "Answer with the letter of the correct option only, like (A).",
    AnswerKind.NUMERIC: "Answer with the final number only.",
    AnswerKind.EXACT: "Answer with the answer only, no explanation.",
    AnswerKind.GENERATION: "Answer in one short sentence.",
}


def format_instruction(task: Task) -> str:
    if task.kind is AnswerKind.LABEL and task.labels:
        return f"Answer with one of: {', '.join(task.labels)}."
    return FORMATS.get(task.kind, FORMATS[AnswerKind.EXACT])


def probe_prompts(task: Task, initial: str, seed: int = 0) -> dict[str, str]:
    """The contrasting prompts, by name (the same ones for the same task, seed and initial prompt)."""
    prompts = {"initial": initial, "empty": "", "answer format": format_instruction(task)}
    train = task.split("train")
    rng = random.Random(seed)
    for name in ("demonstrations A", "demonstrations B"):
        if len(train) >= DEMOS:
            prompts[name] = with_demos(initial, rng.sample(train, DEMOS))
    distinct: dict[str, str] = {}
    for name, prompt in prompts.items():  # an empty initial prompt is the empty probe already
        if prompt not in distinct.values():
            distinct[name] = prompt
    return distinct


@dataclass
class Headroom:
    """What the probe found on ``n`` eval examples."""

    task: str
    n: int
    scores: dict[str, float]  # each probe's mean score
    prompts: dict[str, str]
    omnibus: Omnibus
    best: str  # the best probe's name
    versus_initial: Comparison  # the best probe against the initial prompt
    constant: dict | None = None  # the best probe against the best constant answer (closed answer sets)
    alpha: float = 0.05
    requests: int = 0  # scorer requests the probe made (cache hits included, as budgets count them)
    cache_hits: int = 0  # of which the response cache answered

    @property
    def moves(self) -> bool:
        return self.omnibus.p < self.alpha

    @property
    def above_constant(self) -> bool:
        """Whether the best probe beats always giving the best constant answer (True where the
        task has no closed answer set, so there is none to beat)."""
        return beats_constant(self.constant)

    @property
    def spread(self) -> float:
        return max(self.scores.values()) - min(self.scores.values())

    def verdict(self) -> str:
        if not self.moves:
            return (f"no measurable headroom ({format_p(self.omnibus.p)}; {len(self.scores)} prompts on {self.n} eval "
                    f"examples): a search is unlikely to find a significant gain; try a stronger scorer, more eval "
                    f"examples, or demonstrations")
        moved = f"by up to {100 * self.spread:.1f} points ({format_p(self.omnibus.p)})"
        best = f"best probe: {self.best} ({100 * self.scores[self.best]:.1f})"
        if self.best != "initial":
            best += f", against the initial prompt: {self.versus_initial.describe()}"
        if not self.above_constant:
            return (f"prompts move this model's answers {moved}, but no probe is better than the best constant "
                    f"answer: {best}; it is {verdict(self.constant, 'eval')}. A search here is likely to trade "
                    f"one answer format for another; try a stronger scorer, or demonstrations")
        line = f"headroom: prompts move this model on this task {moved}; {best}"
        return line + (f"; it is {verdict(self.constant, 'eval')}" if self.constant else "")

    def as_dict(self) -> dict:
        return {"task": self.task, "n": self.n, "scores": self.scores, "prompts": self.prompts,
                "omnibus": vars(self.omnibus), "best": self.best, "versus_initial": self.versus_initial.as_dict(),
                "constant": self.constant, "moves": self.moves, "verdict": self.verdict(), "requests": self.requests,
                "cache_hits": self.cache_hits}


async def probe(evaluator: Evaluator, task: Task, initial: str, *, sample: int = SAMPLE, seed: int = 0,
                alpha: float = 0.05, extraction: str = "lenient") -> Headroom:
    """Score the probe prompts on up to ``sample`` eval examples (a seeded draw) and test them."""
    prompts = probe_prompts(task, initial, seed)
    n_eval = len(task.split("eval"))
    indices = sorted(example_order(n_eval, seed)[: min(sample, n_eval)])
    before, hits = evaluator.requests[task.id], evaluator.scorer.usage.cache_hits
    evaluations: list[Evaluation] = await evaluator.evaluate_many(task, list(prompts.values()), "eval", indices)
    scores = {name: ev.score for name, ev in zip(prompts, evaluations)}
    omnibus = related_samples([[r.score for r in ev.records] for ev in evaluations], seed=seed)
    by_name = dict(zip(prompts, evaluations))
    best = max(prompts, key=lambda name: (scores[name], name == "initial"))  # a tie keeps the initial prompt
    versus = by_name[best].versus(by_name["initial"], alpha=alpha, seed=seed)
    constant = measure(task, by_name[best], extraction, alpha, seed, evaluator.objective)
    return Headroom(task.id, len(indices), scores, prompts, omnibus, best, versus, constant, alpha,
                    evaluator.requests[task.id] - before, evaluator.scorer.usage.cache_hits - hits)
