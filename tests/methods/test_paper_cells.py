"""The paper's conditions exactly: a preset per Table 2 / Table 3 cell, step sizes in the
original's arithmetic, importance ties, real-time momentum's first step, WebNLG exemplars,
and the SGDM method (on the scripted fake optimizer and scorer, named as such)."""

import asyncio

import numpy as np
import pytest

from fakes import ScriptedLLM, last_user
from gpo.config import CELLS, PRESETS, ConfigError, GPOConfig, preset
from gpo.methods import method_class
from gpo.methods.baselines import SGDM
from gpo.methods.gpo.method import GPO
from gpo.engine.hooks import NoHooks
from gpo.methods.gpo.momentum import select
from gpo.methods.gpo.schedule import StepSizeSchedule
from gpo.prompts.blocks import format_exemplars
from gpo.scoring import Evaluator, Position, PromptFormat
from gpo.tasks import Example

from fakes import config, echo_scorer, plus_task, replies

# What each cell of the paper's Tables 2 and 3 was run with, written out by hand.
NO_MOMENTUM = dict(momentum_para_name="-", momentum_selection_name="-", momentum_update_name="-")
EDIT_NO_LIMIT = dict(learning_rate_name="wo_lr", decay_strategy="-")
TABLE2 = {
    # cell: (gradient, util, momentum_para, selection, update)
    "Table 2, prompt+performance, no momentum": ("table2-prompt", "-", "edit_without", "-", "-", "-"),
    "Table 2, feedback gradient, no momentum": ("table2-feedback", "feedback", "edit", "-", "-", "-"),
    "Table 2, prompt+performance, summarization": ("table2-prompt-summarization", "-", "edit_without", "para", "-", "real-time"),
    "Table 2, prompt+performance, recency": ("table2-prompt-recency", "-", "edit_without", "para", "recency", "k-list"),
    "Table 2, prompt+performance, relevance": ("table2-prompt-relevance", "-", "edit_without", "para", "relevance", "k-list"),
    "Table 2, prompt+performance, importance": ("table2-prompt-importance", "-", "edit_without", "para", "importance", "k-list"),
    "Table 2, feedback, summarization": ("table2-feedback-summarization", "feedback", "edit", "feedback", "-", "real-time"),
    "Table 2, feedback, recency": ("table2-feedback-recency", "feedback", "edit", "feedback", "recency", "k-list"),
    "Table 2, feedback, relevance": ("table2-feedback-relevance", "feedback", "edit", "feedback", "relevance", "k-list"),
    "Table 2, feedback, importance": ("table2-feedback-importance", "feedback", "edit", "feedback", "importance", "k-list"),
}
TABLE3 = {
    # cell: (util, learning rate, decay, warmup)
    "Table 3, Editing, no control": ("table3-edit-none", "edit_without", "wo_lr", "-", False),
    "Table 3, Generation, no control": ("table3-generate-none", "generate_without", "wo_lr", "-", False),
}
for method, util in (("edit", "edit_without"), ("generate", "generate_without")):
    for decay in ("fixed", "linear", "cosine"):
        TABLE3[f"Table 3, {method}, {decay}"] = (f"table3-{method}-{decay}", util, "w_lr", decay, False)
        TABLE3[f"Table 3, {method}, {decay}, warmup"] = (f"table3-{method}-{decay}-warmup", util, "w_lr", decay, True)


@pytest.mark.parametrize("cell", list(TABLE2))
def test_table2_cell_presets(cell):
    name, gradient, util, para, selection, update = TABLE2[cell]
    c = preset(name)
    assert (c.gradient_name, c.util_gradient_name) == (gradient, util)
    assert (c.momentum_para_name, c.momentum_selection_name, c.momentum_update_name) == (para, selection, update)
    assert (c.learning_rate_name, c.decay_strategy) == ("wo_lr", "-")  # Table 2: editing, no edit-distance limit
    assert (c.selection, c.extraction) == ("full", "original")
    assert CELLS[name].startswith("Table 2")


@pytest.mark.parametrize("cell", list(TABLE3))
def test_table3_cell_presets(cell):
    name, util, lr, decay, warmup = TABLE3[cell]
    c = preset(name)
    assert (c.util_gradient_name, c.learning_rate_name, c.decay_strategy) == (util, lr, decay)
    assert c.use_warmup_strategy is warmup and c.warmup_fraction == (0.05 if warmup else 0.0)
    # the direction Table 2 found best: relevance retrieval over prompt+performance, k = 3
    assert (c.gradient_name, c.momentum_para_name, c.momentum_selection_name, c.momentum_selection_num) == ("-", "para", "relevance", 3)
    assert (c.selection, c.extraction) == ("full", "original")
    if lr == "w_lr":
        assert (c.initial_step_size, c.final_step_size) == (50, 10)
    assert CELLS[name].startswith("Table 3")


def test_paper_presets_parse_as_the_original():
    assert preset("gpo").extraction == "lenient" and preset("gpo").selection == "race"
    assert all(preset(n).extraction == "original" for n in PRESETS if n not in ("gpo", "quickstart"))
    # the paper's observation that ties the two tables together
    assert preset("table2-prompt-relevance").to_dict() == preset("table3-edit-none").to_dict()


def original_step_size(t, S0, Sf, T, warmup, W):
    """The original's cosine formula (consine.py), as it computes it, with numpy."""
    if warmup:
        if t < W:
            return int(S0 * t / W)
        decayed = (t - W) / (T - W)
    else:
        decayed = t / T
    return int(Sf + (S0 - Sf) * (0.5 * (1 + np.cos(np.pi * decayed))))


@pytest.mark.parametrize("warmup", [False, True])
def test_cosine_step_sizes_equal_the_originals_for_every_length(warmup):
    for T in range(1, 101):
        W = 2 if warmup and T > 2 else 0
        schedule = StepSizeSchedule("cosine", 50, 10, T, warmup and W > 0, W)
        assert schedule.values() == [original_step_size(t, 50, 10, T, warmup and W > 0, W) for t in range(1, T + 1)], T
    # the lengths where the other arithmetic order truncated one step a word short
    for T, t in ((26, 13), (39, 26), (51, 34), (52, 26), (63, 42), (75, 50), (78, 52)):
        assert StepSizeSchedule("cosine", 50, 10, T)(t) == original_step_size(t, 50, 10, T, False, 0)
    assert StepSizeSchedule("cosine", 50, 10, 39)(26) == 20


def test_warmup_fraction_is_five_percent_of_each_tasks_steps():
    cfg = preset("table3-generate-cosine-warmup")
    for T, W in ((18, 1), (39, 2), (100, 5), (1, 0)):
        schedule = StepSizeSchedule.from_config(cfg, T)
        assert schedule.warmup_steps == W and schedule.warmup is (W > 0)
    long = StepSizeSchedule.from_config(cfg, 100).values()
    assert long[:5] == [10, 20, 30, 40, 50]  # int(50 t / 5) while t < 5, then the decay
    with pytest.raises(ConfigError, match="not both"):
        GPOConfig(use_warmup_strategy=True, warmup_steps=5, warmup_fraction=0.05)


def test_importance_ties_go_to_the_older_entry():
    history = [("old", 0.5), ("mid", 0.9), ("new-ish", 0.5), ("newest", 0.5)]
    assert asyncio.run(select(history, "importance", 2)) == [1, 0]
    assert asyncio.run(select(history, "importance", 3)) == [1, 0, 2]
    # gradients: the newest first, then the older ones by improvement, ties older first
    assert asyncio.run(select(history, "importance", 3, force_newest=True)) == [3, 1, 0]


def test_real_time_first_step_does_not_ask_to_study_a_summary_it_does_not_show():
    table = [["a +"] * 4, ["b ++"] * 4]
    cfg = config(momentum_para_name="para", momentum_update_name="real-time", num_search_epochs=2)
    opt = ScriptedLLM(script=replies(table))
    gpo = GPO(cfg, opt, Evaluator(echo_scorer(), PromptFormat(), second_round=False))
    asyncio.run(gpo.optimize(plus_task(n_train=8)))
    updates = [last_user(r) for r in opt.requests if "Put the new prompt" in last_user(r)]
    assert "summarised prompt" not in updates[0] and "summarises the earlier prompts" not in updates[0]
    assert "Here is the current prompt and its score" in updates[0]
    assert "First study the summarised prompt" in updates[1] and "summarises the earlier prompts" in updates[1]


def test_webnlg_exemplars_show_every_reference():
    ex = Example("Triples: A | b | C", "A b C.", references=("A b C.", "C is b of A."))
    text = format_exemplars([ex, Example("Is 7 prime?", "Yes")], Position.Q_END)
    assert "Output (any of these 2 references):\nA b C.\nC is b of A." in text
    assert "Output:\nYes" in text


def test_sgdm_is_feedback_gradient_with_summarized_trajectory_and_editing():
    """SGDM on the scripted fake: every step asks for a gradient, folds the trajectory into
    a summary from the second step on, and edits with no word limit, whatever the run's config."""
    table = [["a +"] * 4, ["b ++"] * 4, ["c +++"] * 4]
    opt = ScriptedLLM(script=replies(table))
    states = []
    hooks = NoHooks()
    hooks.save_state = lambda t, s: states.append(s)
    cfg = config(num_search_epochs=3, learning_rate_name="w_lr", decay_strategy="cosine")  # overridden by SGDM
    sgdm = method_class("sgdm")(cfg, opt, Evaluator(echo_scorer(), PromptFormat(), second_round=False), None, hooks)
    assert isinstance(sgdm, SGDM) and sgdm.name == "sgdm"
    result = asyncio.run(sgdm.optimize(plus_task(n_train=8)))
    texts = [last_user(r) for r in opt.requests]
    updates = [t for t in texts if "Put the new prompt" in t]
    assert len(updates) == 3 and all(t.startswith("Your job is to revise the current prompt") for t in updates)
    assert all("Change at most" not in t for t in updates)  # no edit-distance limit
    assert sum("weaknesses" in t for t in texts) == 3  # a feedback gradient every step
    assert sum("summarises an earlier prompt" in t for t in texts) == 2  # summaries from step 2 on
    assert "Problems found with the current prompt:" in updates[0]
    assert "First study the summarised prompt" in updates[1]
    steps = states[-1]["trajectory"]["steps"]
    assert [s["step_size"] for s in steps] == [None, None, None]
    assert result.final_prompt == "C +++"
