"""Small optimizer pieces: steps per epoch, schedules, selection, meta-prompts, config."""

import asyncio

import pytest

from fakes import HashEmbedder
from gpo.config import ConfigError, GPOConfig, normalised, preset
from gpo.methods import METHODS
from gpo.methods.gpo.feedback import FeedbackGradient
from gpo.engine.state import steps_per_epoch
from gpo.methods.gpo.method import GPO
from gpo.methods.gpo.momentum import (Importance, KList, KListGradients, NewestGradient, NoMomentum, RealTime,
                                RealTimeGradients, Recency, Relevance, select)
from gpo.methods.gpo.schedule import StepSizeSchedule
from gpo.methods.gpo.update import UpdateRule, UpdateSpec, build_update_prompt
from gpo.prompts.blocks import current_block, k_list_block
from gpo.prompts.checks import leak_reason, word_edit_distance
from gpo.prompts.tags import extract_tagged, one_instruction, polish
from gpo.scoring.render import Position
from gpo.tasks import Example


@pytest.mark.parametrize("n,b,steps", [(48, 8, 6), (35, 8, 4), (27, 8, 3), (33, 8, 4), (20, 8, 3), (100, 8, 13),
                                       (50, 8, 6), (3, 8, 1), (0, 8, 0)])
def test_steps_per_epoch_rule(n, b, steps):
    assert steps_per_epoch(n, b) == steps


GPO_SH = {
    18: [49, 48, 47, 45, 42, 40, 36, 33, 30, 26, 23, 20, 17, 14, 12, 11, 10, 10],
    12: [49, 47, 44, 40, 35, 30, 24, 20, 15, 12, 10, 10],
    9: [48, 45, 40, 33, 26, 20, 14, 11, 10],
}


@pytest.mark.parametrize("T", list(GPO_SH))
def test_cosine_schedule_matches_gpo_sh(T):
    assert StepSizeSchedule("cosine", 50, 10, T).values() == GPO_SH[T]


def test_cosine_39_steps_start_and_end():
    v = StepSizeSchedule("cosine", 50, 10, 39).values()
    assert v[:4] == [49, 49, 49, 48] and v[-5:] == [11, 10, 10, 10, 10]


def test_fixed_linear_and_warmup():
    assert StepSizeSchedule("fixed", 20, 0, 6).values() == [20] * 6
    assert StepSizeSchedule("fixed", 20, 0, 6, warmup=True, warmup_steps=4).values() == [5, 10, 15, 20, 20, 20]
    assert StepSizeSchedule("linear", 50, 10, 10).values() == [46, 42, 38, 34, 30, 26, 22, 18, 14, 10]
    warm = StepSizeSchedule("linear", 50, 10, 10, warmup=True, warmup_steps=2).values()
    assert warm[:2] == [25, 50] and warm[-1] == 10
    cw = StepSizeSchedule("cosine", 50, 10, 10, warmup=True, warmup_steps=2).values()
    assert cw[0] == 25 and cw[1] == 50 and cw[-1] == 10
    with pytest.raises(ValueError, match="more total steps"):
        StepSizeSchedule("cosine", 50, 10, 3, warmup=True, warmup_steps=3)


HISTORY = [("alpha beta", 0.5), ("gamma delta", 0.9), ("alpha beta gamma", 0.1), ("epsilon", 0.4), ("alpha beta zeta", 0.3)]


def test_selection_methods():
    sel = lambda m, k: asyncio.run(select(HISTORY, m, k, HashEmbedder()))
    assert sel("recency", 3) == [4, 3, 2]
    assert sel("importance", 3) == [1, 0, 3]
    rel = sel("relevance", 3)
    assert rel[0] == 4 and set(rel[1:]) == {0, 2}  # the newest, then the two most similar to it
    for m in ("recency", "importance", "relevance"):
        assert sel(m, 0) == []  # k = 0 selects nothing (the original returned everything)
    assert asyncio.run(select(HISTORY, "importance", 3, force_newest=True)) == [4, 1, 0]
    assert sel("recency", 10) == [4, 3, 2, 1, 0]


def test_meta_prompt_contents():
    ex = [Example("Is 7 prime?", "Yes"), Example("Is 8 prime?", "No")]
    block = k_list_block([("P new", 0.5), ("P old", 0.25)])
    meta = build_update_prompt(UpdateSpec("generate_without", Position.Q_END, "k-list"), "P new", 0.5, block, ex,
                               step_size=12)
    lines = meta.splitlines()
    assert lines[-1] == "Put the new prompt between <START> and <END>."
    assert lines[-3] == "Change at most 12 words of the current prompt." and lines[-2] == ""
    assert "Score: 50.0" in meta and "Score: 25.0" in meta  # one scale: percent
    assert "Is 7 prime?\n<Prompt>\nOutput:\nYes" in meta
    assert "earlier prompts" in meta and "at the end of the question" in meta
    edit = build_update_prompt(UpdateSpec("edit", Position.A_BEGIN), "P", 0.5, current_block("P", 0.5), ex,
                               gradient="It ignores negatives.")
    assert "revise the current prompt" in edit and "It ignores negatives." in edit and "A: <Prompt>" in edit
    assert "Change at most" not in edit
    plain = build_update_prompt(UpdateSpec("generate_without", Position.Q_BEGIN), "P", 0.5, current_block("P", 0.5), ex,
                                gradient="hidden")
    assert "hidden" not in plain and "<Prompt>\nIs 7 prime?" in plain


def test_reply_handling():
    assert extract_tagged("blah <START> **be precise** <END> more") == "**be precise**"
    assert extract_tagged("<START>Count carefully.</END>") == "Count carefully."
    assert extract_tagged("no tags at all") == "no tags at all"
    assert polish("**count** carefully") == "Count carefully"
    assert leak_reason("Fill <Prompt> here") == "copies the meta-prompt's scaffolding (the <prompt> tag)"
    assert leak_reason("  ") == "empty" and leak_reason("Fine prompt.") is None
    assert leak_reason("Be brief.\nScore: 30.0") == "copies the meta-prompt's scaffolding (a 'Score:' line)"
    assert leak_reason("Output: No") == "copies the meta-prompt's scaffolding (an 'Output:' line)"
    assert leak_reason("word " * 20, max_words=10) == "too long (20 words > 10)"
    assert leak_reason("The score: high is fine") is None
    assert word_edit_distance("think step by step", "think carefully step by step") == 1
    assert word_edit_distance("a b c", "x y z") == 3


def test_config_validation_and_aliases():
    cfg = GPOConfig(decay_strategy="consine", momentum_selection_name="relavance")
    assert cfg.decay_strategy == "cosine" and cfg.momentum_selection_name == "relevance"
    # the original's spellings and config key, normalised once, from a file as from a flag
    from_file = GPOConfig.from_dict({"decay_strategy": "consine", "momentum_select_num": 2})
    assert (from_file.decay_strategy, from_file.momentum_selection_num) == ("cosine", 2)
    assert normalised("momentum-select-num", 4) == ("momentum_selection_num", 4)
    assert METHODS["pe2"].parse_options({"decay": "consine"}).decay == "cosine"
    assert preset("gpo").to_dict() == GPOConfig().to_dict()
    bad = [
        (dict(util_gradient_name="generate"), "need gradient_name='feedback'"),
        (dict(learning_rate_name="wo_lr"), "decay_strategy is set"),
        (dict(decay_strategy="-"), "needs a decay_strategy"),
        (dict(momentum_para_name="-"), "momentum_para_name='-'"),
        (dict(momentum_update_name="real-time"), "set momentum_selection_name='-'"),
        (dict(momentum_selection_name="-"), "needs a momentum_selection_name"),
        (dict(instruction_pos="Q_middle"), "instruction_pos='Q_middle' is not allowed"),
        (dict(num_search_epochs=0), "num_search_epochs must be at least 1"),
    ]
    for changes, message in bad:
        with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
            GPOConfig(**changes)
    with pytest.raises(ConfigError, match="unknown option 'num_epochs'"):
        GPOConfig.from_dict({"num_epochs": 3})
    assert GPOConfig.from_dict({"momentum_select_num": 5}).momentum_selection_num == 5  # original key


# ---------------------------------------------------------------------- GPO from its pieces

EMB = HashEmbedder()


@pytest.mark.parametrize("name,gradient,momentum,gradient_momentum,update", [
    ("table2-prompt", None, NoMomentum(), NewestGradient(), UpdateRule("edit_without", False)),
    ("table2-prompt-recency", None, KList(Recency(), 3), NewestGradient(), UpdateRule("edit_without", False)),
    ("table2-prompt-relevance", None, KList(Relevance(EMB), 3), NewestGradient(), UpdateRule("edit_without", False)),
    ("table2-prompt-summarization", None, RealTime(), NewestGradient(), UpdateRule("edit_without", False)),
    ("table2-feedback-importance", FeedbackGradient(5), NoMomentum(), KListGradients(Importance(keep_newest=True), 3),
     UpdateRule("edit", False)),
    ("table2-feedback-summarization", FeedbackGradient(5), NoMomentum(), RealTimeGradients(), UpdateRule("edit", False)),
    ("table3-generate-cosine-warmup", None, KList(Relevance(EMB), 3), NewestGradient(),
     UpdateRule("generate_without", True)),
])
def test_gpo_is_built_once_from_its_pieces(name, gradient, momentum, gradient_momentum, update):
    search = GPO(preset(name), None, None, EMB)
    assert (search.gradient, search.momentum, search.gradient_momentum, search.update) == \
        (gradient, momentum, gradient_momentum, update)


def test_resampling_update_rule_and_its_word_budget_check():
    rule = UpdateRule.from_config(GPOConfig(edit_budget_enforcement="resample", max_resample_rounds=3))
    assert rule.resample_rounds == 3 and rule.states_step_size
    assert rule.over_budget(5, 4) == "changes 5 words, budget 4" and rule.over_budget(4, 4) is None
    assert UpdateRule.from_config(GPOConfig()).over_budget(50, 4) is None  # enforcement off: only stated
    assert UpdateRule.from_config(GPOConfig(edit_budget_enforcement="reject", max_resample_rounds=3)).resample_rounds == 0


def test_importance_selector_best_first_older_wins_ties():
    scored = [("a", 0.5), ("b", 0.9), ("c", 0.5), ("d", 0.7)]
    assert asyncio.run(Importance()(scored, 3)) == [1, 3, 0]  # best first; equal scores: older first


def test_a_small_optimizers_reply_is_read_as_the_one_sentence_it_was_asked_for():
    assert one_instruction("Turn each word into its plural. This new instruction is better.") == \
        "Turn each word into its plural."
    assert one_instruction('Here\'s the new instruction:\n"Write the plural of the word."\nIt adds an s.') == \
        "Write the plural of the word."
    assert one_instruction("Revised instruction: give the first letter. Then more.") == "give the first letter."
    assert one_instruction("<START>Name the larger animal. Really.<END> and talk") == "Name the larger animal."
    assert polish(one_instruction("The new instruction is to write the plural. It adds an s.")) == "Write the plural."
    assert one_instruction("The original instruction is to think step by step.") == \
        "The original instruction is to think step by step."  # describes the old one: left to the screen
    # one sentence across lines; a list's "1." and an abbreviation do not end it
    assert one_instruction("To pluralize, use the rule\nadd an s, e.g. dogs. Next line.") == \
        "To pluralize, use the rule add an s, e.g. dogs."
    assert one_instruction("Follow these steps:\n1. Read the word.\n2. Add s.") == "Follow these steps: 1. Read the word."
    assert one_instruction("Give the answer in words") == "Give the answer in words"  # no end: the whole
    assert one_instruction("") == ""
