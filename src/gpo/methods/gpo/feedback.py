"""The textual "gradient": what the current prompt gets wrong on a minibatch.

Fixed relative to the original (docs/DEVIATIONS.md): the wrong prediction shows the
model's full first answer *and* its final answer; "wrong" means any score below
full marks, worst first (so ROUGE tasks get feedback too); and no call is made when
there is nothing wrong.

``FeedbackGradient`` is the piece GPO builds once from the config
(``gradient_name='feedback'``); ``gradient(cfg)`` gives None when the config asks
for no gradient.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol

from gpo.prompts.tags import END, START
from gpo.scoring.evaluate import Evaluation
from gpo.tasks.task import Example


def wrong_examples(evaluation: Evaluation, examples: list[Example], max_examples: int) -> str | None:
    """The examples a prompt got wrong (worst first): question, the model's answer (and its
    final answer after the second round; a program's trace), the correct answer and the
    metric's feedback where it gives one. None when nothing was wrong."""
    wrong = sorted(evaluation.wrong(), key=lambda r: r.score)[:max_examples]
    if not wrong:
        return None
    shown = []
    for r in wrong:
        answer = r.raw_answer.strip()
        if r.raw_answer_second_round is not None:
            answer += f"\n(final answer: {r.raw_answer_second_round.strip()})"
        trace = f"\nSteps of the program:\n{r.trace}" if r.trace else ""
        feedback = f"\nFeedback: {r.feedback}" if r.feedback else ""
        shown.append(f"Question: {examples[r.index].input}{trace}\nWrong prediction: {answer}\n"
                     f"Correct answer: {r.target}{feedback}")
    return "\n\n".join(shown)


def feedback_prompt(current: str, evaluation: Evaluation, examples: list[Example], max_examples: int) -> str | None:
    """The gradient meta-prompt, or None when every example was answered correctly."""
    shown = wrong_examples(evaluation, examples, max_examples)
    if shown is None:
        return None
    return "\n\n".join(
        [
            "Your job is to find the weaknesses of a prompt by studying examples it gets wrong.",
            f"The current prompt is:\n{current}",
            "With this prompt, the model answers the examples below incorrectly. Compare each wrong prediction "
            "with the correct answer, and work out how the prompt led the model to its mistakes.",
            "Each example gives the question, the wrong prediction and the correct answer.",
            shown,
            f"Explain briefly why the prompt could have caused these errors. Put the explanation between {START} and {END}.",
        ]
    )


ALL_CORRECT = "The current prompt answered every example of this batch correctly."


class Replying(Protocol):
    async def reply(self, prompt: str) -> str: ...


@dataclass(frozen=True)
class FeedbackGradient:
    """The feedback gradient of the current prompt on a scored minibatch: one greedy
    optimizer reply, or ``ALL_CORRECT`` without a call when nothing was wrong."""

    max_examples: int = 5
    requests: ClassVar[int] = 1  # optimizer requests per step (at most)

    async def __call__(self, current: str, evaluation: Evaluation, examples: list[Example], tools: Replying) -> str:
        prompt = feedback_prompt(current, evaluation, examples, self.max_examples)
        return ALL_CORRECT if prompt is None else await tools.reply(prompt)


def gradient(cfg) -> FeedbackGradient | None:
    """The gradient a GPOConfig names (``gradient_name``), or None."""
    return FeedbackGradient(cfg.gradient_max_examples) if cfg.gradient_name == "feedback" else None
