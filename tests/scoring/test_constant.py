"""The constant yardstick: the best constant answer, answer shares, and a collapse to one
answer told apart from a better prompt, through the real search loop with scripted fakes
(named as such)."""

import asyncio
import re

import pytest

from fakes import ScriptedLLM, config, last_user
from gpo.methods.gpo.method import GPO
from gpo.scoring import Evaluator, PromptFormat
from gpo.scoring.evaluate import Record
from gpo.scoring.constant import (NO_ANSWER, answer_shares, beats_constant, best_constant, classes, closed_answers, collapsed_to,
                                  verdict, yardstick)
from gpo.scoring.metrics import build_metric
from gpo.tasks import AnswerKind, Example, Task


def yes_no_task(n=48):
    """A boolean task whose majority answer is No (3 of every 4); each input states its answer."""
    ex = lambda k: [Example(f"item {i}, truth={'Yes' if i % 4 == 0 else 'No'}", "Yes" if i % 4 == 0 else "No")
                    for i in range(k)]
    return Task("yes_no", "test", AnswerKind.BOOLEAN, metric="exact",
                splits={"train": ex(8), "eval": ex(n), "test": ex(n), "format": ex(3)})


def test_the_best_constant_is_the_majority_answer_and_costs_no_call():
    task = yes_no_task()
    assert closed_answers(task) == ["No", "Yes"]
    const = best_constant(task, "test")
    assert const.answer == "No" and const.score == pytest.approx(0.75)
    assert const.scores[:4] == (0.0, 1.0, 1.0, 1.0)  # per example, in split order: paired with a prompt's
    assert best_constant(task, "test", indices=[0, 4, 8]).answer == "Yes"  # best on the examples given


def test_closed_answer_sets_for_multiple_choice_and_labels_and_none_for_open_answers():
    mc = [Example(f"Q{i}\n(A) x\n(B) y\n(C) z", "(B)" if i % 3 else "(C)") for i in range(12)]
    task = Task("mc", "test", AnswerKind.MULTIPLE_CHOICE, splits={"train": mc, "eval": mc, "test": mc})
    assert closed_answers(task) == ["(B)", "(C)"]
    assert best_constant(task, "eval").answer == "(B)" and best_constant(task, "eval").score == pytest.approx(8 / 12)
    labels = [Example(f"ticket {i}", ["billing", "technical", "account"][i % 3]) for i in range(12)]
    tickets = Task("tickets", "user", AnswerKind.LABEL, metric="exact", labels=("account", "billing", "technical"),
                   splits={"train": labels, "eval": labels, "test": labels})
    assert closed_answers(tickets) == ["account", "billing", "technical"]
    assert best_constant(tickets, "test").score == pytest.approx(1 / 3)
    # contains scores a reply naming several labels right: it reads no one answer, so no constant to set beside it
    contains = Task("tickets", "user", AnswerKind.EXACT, metric=build_metric("contains"),
                    splits={"train": labels, "eval": labels, "test": labels})
    numbers = Task("n", "test", AnswerKind.NUMERIC, splits={"test": [Example("1+1", "2"), Example("1+2", "3")]})
    free = Task("f", "user", AnswerKind.EXACT, splits={"test": [Example(f"w{i}", f"t{i}") for i in range(6)]})
    judged = Task("j", "user", AnswerKind.EXACT, metric="judge", splits={"test": labels})
    regex = Task("r", "user", AnswerKind.EXACT, metric=build_metric("regex:bill"), splits={"test": labels})
    for open_task in (numbers, free, judged, regex, contains):
        assert closed_answers(open_task) == [] and best_constant(open_task, "test") is None, open_task.name


def test_answer_shares_show_a_collapse():
    shares = answer_shares(["no"] * 19 + ["yes"])
    assert shares == [("no", 0.95), ("yes", 0.05)] and collapsed_to(shares) == "no"
    assert collapsed_to(answer_shares(["no"] * 17 + ["yes"] * 3)) is None
    many = answer_shares([str(i) for i in range(8)])
    assert len(many) == 6 and many[-1] == ("other", pytest.approx(3 / 8))


def test_answers_are_shown_in_the_tasks_own_words():
    task = yes_no_task()
    records = [Record(i, "", "", parsed, "", 0.0) for i, parsed in enumerate(["false", "true", ""])]
    assert [a for _, a in classes(task, "test", records)] == ["No", "Yes", NO_ANSWER]  # the boolean parser's forms
    assert [t for t, _ in classes(task, "test", records)] == ["Yes", "No", "No"]  # each target's own class
    assert collapsed_to(answer_shares([NO_ANSWER] * 10)) is None  # answering nothing is no collapse


def test_a_prompt_equal_to_the_constant_is_not_better_and_one_that_beats_it_is():
    task = yes_no_task()
    const = best_constant(task, "test")
    always_no = yardstick(const, const.scores, ["no"] * 48)
    assert not beats_constant(always_no) and always_no["collapsed_to"] == "no"
    assert verdict(always_no, "test").startswith("collapsed to one answer: 'no' on 100% of test examples")
    right = [1.0] * 48
    better = yardstick(const, right, [e.target.lower() for e in task.split("test")])
    assert beats_constant(better) and better["vs_constant"]["p"] < 0.001
    assert verdict(better, "test").startswith("better than always answering 'No' (75.0) on test: +25.0")
    assert beats_constant(None) and verdict(None, "test") is None  # no closed answer set: nothing to beat


def scorer_by_instruction():
    """Scripted scorer: 'Say no.' answers No, 'Read the truth.' answers each input's truth,
    anything else answers Yes."""

    def script(request, i):
        text = last_user(request)
        if "Say no." in text:
            return "No"
        if "Read the truth." in text:
            return re.search(r"truth=(\w+)", text).group(1)
        return "Yes"

    return ScriptedLLM(model="scorer", script=script)


def search(candidate: str, adopt: str):
    opt = ScriptedLLM(model="opt", script=lambda r, i: f"<START>{candidate}<END>")
    cfg = config(adopt=adopt, initial_instruction="Think.", num_generated_instructions_in_each_step=1)
    gpo = GPO(cfg, opt, Evaluator(scorer_by_instruction(), PromptFormat(), second_round=False))
    return asyncio.run(gpo.optimize(yes_no_task()))


def test_a_collapse_to_the_majority_answer_is_marked_and_not_adopted_under_significant_constant():
    # 'Say no.' beats the initial prompt (always Yes, 25%) significantly: 75% on eval, by answering No
    adopted = search("Say no.", "significant")
    assert adopted.final_prompt == "Say no." and adopted.eval_comparison["significant"]
    final = adopted.constant["test"]["final"]
    assert final["constant"] == "No" and final["collapsed_to"] == "No" and not beats_constant(final)
    assert final["answers"] == [["No", 1.0]] and adopted.constant["test"]["initial"]["collapsed_to"] == "Yes"
    kept = search("Say no.", "significant+constant")
    assert kept.final_prompt == "Think." and kept.not_adopted["prompt"] == "Say no."
    assert kept.not_adopted["constant"]["collapsed_to"] == "No"
    from gpo.engine.outcome import KEPT_BELOW_CONSTANT, outcome

    assert "kept the initial prompt 'Think.': the best candidate, 'Say no.', is collapsed to one answer" in \
        outcome(kept).summary and outcome(kept).kind == KEPT_BELOW_CONSTANT
    # the classes are imbalanced and 'Yes' is never answered: the closing lines say so per class
    assert list(outcome(adopted).yardstick) == [f"the final prompt is {verdict(final, 'test')}",
                                         "per class on test: macro-F1 42.9; recall No 100% (36/36), "
                                         "Yes 0% (0/12, never answered)"]


def test_a_prompt_better_than_the_constant_is_adopted_under_significant_constant():
    won = search("Read the truth.", "significant+constant")
    assert won.final_prompt == "Read the truth." and won.not_adopted is None
    final = won.constant["test"]["final"]
    assert beats_constant(final) and final["vs_constant"]["diff"] == pytest.approx(0.25)
    assert won.constant["eval"]["final"]["constant_score"] == pytest.approx(0.75)
