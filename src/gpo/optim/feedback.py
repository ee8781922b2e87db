"""The textual "gradient": what the current prompt gets wrong on a minibatch.

Fixed relative to the original (GPO_SPEC bug 18): the wrong prediction shows the
model's full first answer *and* its final answer; "wrong" means any score below
full marks, worst first (so ROUGE tasks get feedback too); and no call is made when
there is nothing wrong.
"""

from __future__ import annotations

from gpo.optim.update import END, START
from gpo.scoring.evaluate import Evaluation
from gpo.tasks.task import Example


def wrong_examples(evaluation: Evaluation, examples: list[Example], max_examples: int) -> str | None:
    """The examples a prompt got wrong (worst first): question, the model's answer (and its
    final answer after the second round), the correct answer. None when nothing was wrong."""
    wrong = sorted(evaluation.wrong(), key=lambda r: r.score)[:max_examples]
    if not wrong:
        return None
    shown = []
    for r in wrong:
        answer = r.raw_answer.strip()
        if r.raw_answer_second_round is not None:
            answer += f"\n(final answer: {r.raw_answer_second_round.strip()})"
        shown.append(f"Question: {examples[r.index].input}\nWrong prediction: {answer}\nCorrect answer: {r.target}")
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


def integrate_gradients_prompt(running: str, new: str) -> str:
    """Real-time gradient momentum: merge the problems found so far with the new ones."""
    return "\n\n".join(
        [
            "Your job is to combine two lists of problems with prompts into one: problems found with earlier "
            "prompts, and problems found with the current prompt.",
            f"Problems with earlier prompts:\n{running}",
            f"Problems with the current prompt:\n{new}",
            f"Write the combined list of problems between {START} and {END}.",
        ]
    )
