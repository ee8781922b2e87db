"""A user's label column, read as a person reads it: one reading of a reply for the metric, the
constant yardstick, the answer shares and the per-class figures; macro-F1 as an objective."""

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from fakes import ScriptedEndpoint, ScriptedLLM, config, last_user
from gpo.methods.gpo.method import GPO
from gpo.scoring import Evaluator, PromptFormat
from gpo.scoring.constant import NO_ANSWER, classes, closed_answers, measure
from gpo.scoring.evaluate import Record
from gpo.scoring.extract import isolate_answer, parse_label
from gpo.scoring.metrics import score_answer
from gpo.scoring.objective import Objective, macro_f1, macro_f1_rows, per_class
from gpo.scoring.stats import bootstrap_compare
from gpo.tasks import AnswerKind, Example, Task
from gpo.tasks.loaders import load_user_task

DATA = Path(__file__).resolve().parents[1] / "data"
REPLIES = [json.loads(line)["reply"] for line in (DATA / "replies.jsonl").read_text().splitlines()]


def label_task(labels=("negative", "positive"), targets=None, metric="exact"):
    targets = targets or [labels[i % len(labels)] for i in range(8)]
    ex = [Example(f"sentence {i}", t) for i, t in enumerate(targets)]
    return Task("labels", "user", AnswerKind.LABEL, metric=metric, labels=tuple(labels),
                splits={"train": ex, "eval": ex, "test": ex})


def every_kind() -> list[Task]:
    """One task per answer kind that has a closed answer set, as the loaders build them."""
    mc = [Example(f"Q{i}\n(A) red\n(B) green\n(C) blue", ["(A)", "(B)", "(C)"][i % 3]) for i in range(6)]
    yes_no = [Example(f"q{i}", ["Yes", "No"][i % 2]) for i in range(6)]
    animals = [Example(f"q{i}", ["Baboons", "Lions", "42"][i % 3]) for i in range(9)]
    same = label_task(("same", "not the same"), ["same", "not the same"] * 3)
    tickets = label_task(("billing", "shipping", "technical"), ["billing", "shipping", "technical"] * 2)
    return [label_task(), same, tickets,
            Task("mc", "test", AnswerKind.MULTIPLE_CHOICE, splits={"test": mc}),
            Task("yn", "test", AnswerKind.BOOLEAN, splits={"test": yes_no}),
            Task("animals", "user", AnswerKind.EXACT, splits={"test": animals})]


@pytest.mark.parametrize("extraction", ["lenient", "original"])
@pytest.mark.parametrize("task", every_kind(), ids=lambda t: f"{t.kind.value}-{t.name}")
def test_the_metric_and_the_yardstick_read_every_reply_alike(task, extraction):
    """Real replies (the embedded model's and hand-written ones) through every answer kind: a
    reply's score is 1 exactly when the answer the yardstick reads in it is its target's, and
    a reply that gives an answer scores what always giving that answer scores."""
    assert closed_answers(task) and len(REPLIES) >= 30
    examples = task.split("test")
    for reply in REPLIES:
        for i, example in enumerate(examples):
            parsed, score = score_answer(task, example, reply, extraction)
            [(truth, answer)] = classes(task, "test", [Record(i, "", reply, parsed, example.target, score)], extraction)
            assert score == float(answer == truth), (reply, example.target, parsed, answer, truth)
            if answer != NO_ANSWER:
                assert score == score_answer(task, example, answer, extraction)[1], (reply, answer)


def test_a_label_is_read_alone_inside_a_sentence_and_through_markdown():
    labels = ("negative", "positive")
    for reply in ("positive", "Positive.", "**Positive**", "The sentiment of this sentence is positive.",
                  "'positive'", "The answer is: positive", "  POSITIVE!  "):
        assert parse_label(reply, labels) == "positive", reply
    for reply in ("I think it is negative, not positive.", "neither", "", "Is it positive or negative?"):
        assert parse_label(reply, labels) == NO_ANSWER, reply
    assert parse_label("It looks positive at first. Answer: negative", labels) == "negative"  # the cue is read first
    assert parse_label("They are not the same.", ("same", "not the same")) == "not the same"  # the longest match
    assert parse_label("the same", ("same", "not the same")) == "same"
    assert parse_label("It is `not_entailment`.", ("entailment", "not_entailment")) == "not_entailment"
    assert parse_label("Billing", ("Billing", "Shipping")) == "Billing"  # as the data writes it


def test_the_text_after_a_cue_loses_its_colon_and_quotes():
    assert isolate_answer("The answer is: Baboons")[0] == "baboons"
    assert isolate_answer('The answer is "Baboons".')[0] == "baboons"
    assert isolate_answer("**Answer:** **Baboons**")[0] == "baboons"
    assert isolate_answer("The answer is: -4.5")[0] == "-4.5"


def test_a_label_column_is_read_as_labels_by_default(tmp_path):
    task = load_user_task("reviews", DATA / "reviews.csv", input_col="text", target_col="label")
    assert task.kind is AnswerKind.LABEL and task.labels == ("negative", "positive")
    example = task.split("test")[0]
    assert score_answer(task, example, f"The sentiment of this sentence is {example.target}.")[1] == 1.0
    declared = load_user_task("reviews", DATA / "reviews.csv", input_col="text", target_col="label", kind="exact")
    assert declared.kind is AnswerKind.EXACT  # --answer-kind exact keeps the whole-reply comparison
    assert score_answer(declared, example, f"The sentiment of this sentence is {example.target}.")[1] == 0.0


def test_replies_that_all_name_one_label_score_as_always_answering_it():
    targets = ["positive"] * 22 + ["negative"] * 18
    task = label_task(targets=targets)
    replies = ["The sentiment of this sentence is positive.", "Positive.", "positive"]
    records = []
    for i, example in enumerate(task.split("test")):
        parsed, score = score_answer(task, example, replies[i % 3])
        records.append(Record(i, "", replies[i % 3], parsed, example.target, score))
    evaluation = type("Evaluation", (), {"split": "test", "records": records})()
    measured = measure(task, evaluation)
    assert sum(r.score for r in records) / len(records) == pytest.approx(0.55)
    assert measured["constant"] == "positive" and measured["constant_score"] == pytest.approx(0.55)
    assert measured["vs_constant"]["diff"] == 0.0 and measured["collapsed_to"] == "positive"
    recall = {c["label"]: (c["hits"], c["n"], c["predicted"]) for c in measured["classes"]["classes"]}
    assert recall == {"positive": (22, 22, 40), "negative": (0, 18, 0)}


def test_per_class_figures_and_macro_f1_by_hand():
    pairs = [("a", "a"), ("a", "a"), ("a", "b"), ("b", "b"), ("c", NO_ANSWER), ("c", "a")]
    # a: tp 2, fp 1, fn 1 -> 4/6; b: tp 1, fp 1, fn 0 -> 2/3; c: tp 0, fn 2 -> 0
    assert macro_f1(pairs) == pytest.approx((4 / 6 + 2 / 3 + 0) / 3)
    figures = per_class(pairs)
    assert [(c["label"], c["n"], c["hits"], c["predicted"]) for c in figures["classes"]] == [
        ("a", 3, 2, 3), ("c", 2, 0, 0), ("b", 1, 1, 2)]
    assert macro_f1([("a", NO_ANSWER)]) == 0.0


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abc"), st.sampled_from("abc"), st.sampled_from("abc")),
                min_size=4, max_size=40),
       st.floats(0.01, 0.3))
def test_the_bootstrap_interval_excludes_zero_exactly_when_p_is_below_alpha(rows, alpha):
    a = [(t, x) for t, x, _ in rows]
    b = [(t, y) for t, _, y in rows]
    test = Objective("macro_f1").compare(a, b, alpha=alpha, seed=3)
    assert test.test == "bootstrap-paired" and test.diff == pytest.approx(macro_f1(b) - macro_f1(a))
    assert (test.low > 0 or test.high < 0) == (test.p < alpha)
    assert Objective("macro_f1").compare(a, a, alpha=alpha).p == 1.0


def test_the_bootstrap_finds_a_real_difference_and_no_false_one():
    rng = np.random.default_rng(0)
    truths = list(rng.choice(["a", "b", "c"], 120, p=[0.6, 0.3, 0.1]))
    majority = [(t, "a") for t in truths]
    right = [(t, t if rng.random() < 0.8 else "a") for t in truths]
    better = bootstrap_compare(majority, right, macro_f1_rows)
    assert better.significant and better.diff > 0.3
    noisy = [(t, rng.choice(["a", "b", "c"])) for t in truths]
    shuffled = [(t, rng.choice(["a", "b", "c"])) for t in truths]
    assert not Objective("macro_f1").compare(noisy, shuffled, seed=1).p < 0.01


def imbalanced_task(n=48):
    """Three classes, 'a' in 3 of every 4 examples; each input says its class."""
    label = lambda i: ["a", "a", "a", "b" if i % 8 < 4 else "c"][i % 4]  # noqa: E731
    ex = [Example(f"item {i} class={label(i)}", label(i)) for i in range(n)]
    return Task("imbalanced", "user", AnswerKind.LABEL, labels=("a", "b", "c"), metric="exact",
                splits={"train": ex[:16], "eval": ex, "test": ex, "format": ex[:3]})


def scorer_by_instruction():
    """Scripted scorer (a fake): 'Always a.' answers a; 'Read the class.' answers the class in the
    input, except that it calls every 'a' a 'b' on 1 of 4."""
    def script(request, _):
        text = last_user(request)
        true = text.split("class=")[1][0]
        if "Always a." in text:
            return "The class is a."
        index = int(text.split("item ")[1].split(" ")[0])
        return f"It is {'b' if true == 'a' and index % 4 == 1 else true}."
    return ScriptedLLM(model="scorer", script=script)


def search(objective: str):
    opt = ScriptedLLM(model="opt", script=lambda r, i: "<START>Read the class.<END>")
    cfg = config(initial_instruction="Always a.", num_generated_instructions_in_each_step=2, objective=objective)
    evaluator = Evaluator(scorer_by_instruction(), PromptFormat(), second_round=False, objective=Objective(objective))
    return asyncio.run(GPO(cfg, opt, evaluator).optimize(imbalanced_task()))


def test_macro_f1_chooses_the_prompt_that_answers_every_class():
    # accuracy: always 'a' scores 75.0, reading the class 75.0 too (it calls 1 in 4 'a' a 'b'): no gain
    by_accuracy = search("accuracy")
    assert by_accuracy.final_prompt == "Always a." and by_accuracy.objective == "accuracy"
    assert by_accuracy.final_eval == pytest.approx(0.75)
    # macro-F1: 'Always a.' is 28.6, reading the class far higher: adopted, by the paired bootstrap
    by_f1 = search("macro_f1")
    assert by_f1.final_prompt == "Read the class." and by_f1.objective == "macro_f1"
    assert by_f1.initial_eval == pytest.approx(macro_f1([("a", "a")] * 36 + [("b", "a")] * 6 + [("c", "a")] * 6))
    assert by_f1.eval_comparison["test"] == "bootstrap-paired" and by_f1.eval_comparison["significant"]
    assert by_f1.test_comparison["test"] == "bootstrap-paired"
    assert by_f1.constant["test"]["final"]["vs_constant"]["test"] == "bootstrap-paired"


def test_macro_f1_is_refused_where_there_are_no_classes():
    free = Task("free", "user", AnswerKind.EXACT, splits={"eval": [Example(f"w{i}", f"t{i}") for i in range(4)]})
    evaluator = Evaluator(ScriptedLLM(script=lambda r, i: "x"), PromptFormat(), objective=Objective("macro_f1"))
    with pytest.raises(Exception, match="macro_f1 needs classes to count"):
        asyncio.run(evaluator.evaluate(free, "Go.", "eval"))


def test_gpo_evaluate_on_a_label_csv_prints_the_constant_and_per_class_recall(tmp_path):
    rows = [("A warm, funny film.", "positive")] * 11 + [("Two hours I will never get back.", "negative")] * 9
    data = tmp_path / "reviews.csv"
    data.write_text("text,label\n" + "".join(f'"{t}",{label}\n' for t, label in rows))
    # a real HTTP server on 127.0.0.1 (scripted): every reply names 'positive', mostly inside a sentence
    with ScriptedEndpoint(replies=["The sentiment of this sentence is positive.", "Positive.", "positive"]) as ep:
        out = subprocess.run(
            [sys.executable, "-m", "gpo.cli", "evaluate", "--dataset", "user", "--data-file", f"test={data}",
             "--data-file", f"train={data}", "--data-file", f"eval={data}", "--input-col", "text",
             "--target-col", "label", "--split", "test", "--scorer-model", "m", "--scorer-base-url", ep.url,
             "--prompt", "Positive or negative?", "--out", str(tmp_path / "eval")],
            capture_output=True, text=True, timeout=120, env={**os.environ, "OPENAI_API_KEY": "x"})
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("user/user [test, n=20] 55.0")
    assert lines[1].startswith("  collapsed to one answer: 'positive' on 100% of test examples; against always "
                               "answering 'positive' (55.0): +0.0,"), lines[1]
    assert lines[2] == "  per class: macro-F1 35.5; recall positive 100% (11/11), negative 0% (0/9, never answered)"
