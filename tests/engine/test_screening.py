"""Replies that are not instructions are screened out before they are scored, counted by
reason in the step's events and the report; the closing lines say plainly what happened.
Scripted fakes (named as such) for the search."""

from __future__ import annotations

import asyncio

import pytest

from fakes import ScriptedLLM, config, echo_scorer, last_user, plus_task
from gpo.methods.gpo.method import GPO
from gpo.prompts.checks import not_an_instruction
from gpo.run.store import RunStore
from gpo.scoring import Evaluator

QUICKSTART_NONSENSE = ("Premise: I have always been interested in science and technology.\n"
                       "Syntax: If you have been interested in a subject, write down what you learned.")


@pytest.mark.parametrize("reply,reason", [
    (QUICKSTART_NONSENSE, "reads like a form ('Premise:', 'Syntax:'"),
    ("User: what is 2+2?\nAssistant: 4", "invents a transcript ('User:' turn)"),
    ("Q: If you follow these instructions, do you return?\nA: Yes", "invents a transcript ('Q:' turn)"),
])
def test_transcripts_and_forms_are_not_instructions(reply, reason):
    assert reason in not_an_instruction(reply)


def test_a_reply_that_copies_the_meta_prompt_or_an_example_is_not_an_instruction():
    meta = ("Below are some examples of the task.\nInput: If you follow these instructions, do you return to "
            "the starting point? Take 3 steps. Turn left.\nOutput: No\nWrite a new prompt.")
    copied = "If you follow these instructions, do you return to the starting point? Take 3 steps."
    assert "copies 8+ words" in not_an_instruction(copied, meta)
    # an instruction is usable, even one that names the task in its own words
    for fine in ("Track your position step by step and answer Yes or No.",
                 "Answer: Yes or No.",  # one label is not a form
                 "Decide whether you end where you started; follow each instruction in order."):
        assert not_an_instruction(fine, meta) is None


def test_the_search_screens_them_out_before_scoring_and_counts_the_reasons(tmp_path):
    def optimizer(request, i):
        text = last_user(request)
        if "Put the new prompt between" not in text:
            return "<START>It is too short.<END>"
        return ["<START>" + QUICKSTART_NONSENSE + "<END>", "<START>User: hi\nAssistant: yes<END>",
                "<START>start ++++<END>"][i]

    opt, scorer = ScriptedLLM(script=optimizer), echo_scorer()
    store = RunStore(tmp_path / "run")
    result = asyncio.run(GPO(config(num_generated_instructions_in_each_step=3), opt, Evaluator(scorer, second_round=False),
                             None, store).optimize(plus_task()))
    store.close()
    asked = [last_user(r) for r in scorer.requests]
    assert not any("Premise:" in a or "User: hi" in a for a in asked)  # neither reached the scorer
    assert any("Start ++++" in a for a in asked)  # the instruction did
    assert result.final_prompt == "Start ++++"
    import json

    steps = [json.loads(line) for line in (tmp_path / "run/events.jsonl").read_text().splitlines()
             if '"event": "step"' in line]
    assert steps and all(s["rejected"].get("not an instruction") == 2 for s in steps)
    (tmp_path / "run" / "run.json").write_text(json.dumps({"scorer": {"model": "fake"}, "optimizer": {"model": "fake"},
                                                           "config": {}}))
    from gpo.run.report import write_report

    page = write_report(tmp_path / "run").read_text()
    assert "Candidates set aside" in page and "<td>not an instruction</td><td>" in page


def test_the_closing_lines_say_what_happened(capsys):
    from gpo.engine import outcome as said
    from gpo.engine.state import TaskResult
    from gpo.scoring.stats import compare

    weak = compare([0] * 6 + [1] * 4, [0] * 4 + [1] * 6).as_dict()  # 6 of 10 against 4 of 10
    strong = compare([0] * 20, [1] * 20).as_dict()
    kept = TaskResult("synthetic", "navigate", "Think.", 0.4, "Think.", 0.4, adopt="significant",
                      not_adopted={"prompt": QUICKSTART_NONSENSE, "eval": 0.6, "comparison": weak},
                      eval_comparison=compare([1] * 10, [1] * 10).as_dict())
    assert said.outcome(kept).summary.startswith("no significant gain on eval: kept the initial prompt 'Think.'")
    assert said.outcome(kept).kind == said.KEPT_NO_GAIN
    adopted = TaskResult("synthetic", "navigate", "Think.", 0.0, "Track it.", 1.0, eval_comparison=strong,
                         adopt="significant")
    assert said.outcome(adopted).summary == "new prompt (a significant gain on eval): 'Track it.'"
    assert said.outcome(adopted).kind == said.ADOPTED_SIGNIFICANT and said.outcome(adopted).gains["eval"].significant
    best = TaskResult("synthetic", "navigate", "Think.", 0.4, "Track it.", 0.6, eval_comparison=weak, adopt="best")
    assert "not a significant gain (--adopt best)" in said.outcome(best).summary
    assert said.outcome(best).kind == said.ADOPTED
    same = TaskResult("synthetic", "navigate", "Think.", 0.4, "Think.", 0.4)
    assert said.outcome(same).summary.startswith("no candidate scored higher on eval")
    assert said.outcome(same).kind == said.KEPT_NONE_HIGHER and said.outcome(same).gains == {}


def test_the_library_and_quickstart_adopt_only_significant_gains_and_the_paper_presets_keep_the_best():
    from gpo.config import GPOConfig, preset

    assert GPOConfig().adopt == preset("gpo").adopt == "significant"
    assert preset("quickstart").adopt == "significant+constant"  # the quickstart's task has a majority answer
    assert preset("gpo-paper").adopt == preset("table2-prompt").adopt == preset("table3-edit-cosine").adopt == "best"


@pytest.mark.parametrize("method", ["gpo", "ape", "evoprompt-ga"])
def test_constrained_replies_shape_every_request_for_a_new_prompt_and_count_usable_proposals(method):
    from gpo.llm import ReplyShape
    from gpo.methods import METHODS

    for constrained in (False, True):
        opt = ScriptedLLM(model="opt", script=lambda r, i: f"<START>plus {'+' * (i + 1)} {r.seed}<END>")
        cfg = config(constrained_replies=constrained, max_prompt_words=40, num_search_epochs=2)
        result = asyncio.run(METHODS[method](cfg, opt, Evaluator(echo_scorer(), second_round=False)).optimize(plus_task()))
        shapes = {r.shape for r in opt.requests}
        assert shapes == ({ReplyShape(max_words=40)} if constrained else {None}), method
        assert 0 < result.usable_proposals <= result.proposals


# prompts the paper published (GPO_resuls.jsonl in the original repository, txy77/GPO), on the real data:
# four paste an MMLU example its meta-prompt showed; the others instruct in the task's own words
PAPER_COPIES = {
    "college_computer_science": "What do you think will happen as the total number of entries in an open (external) "
                                "hash table with four buckets grows, if integers are hashed into these buckets",
    "medical_genetics": "Which of the following accurately defines heritability?\n(A) A measure of the level of "
                        "heterozygotes in a population",
    "high_school_microeconomics": "Choose the most accurate option from the following choices: (A) Upward sloping to "
                                  "the right. (B) Downward sloping to the right.",
    "high_school_us_history": "Analyze the steps taken by President Reagan to diminish the size and influence of the "
                              "Federal establishment",
}
PAPER_INSTRUCTIONS = {
    ("bbh", "navigate"): "Analyze the given step-by-step instructions in detail and determine if they will guide you "
                         "back to the starting point.",
    ("bbh", "tracking_shuffled_objects_seven_objects"): "Consider the sequence of gift exchanges between Alice, Bob, "
                                                        "Claire, Dave, Eve, Fred, and Gertrude at the white elephant "
                                                        "gift event.",
    ("mmlu", "moral_scenarios"): "Examine the provided pairs of scenarios and assess whether the main character's "
                                 "actions align with the moral standards commonly accepted in the US as of 2020.",
    ("bbh", "word_sorting"): "Arrange the following words in alphabetical order:",
}


def test_the_copy_screen_catches_the_papers_pasted_examples_and_passes_its_instructions(data_dir):
    from gpo.api import TaskSpec, load_tasks
    from gpo.engine.proposals import SHOWN_SPLITS
    from gpo.prompts.checks import ExampleSpans

    def spans(dataset, name):
        (task,) = load_tasks(TaskSpec(source="gpo", dataset=dataset, tasks=[name], data_dir=str(data_dir)))
        return ExampleSpans([[e.input, e.target] for s in SHOWN_SPLITS for e in task.splits.get(s) or []])

    for name, prompt in PAPER_COPIES.items():
        assert (spans("mmlu", name).copied(prompt) or "").startswith("copies a task example"), name
    for (dataset, name), prompt in PAPER_INSTRUCTIONS.items():
        assert spans(dataset, name).copied(prompt) is None, name
