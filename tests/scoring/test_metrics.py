"""Extraction and metrics on hand-written tricky answers, for every answer kind."""

import pytest

from gpo.scoring.metrics import rouge_l, score_answer
from gpo.tasks import AnswerKind, Example, Task

MC = Task("mc", "t", AnswerKind.MULTIPLE_CHOICE)
NUM = Task("num", "t", AnswerKind.NUMERIC)
BOOL = Task("bool", "t", AnswerKind.BOOLEAN)
EXACT = Task("exact", "t", AnswerKind.EXACT)
DYCK = Task("dyck", "t", AnswerKind.EXACT, metric="dyck")
SORT = Task("sort", "t", AnswerKind.EXACT, metric="word_sorting")
GEN = Task("gen", "t", AnswerKind.GENERATION, metric="rouge_l")
OPTS = "Who is it?\n(A) Steve\n(B) Fred\n(C) Ana María"

CASES = [
    # multiple choice
    (MC, OPTS, "(B)", "The answer is (B).", 1),
    (MC, OPTS, "(B)", "the ANSWER IS b", 1),
    (MC, OPTS, "(B)", "B", 1),
    (MC, OPTS, "(B)", "B) Fred", 1),
    (MC, OPTS, "(B)", "Fred", 1),  # option text
    (MC, OPTS, "(C)", "I think it is Ana María.", 1),  # option text, unicode
    (MC, OPTS, "(B)", "(A) is wrong. (B) is the correct answer", 1),
    (MC, OPTS, "(B)", "(A)", 0),
    (MC, OPTS, "(B)", "", 0),
    (MC, OPTS, "(B)", "Steve or Fred", 0),  # two options named: no guess
    # numeric
    (NUM, "q", "-35", "The answer is -35.", 1),
    (NUM, "q", "-35", "35", 0),  # the original counted this correct
    (NUM, "q", "4", "4.5", 0),  # the original rounded this to 4
    (NUM, "q", "18", "18.0", 1),
    (NUM, "q", "1000", "So the total is $1,000.", 1),
    (NUM, "q", "15", "fifteen", 1),
    (NUM, "q", "7", "3 + 4 = 7", 1),
    (NUM, "q", "12", "The answer is 12 apples, not 13.", 1),
    (NUM, "q", "2", "There are 5 cats and 3 leave, leaving 2", 1),
    (NUM, "q", "-3", "2-3 hours", 0),  # a range, not minus three
    (NUM, "q", "3", "", 0),
    # boolean
    (BOOL, "q", "Yes", "yes.", 1),
    (BOOL, "q", "Yes", "True", 1),
    (BOOL, "q", "valid", "The argument is VALID", 1),
    (BOOL, "q", "invalid", "The argument is valid", 0),
    (BOOL, "q", "False", "answer: false", 1),
    (BOOL, "q", "No", "Yes", 0),
    (BOOL, "q", "No", "", 0),
    # exact text
    (EXACT, "q", "Paris", "paris.", 1),
    (EXACT, "q", "Paris", "The answer is Paris", 1),
    (EXACT, "q", "Paris", "Lyon", 0),
    # dyck
    (DYCK, "q", "] ] >", "The sequence closes with ] ] >", 1),
    (DYCK, "q", "] ] >", "]]>", 0),
    (DYCK, "q", "}", "no brackets here", 0),
    # word sorting
    (SORT, "q", "apple banana cherry", "apple banana cherry", 1),
    (SORT, "q", "apple banana cherry", "Sorted:\napple\nbanana\ncherry", 1),
    (SORT, "q", "apple banana cherry", "apple, banana, cherry", 1),
    (SORT, "q", "apple banana cherry", "List:\n1. apple\n2. banana\n3. cherry", 1),
    (SORT, "q", "apple banana cherry", "- apple\n- banana\n- cherry", 1),
    (SORT, "q", "apple banana cherry", "banana apple cherry", 0),
]


@pytest.mark.parametrize("task,question,target,answer,expected", CASES, ids=[f"{c[0].name}:{c[3]!r}" for c in CASES])
def test_tricky_answers(task, question, target, answer, expected):
    assert score_answer(task, Example(question, target), answer)[1] == expected


def test_rouge_l_against_several_references():
    refs = ["Alan Bean was born in Texas.", "Texas is where Alan Bean was born."]
    ex = Example("triples", refs[0], references=tuple(refs))
    good = score_answer(GEN, ex, "Alan Bean was born in Texas.")[1]
    bad = score_answer(GEN, ex, "The weather is nice.")[1]
    assert 0.5 < good < 1 and bad < 0.1
    assert score_answer(GEN, ex, "")[1] == 0.0  # the original crashed here
    assert rouge_l("   ", refs) == 0.0


def test_user_metric_callable():
    t = Task("len", "t", AnswerKind.EXACT, metric=lambda pred, ex: float(len(pred.split()) <= int(ex.target)))
    assert score_answer(t, Example("q", "3"), "one two")[1] == 1.0
    assert score_answer(t, Example("q", "1"), "one two")[1] == 0.0
