"""The screen's verdicts on real replies: junk the embedded optimizer wrote, which the screen of
before issue 38 counted usable (``tests/data/optimizer_replies.jsonl``, each with its expected
reason), and prompts that must pass: the paper's 87 published prompts (``paper_prompts.jsonl``,
GPO_resuls.jsonl of the original repository, txy77/GPO), every human instruction of instruction
induction and every method's initial prompt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gpo.config import PRESETS, preset
from gpo.prompts.checks import leak_reason, not_an_instruction
from gpo.prompts.junk import (answers_as_assistant, asks_the_user, junk_reason, markup_tags, no_content, repeats,
                              talks_about_prompts)
from gpo.prompts.tags import extract_tagged, polish
from gpo.tasks.catalog import MMLU_TEMPLATE

DATA = Path(__file__).resolve().parents[1] / "data"
INDUCTION = Path(__file__).resolve().parents[3] / "shared" / "data" / "instruction_induction"
# the four the paper published that paste an MMLU example its meta-prompt showed (tests/engine/test_screening.py)
PAPER_COPIES = {"college_computer_science", "medical_genetics", "high_school_microeconomics", "high_school_us_history"}


def verdict(reply: str) -> str:
    """The screen's reasons that need no task (``StepActions.unusable`` adds the copy checks), by kind."""
    why = leak_reason(reply, 150) or not_an_instruction(reply) or junk_reason(reply)
    return "usable" if why is None else why.split(" (")[0].split(":")[0]


def lines(name: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / name).read_text().splitlines()]


@pytest.mark.parametrize("row", lines("optimizer_replies.jsonl"), ids=lambda r: r["reply"][:40])
def test_real_junk_replies_get_their_reason(row):
    assert verdict(row["reply"]) == row["verdict"]


def test_the_fixture_holds_every_kind_and_the_replies_of_the_issue():
    rows = lines("optimizer_replies.jsonl")
    kinds = {r["verdict"] for r in rows}
    assert {"talks about prompts instead of instructing", "answers as an assistant instead of instructing",
            "asks the user for input", "markup tags", "repeats a line", "repeats a phrase", "not an instruction"} <= kinds
    school = next(r["reply"] for r in rows if "<SCHOOL>" in r["reply"])
    assert verdict(school) == "markup tags"
    assert verdict("Please go to your next prompt.") == "talks about prompts instead of instructing"


def test_the_papers_published_prompts_pass_but_the_four_pasted_examples():
    rows = lines("paper_prompts.jsonl")
    assert len(rows) == 87
    flagged = {r.get("task"): verdict(polish(extract_tagged(r["prompt"]))) for r in rows}
    assert {t for t, v in flagged.items() if v != "usable"} <= PAPER_COPIES, flagged


@pytest.mark.skipif(not INDUCTION.exists(), reason="needs ../shared/data/instruction_induction")
def test_every_human_instruction_of_instruction_induction_passes():
    golds = [g for f in sorted(INDUCTION.glob("*/gold_instructions.json")) for g in json.loads(f.read_text())]
    assert len(golds) > 12
    assert [g for g in golds if verdict(g) != "usable"] == []


def test_every_presets_initial_prompt_passes():
    starts = {preset(name).initial_instruction for name in PRESETS} | {f"{MMLU_TEMPLATE} abstract algebra.",
                                                                       "Let's think step by step."}
    assert all(verdict(s) == "usable" for s in starts if s), starts


@pytest.mark.parametrize("rule,reply,reason", [
    (talks_about_prompts, "Here is the new prompt: Answer with the plural.", "talks about prompts"),
    (talks_about_prompts, "Change at most 12 words of it.", "talks about prompts"),
    (answers_as_assistant, "Sure! Pluralize the word.", "answers as an assistant"),
    (answers_as_assistant, "I'm ready to help. Give the plural.", "answers as an assistant"),
    (asks_the_user, "Could you please provide the word?", "asks the user for input"),
    (repeats, "Give the plural.\nGive the plural.", "repeats a line"),
    (repeats, "#\n#\n#", "repeats a line"),
    (repeats, "give the plural of the word and give the plural of the word", "repeats a phrase"),
    (no_content, "And", "not an instruction"),
    (no_content, "=", "not an instruction: no words"),
])
def test_each_rule_names_its_reason(rule, reply, reason):
    assert rule(reply).startswith(reason)


def test_markup_tags_the_task_does_not_use_but_a_placeholder_or_the_tasks_own_tags_pass():
    assert markup_tags("Answer. <SCHOOL> Answer again. <SCHOOL>").startswith("markup tags ('<SCHOOL>')")
    assert markup_tags("Answer, then close with </answer>.").startswith("markup tags")
    assert markup_tags("During what time could <Entity> have gone?") is None  # a placeholder (the paper's)
    assert markup_tags("Wrap the answer in <ANSWER> tags.", allowed="<ANSWER>") is None


@pytest.mark.parametrize("fine", [
    "Give the plural form of the word.", "Write the larger of the two animals.", "Pluralize.",
    "Answer with one word: the first letter of the input.", "Read the prompt below and answer it.",
    "Identify the pair in which the main character deviates from moral norms according to the prompt.",
])
def test_plain_instructions_pass_every_rule(fine):
    assert junk_reason(fine) is None
