"""Loading the paper's data, users' files and Hugging Face datasets; clear errors."""

import json

import pytest

from gpo.scoring.metrics import score_answer
from gpo.tasks import (BBH_TASKS, MMLU_SUBJECTS, AnswerKind, TaskError, load_gpo_task, load_hf_task,
                       load_user_task, resolve_tasks)

MMLU_59 = {"abstract_algebra", "business_ethics", "college_chemistry", "college_computer_science",
           "college_mathematics", "computer_security", "global_facts", "high_school_computer_science",
           "medical_genetics", "us_foreign_policy"}
BBH_SIZES = {"causal_judgement": (35, 107), "penguins_in_a_table": (27, 82), "snarks": (33, 102)}


def expected_sizes(dataset, task):
    if dataset == "bbh":
        tr, te = BBH_SIZES.get(task, (48, 144))
        return {"train": tr, "eval": tr, "test": te, "format": 5, "few_shot": 5}
    if dataset == "mmlu":
        return {"train": 20, "eval": 20, "test": 59 if task in MMLU_59 else 60, "format": 5, "few_shot": 4}
    if dataset == "wsc":
        return {"train": 50, "eval": 50, "test": 150, "format": 10, "few_shot": 10}
    return {"train": 100, "eval": 100, "test": 300, "format": 5, "few_shot": 5}


ALL = [("bbh", t) for t in BBH_TASKS] + [("mmlu", s) for s in MMLU_SUBJECTS] + [("gsm8k", None), ("webnlg", None), ("wsc", None)]


def test_there_are_87_tasks():
    assert len(ALL) == 87


@pytest.mark.parametrize("dataset,task", ALL, ids=[f"{d}/{t or d}" for d, t in ALL])
def test_every_gpo_task_loads_with_spec_sizes_and_a_working_metric(data_dir, dataset, task):
    t = load_gpo_task(data_dir, dataset, task)
    assert t.sizes() == expected_sizes(dataset, t.name)
    # the gold answer, given as a model reply, must score as correct (the metric works)
    scores = [score_answer(t, e, e.demo_answer if t.kind is AnswerKind.GENERATION else e.target)[1] for e in t.split("eval")]
    if t.kind is AnswerKind.GENERATION:  # mean ROUGE-L over several references: one of them scores well
        assert min(scores) > 0.2 and sum(scores) / len(scores) > 0.4
    elif t.name in ("movie_recommendation", "ruin_names"):
        assert sum(scores) >= len(scores) - 2  # option-text targets (data quirk) still mostly map
    else:
        assert min(scores) > 0.99, [e.target for e, s in zip(t.split("eval"), scores) if s < 1][:3]
    # a wrong answer must not score as correct
    assert score_answer(t, t.split("eval")[0], "zzz qqq")[1] < 0.5


def test_option_text_targets_are_matched_to_letters():
    # BBH has three targets written as option text; in the data their options are
    # also split at commas, so no letter is right there. Intact, the mapping works:
    from gpo.tasks import Example, Task

    t = Task("mc", "user", AnswerKind.MULTIPLE_CHOICE, metric="exact")
    e = Example("Pick a film:\n(A) Toy Story\n(B) Monsters, Inc\n(C) Heat", "Monsters, Inc")
    assert score_answer(t, e, "The answer is (B).")[1] == 1.0
    assert score_answer(t, e, "Monsters, Inc")[1] == 1.0
    assert score_answer(t, e, "(A)")[1] == 0.0


def test_mmlu_initial_instruction_names_the_subject(data_dir):
    t = load_gpo_task(data_dir, "mmlu", "abstract_algebra")
    assert t.initial_instruction == "The following are multiple choice questions about abstract algebra."


def test_unknown_task_suggests_the_closest_names():
    with pytest.raises(TaskError, match="did you mean.*navigate"):
        resolve_tasks("bbh", ["navigat"])
    with pytest.raises(TaskError, match="did you mean.*bbh"):
        resolve_tasks("bbhh", ["all"])


def test_malformed_jsonl_names_file_and_line(tmp_path):
    f = tmp_path / "train.jsonl"
    f.write_text('{"input": "a", "target": "b"}\n{"input": "c", "target": \n')
    with pytest.raises(TaskError, match=r"train\.jsonl, line 2: not valid JSON"):
        load_user_task("t", {"train": f, "eval": f, "test": f})


def test_missing_column_names_the_columns_found(tmp_path):
    f = tmp_path / "data.csv"
    f.write_text("text,label\nhello,yes\n")
    with pytest.raises(TaskError, match=r"no column 'input' \(columns found: text, label\)"):
        load_user_task("t", f)


def test_empty_split_is_an_error_not_zero(tmp_path):
    full, empty = tmp_path / "full.jsonl", tmp_path / "empty.jsonl"
    full.write_text('{"input": "a", "target": "yes"}\n')
    empty.write_text("\n")
    with pytest.raises(TaskError, match=r"empty.jsonl: the file is empty \(no rows\)"):  # named as it loads
        load_user_task("t", {"train": full, "eval": empty, "test": full})
    t = load_user_task("t", {"train": full, "test": full})
    with pytest.raises(TaskError, match="split 'eval' is empty"):
        t.split("eval")


def test_user_csv_with_column_mapping_and_seeded_split(tmp_path):
    f = tmp_path / "reviews.csv"
    rows = ["text,label"] + [f"review number {i},{'yes' if i % 2 else 'no'}" for i in range(20)]
    f.write_text("\n".join(rows) + "\n")
    a = load_user_task("reviews", f, input_col="text", target_col="label", seed=1)
    b = load_user_task("reviews", f, input_col="text", target_col="label", seed=1)
    c = load_user_task("reviews", f, input_col="text", target_col="label", seed=2)
    assert a.kind is AnswerKind.BOOLEAN
    assert {k: len(v) for k, v in a.splits.items() if k in ("train", "eval", "test")} == {"train": 6, "eval": 6, "test": 8}
    assert a.split("eval") == b.split("eval") and a.split("eval") != c.split("eval")
    inputs = [e.input for s in ("train", "eval", "test") for e in a.split(s)]
    assert len(set(inputs)) == 20


@pytest.mark.parametrize("targets,kind", [
    (["(A)", "(B)"], AnswerKind.MULTIPLE_CHOICE),
    (["12", "-3.5"], AnswerKind.NUMERIC),
    (["True", "no"], AnswerKind.BOOLEAN),
    (["red fox", "blue"], AnswerKind.LABEL),  # a small closed set of labels, each given several times
    ([f"word{i}" for i in range(14)], AnswerKind.EXACT),  # more distinct targets than a label set has
])
def test_answer_kind_is_inferred(tmp_path, targets, kind):
    f = tmp_path / "d.jsonl"
    f.write_text("".join(json.dumps({"input": f"q{i}\n(A) x\n(B) y", "target": t}) + "\n" for i, t in enumerate(targets * 5)))
    assert load_user_task("t", f).kind is kind


def test_hugging_face_dataset_from_a_local_directory(tmp_path):
    datasets = pytest.importorskip("datasets", reason="optional extra gpo[hub]")
    ds = datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"question": [f"{i} + 1 =" for i in range(6)], "answer": [str(i + 1) for i in range(6)]}),
        "validation": datasets.Dataset.from_dict({"question": ["7 + 1 =", "8 + 1 ="], "answer": ["8", "9"]}),
        "test": datasets.Dataset.from_dict({"question": ["9 + 1 ="], "answer": ["10"]}),
    })
    ds.save_to_disk(str(tmp_path / "arith"))
    t = load_hf_task("arith", tmp_path / "arith", input_col="question", target_col="answer")
    assert t.kind is AnswerKind.NUMERIC
    assert t.second_round == "Give only the final answer as a single number, nothing else."  # as user data gets
    assert t.sizes()["train"] == 6 and t.sizes()["eval"] == 2 and t.split("test")[0].target == "10"
    with pytest.raises(TaskError, match="no column 'prompt'"):
        load_hf_task("arith", tmp_path / "arith", input_col="prompt", target_col="answer")


def test_hugging_face_tasks_are_reachable_from_a_spec_and_the_command_line(tmp_path):
    datasets = pytest.importorskip("datasets", reason="optional extra gpo[hub]")
    import subprocess
    import sys

    from gpo.run.build import load_tasks
    from gpo.run.sources import from_sources
    from gpo.run.spec import RunSpec

    ds = datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"q": [f"Is {i} even?" for i in range(8)],
                                             "a": ["yes" if i % 2 == 0 else "no" for i in range(8)]}),
        "dev": datasets.Dataset.from_dict({"q": ["Is 10 even?", "Is 11 even?"], "a": ["yes", "no"]}),
        "holdout": datasets.Dataset.from_dict({"q": ["Is 12 even?"], "a": ["yes"]}),
    })
    ds.save_to_disk(str(tmp_path / "parity"))
    spec = from_sources(overrides={"dataset": "hf", "hf_name": str(tmp_path / "parity"), "input_col": "q",
                                           "target_col": "a", "hf_split": ["train=train", "eval=dev", "test=holdout"]},
                                check_models=False)
    (task,) = load_tasks(RunSpec.from_dict(spec.to_dict()).tasks)  # and as run.json keeps it
    assert task.dataset == "hf" and task.name == "parity" and task.kind is AnswerKind.BOOLEAN
    assert task.sizes()["train"] == 8 and [e.target for e in task.split("eval")] == ["yes", "no"]
    assert task.split("test")[0].input == "Is 12 even?"
    gpo = [sys.executable, "-m", "gpo.cli", "optimize", "--dataset", "hf"]
    missing = subprocess.run(gpo, capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "--dataset hf needs --hf-name" in missing.stderr
    bad_split = subprocess.run(gpo + ["--hf-name", str(tmp_path / "parity"), "--hf-split", "eval=validation",
                                      "--input-col", "q", "--target-col", "a"], capture_output=True, text=True, timeout=120)
    assert bad_split.returncode == 2 and "no split 'validation'" in bad_split.stderr
    assert "Traceback" not in missing.stderr + bad_split.stderr
