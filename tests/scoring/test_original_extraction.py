"""``extraction = original``: the original code's answer parsing (docs/BEHAVIOUR.md, "Scoring a prompt"), and
few-shot scoring as the original did it. Each case is the original's behaviour, set
beside gpo's lenient parsing where the two differ."""

import asyncio

import pytest

from fakes import ScriptedLLM
from gpo.api import RunSpec, TaskSpec, build_evaluator, plan
from gpo.config import preset
from gpo.scoring import Evaluator, PromptFormat, score_answer
from gpo.scoring.evaluate import second_round_applies
from gpo.scoring.original import accuracy, normalize
from gpo.tasks import AnswerKind, Example, Task

MC_INPUT = "Who?\n(A) Sue\n(B) Sally\n(C) Tom"


def task(kind, metric="exact", second_round=None):
    return Task("t", "test", kind, metric=metric, second_round=second_round,
                splits={"train": [], "eval": [Example("q", "16")], "test": []})


def both(kind, reply, target, metric="exact", example_input="q"):
    """(original score, lenient score) of one reply."""
    t, ex = task(kind, metric), Example(example_input, target)
    return score_answer(t, ex, reply, "original")[1], score_answer(t, ex, reply, "lenient")[1]


CASES = [
    # (what, kind, metric, reply, target, original, lenient)
    ("secondary cue 'is:' picks the letter after it", AnswerKind.MULTIPLE_CHOICE, "exact",
     "Of the options, (A) is wrong. The right option is: (C)", "(C)", 1.0, 0.0),
    ("multiple choice: option text is not matched", AnswerKind.MULTIPLE_CHOICE, "exact", "Sue", "(A)", 0.0, 1.0),
    ("numbers round to whole numbers, half to even", AnswerKind.NUMERIC, "exact", "The answer is 4.5", "4", 1.0, 0.0),
    ("the exact match ignores the minus sign", AnswerKind.NUMERIC, "exact", "35", "-35", 1.0, 0.0),
    ("number words up to twelve", AnswerKind.NUMERIC, "exact", "There are twelve apples.", "12", 1.0, 1.0),
    ("booleans: no synonym search inside a sentence", AnswerKind.BOOLEAN, "exact", "No, it is not valid", "No", 0.0, 1.0),
    ("booleans: the target's truth value is accepted", AnswerKind.BOOLEAN, "exact", "True.", "Yes", 1.0, 1.0),
    ("booleans: 1 reads as true", AnswerKind.BOOLEAN, "exact", "1", "valid", 1.0, 1.0),
    ("dyck keeps the reply's spacing", AnswerKind.EXACT, "dyck", "The rest is >  }", "> }", 0.0, 1.0),
    ("dyck: the last run of closers", AnswerKind.EXACT, "dyck", "( ) then > }", "> }", 1.0, 1.0),
    ("word_sorting: comma lists are not its format", AnswerKind.EXACT, "word_sorting",
     "apple, banana, cherry", "apple banana cherry", 0.0, 1.0),
    ("word_sorting: numbered lists are not its format", AnswerKind.EXACT, "word_sorting",
     "1. apple\n2. banana\n3. cherry", "apple banana cherry", 0.0, 1.0),
    ("word_sorting: one word per line", AnswerKind.EXACT, "word_sorting",
     "apple\nbanana\ncherry", "apple banana cherry", 1.0, 1.0),
    ("word_sorting: one line of them among others", AnswerKind.EXACT, "word_sorting",
     "Sorted alphabetically\napple banana cherry", "apple banana cherry", 1.0, 1.0),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_original_and_lenient_parsing(case):
    _, kind, metric, reply, target, want_original, want_lenient = case
    assert both(kind, reply, target, metric, MC_INPUT) == (want_original, want_lenient)


def test_normaliser_details():
    # primary cues are looked for case-sensitively in the reply, then applied to its lower case
    assert normalize("The Answer Is: 7 apples", AnswerKind.NUMERIC) == "7"  # no primary cue as written: "is: "
    assert normalize("#### 18", AnswerKind.NUMERIC) == "18"
    assert normalize("so 3 + 4 = 7.", AnswerKind.NUMERIC) == "7"  # after the last '=', trailing '.' float
    assert normalize("156kgs in total", AnswerKind.NUMERIC) == "156"
    assert normalize("(B) is the correct answer, not (A)", AnswerKind.MULTIPLE_CHOICE) == "(b)"
    assert normalize("Yes!", AnswerKind.BOOLEAN) == "yes"
    assert accuracy("b", "(B)") == 1.0 and accuracy("(b)", "(B)") == 1.0


def test_rouge_reads_the_stripped_reply_in_both_modes():
    t = Task("w", "test", AnswerKind.GENERATION, metric="rouge_l", splits={})
    ex = Example("Triples", "A b C.", references=("A b C.",))
    assert score_answer(t, ex, " A b C. ", "original") == score_answer(t, ex, " A b C. ", "lenient") == ("A b C.", 1.0)


def test_base_scorer_with_demonstrations_parses_only_the_first_line():
    """The original's few-shot rule: a base model goes on writing the next questions, so
    "16\\n\\nQ: Tom has 7 apples.\\nA: 7" is the answer 16, not 7."""
    reply = "16\n\nQ: Tom has 7 apples.\nA: 7"
    demos = [Example("Q1", "3"), Example("Q2", "5")]
    gsm = Task("gsm8k", "gsm8k", AnswerKind.NUMERIC, second_round="Give only the number.",
               splits={"train": [], "eval": [Example("Ann has 16 pens. How many?", "16")], "test": [], "few_shot": demos})
    for extraction in ("original", "lenient"):
        base = Evaluator(ScriptedLLM(script=lambda r, i: reply), PromptFormat(few_shot=2, chat=False), extraction=extraction)
        record = asyncio.run(base.evaluate(gsm, "Solve it.")).records[0]
        assert (record.parsed_answer, record.score, record.raw_answer) == ("16", 1.0, reply)
        leading_colon = Evaluator(ScriptedLLM(script=lambda r, i: ": 16\nQ: next"), PromptFormat(few_shot=2, chat=False),
                                  extraction=extraction)
        assert asyncio.run(leading_colon.evaluate(gsm, "Solve it.")).score == 1.0
    zero_shot = Evaluator(ScriptedLLM(script=lambda r, i: reply), PromptFormat(chat=False))
    assert asyncio.run(zero_shot.evaluate(gsm, "Solve it.")).records[0].parsed_answer == "7"  # whole reply read


def test_chat_scorer_with_demonstrations_gets_no_second_round_unless_asked():
    t = task(AnswerKind.NUMERIC, second_round="Give only the number.")
    few, zero = PromptFormat(few_shot=2, chat=True), PromptFormat(chat=True)
    assert not second_round_applies(few, None, t) and second_round_applies(few, True, t)
    assert second_round_applies(zero, None, t) and not second_round_applies(zero, False, t)
    assert not second_round_applies(PromptFormat(chat=False), True, t)  # a base scorer cannot be asked
    scorer = ScriptedLLM(script=lambda r, i: "16")
    t.splits["few_shot"] = [Example("Q1", "3"), Example("Q2", "5")]
    asyncio.run(Evaluator(scorer, few).evaluate(t, "Solve."))
    assert scorer.usage.calls == 1  # one request: no second round
    # the plan counts what the Evaluator will send
    spec = RunSpec(tasks=TaskSpec(source="synthetic", tasks=["object_counting"], sizes={"train": 4, "eval": 6, "test": 5,
                                                                                        "format": 3, "few_shot": 3}),
                   config=preset("few-shot", num_search_epochs=1))
    zero_spec = RunSpec(tasks=spec.tasks, config=preset("gpo-paper", num_search_epochs=1))
    assert plan(spec)["scorer_calls"] * 2 == plan(zero_spec)["scorer_calls"]


def test_paper_presets_build_an_original_parsing_evaluator():
    scorer = ScriptedLLM()
    assert build_evaluator(RunSpec(config=preset("gpo-paper")), scorer).extraction == "original"
    assert build_evaluator(RunSpec(config=preset("gpo")), scorer).extraction == "lenient"
