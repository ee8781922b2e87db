"""Run specs built by the library: preset, then config file, then overrides."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from gpo.config import PRESETS
from gpo.errors import ConfigError
from gpo.run.sources import SMALL_SIZES, from_sources, place


def test_nothing_given_is_the_quickstart():
    spec = from_sources()
    quick = PRESETS["quickstart"]
    assert spec.config.num_search_epochs == quick["num_search_epochs"] == 2
    assert spec.config.num_generated_instructions_in_each_step == quick["num_generated_instructions_in_each_step"]
    # a demonstration search on the instruction-induction task the package ships, small
    assert (spec.method, spec.tasks.dataset, spec.tasks.tasks, spec.tasks.data_dir) == (
        "demos", "instruction_induction", ["singular_to_plural"], None)
    assert spec.tasks.max_examples == {"eval": 32, "test": 40} and spec.scoring.max_tokens == 48
    assert spec.config.budget.scorer_calls_per_task == 160
    # where and how a run goes (budgets, scale, the seed, the method) leave it the quickstart
    assert from_sources(overrides={"max_scorer_calls": 60}).config.num_search_epochs == 2
    assert from_sources(overrides={"scorer_calls_per_task": 40}).config.budget.scorer_calls_per_task == 40
    assert from_sources(overrides={"seed": 2}).tasks.tasks == ["singular_to_plural"]
    assert from_sources(overrides={"method": "gpo"}).method == "gpo"
    # --dataset synthetic without a task is the small synthetic task, as before the quickstart moved
    synthetic = from_sources(overrides={"dataset": "synthetic"})
    assert synthetic.tasks.sizes == SMALL_SIZES and synthetic.tasks.tasks == ["navigate"] and synthetic.scoring.max_tokens == 64
    patient = from_sources(overrides={"patience": 1}).config  # a stop, like a budget
    assert patient.num_search_epochs == 2 and patient.patience == 1
    assert from_sources(overrides={"opt_batch_size": 4}).config.num_search_epochs != 2


def test_preset_then_file_then_overrides(tmp_path):
    conf = tmp_path / "run.yaml"
    conf.write_text("gpo:\n  preset: edit\n  num-search-epochs: 3\n  opt_batch_size: 4\n  task: [navigate]\n"
                    "  max_scorer_calls: 90\n  scorer_model: embedded\n  method_options: {}\n")
    spec = from_sources(config_file=conf, overrides={"opt_batch_size": 2, "tasks": ("object_counting",)})
    assert spec.config.util_gradient_name == PRESETS["edit"]["util_gradient_name"]  # the file's preset
    assert spec.config.num_search_epochs == 3  # the file (dashed names accepted)
    assert spec.config.opt_batch_size == 2  # the override wins
    assert spec.config.budget.max_scorer_calls == 90  # a budget as a flat key
    assert spec.tasks.tasks == ["object_counting"] and spec.tasks.sizes is None  # a named task is not the quickstart
    toml = tmp_path / "run.toml"
    toml.write_text('num_search_epochs = 5\n[budget]\nmax_tokens = 1000\n')
    spec = from_sources(preset="gpo-paper", config_file=toml)
    assert spec.config.selection == "full" and spec.config.num_search_epochs == 5
    assert spec.config.budget.max_tokens == 1000


def test_a_config_file_key_that_is_neither_an_option_nor_a_setting_is_named(tmp_path):
    conf = tmp_path / "run.yaml"
    conf.write_text("num_serch_epochs: 3\n")
    with pytest.raises(ConfigError, match=r"run.yaml: unknown option 'num_serch_epochs' \(did you mean num_search_epochs"):
        from_sources(config_file=conf)


def test_the_command_line_only_parses_flags():
    """cli.py keeps flags, the progress display and printing: no function over 40 lines."""
    source = Path(__file__).resolve().parents[2] / "src" / "gpo" / "cli.py"
    long = [f"{n.name} ({n.end_lineno - n.lineno + 1} lines)" for n in ast.walk(ast.parse(source.read_text()))
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.end_lineno - n.lineno + 1 > 40]
    assert not long, long


def test_optimize_demos_picks_the_demonstration_search_and_demos_sets_k():
    demos = from_sources(overrides={"optimize_target": "demos", "demos": 4})
    assert demos.method == "demos" and demos.method_options == {"k": 4} and demos.tasks.optimize == "instruction"
    boot = from_sources(overrides={"optimize_target": "demos", "method": "bootstrap"})
    assert boot.method == "bootstrap" and boot.method_options == {}
    joint = from_sources(overrides={"optimize_target": "instruction+demos", "task": "boolean_expressions"})
    assert joint.method == "gpo+demos" and joint.tasks.optimize == "instruction"  # not a user task's option here
    with pytest.raises(ConfigError, match="--optimize demos is searched by --method demos or bootstrap, not 'ape'"):
        from_sources(overrides={"optimize_target": "demos", "method": "ape"})
    with pytest.raises(ConfigError, match="--demos is for the demonstration searches"):
        from_sources(overrides={"demos": 3})


def test_the_prefix_cache_is_placement_set_per_role_and_again_on_resume():
    spec = from_sources(overrides={"scorer_prefix_cache": 0})
    assert spec.scorer.prefix_cache == 0 and spec.optimizer.prefix_cache is None  # None: the backend's default
    assert spec.config.num_search_epochs == 2  # still the quickstart
    other = from_sources(overrides={"scorer_prefix_cache": 64}).to_dict()
    assert spec.differences(other) == []  # how fast answers come, not which: a run may resume with another
    place(spec, {"scorer_prefix_cache": 64})
    assert spec.scorer.prefix_cache == 64
