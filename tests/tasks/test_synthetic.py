"""Synthetic tasks: seeded, disjoint splits, answers that are actually right."""

import re

import pytest

from gpo.scoring.metrics import score_answer
from gpo.tasks import SYNTHETIC_TASKS, TaskError, synthetic_task


@pytest.mark.parametrize("name", list(SYNTHETIC_TASKS))
def test_seeded_disjoint_and_gold_scores_correct(name):
    a, b, c = synthetic_task(name, seed=1), synthetic_task(name, seed=1), synthetic_task(name, seed=2)
    assert a.splits == b.splits and a.splits != c.splits
    inputs = [e.input for s in a.splits.values() for e in s]
    assert len(inputs) == len(set(inputs))
    for e in a.split("eval"):
        assert score_answer(a, e, e.target)[1] == 1.0


def _navigate(text):
    x = y = 0
    for n, d in re.findall(r"Take (\d+) steps? (\w+)", text):
        dx, dy = {"forward": (0, 1), "backward": (0, -1), "left": (-1, 0), "right": (1, 0)}[d]
        x, y = x + dx * int(n), y + dy * int(n)
    return "Yes" if x == y == 0 else "No"


def test_answers_are_correct_by_independent_computation():
    for e in synthetic_task("navigate", sizes={"train": 40}).split("train"):
        assert _navigate(e.input) == e.target
    targets = [e.target for e in synthetic_task("navigate", sizes={"train": 40}).split("train")]
    assert 0.25 < targets.count("Yes") / len(targets) < 0.75
    for e in synthetic_task("dyck_languages").split("train"):
        seq = e.input.split("Input: ")[1].split() + e.target.split()
        stack = []
        for tok in seq:
            if tok in "([{<":
                stack.append(tok)
            else:
                assert stack and "([{<"[")]}>".index(tok)] == stack.pop()
        assert not stack
    for e in synthetic_task("word_sorting").split("train"):
        assert e.target.split() == sorted(e.input.split("List: ")[1].split())
    for e in synthetic_task("multistep_arithmetic_two").split("train"):
        assert int(e.target) == eval(e.input.rstrip(" ="))


def test_unknown_synthetic_task_suggests():
    with pytest.raises(TaskError, match="did you mean navigate"):
        synthetic_task("navgate")
