"""Run sizes (issue 36): --budget light|medium|heavy|full, a time or money budget fitted from the
plan's upper bound, the caps that keep a large file's run bounded, and the plan's time bound."""

from __future__ import annotations

import asyncio
import csv
import json

import pytest

from gpo.config import SIZES
from gpo.errors import ConfigError
from gpo.run import sizing
from gpo.run.build import load_tasks
from gpo.run.plan import Rates, Timing, plan, wall
from gpo.run.sources import from_sources, parse_size


def big_file(tmp_path, rows: int = 20_000):
    path = tmp_path / "big.csv"
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["text", "label"])
        for i in range(rows):
            out.writerow([f"review number {i} was {'good' if i % 3 else 'bad'}", "positive" if i % 3 else "negative"])
    return str(path)


def user_spec(path: str, **more):
    return from_sources(overrides={"dataset": "user", "data_files": path, "input_col": "text", "target_col": "label",
                                   **more}, check_models=False)


@pytest.mark.parametrize("text, parsed", [("light", ("level", "light")), ("Heavy", ("level", "heavy")),
                                          ("15m", ("seconds", 900.0)), ("2h", ("seconds", 7200.0)),
                                          ("90s", ("seconds", 90.0)), ("2usd", ("usd", 2.0)), ("$0.5", ("usd", 0.5))])
def test_a_budget_is_a_size_a_time_or_money(text, parsed):
    assert parse_size(text) == parsed


@pytest.mark.parametrize("text", ["huge", "15", "2 euros", "m15"])
def test_a_budget_that_is_none_of_them_is_refused_naming_the_flag(text):
    with pytest.raises(ConfigError, match="--budget"):
        parse_size(text)


def test_a_large_file_gets_the_default_size_and_the_plan_says_what_is_left_unused(tmp_path):
    spec = user_spec(big_file(tmp_path))
    assert spec.size == "medium"
    tasks = load_tasks(spec.tasks)
    sizes = SIZES["medium"]["max_examples"]
    assert {s: len(tasks[0].split(s)) for s in sizes} == sizes
    assert tasks[0].left_out == {"train": 6000 - 100, "eval": 6000 - 100, "test": 8000 - 300}
    planned = plan(spec, tasks)
    assert planned["size"] == "medium" and "test 7,700" in planned["unused"]
    assert planned["tasks"][0]["steps"] <= spec.config.num_search_epochs * 13  # 100 train rows, batch 8
    light = plan(user_spec(big_file(tmp_path), size="light"))
    assert light["scorer_calls"] < planned["scorer_calls"]
    caps = SIZES["light"]["max_examples"]
    probe = 5 * caps["eval"] + caps["eval"]  # the headroom check: 5 probe prompts on eval, and its start
    assert light["scorer_calls"] == SIZES["light"]["search_requests"] + probe + 2 * caps["test"]  # one round each


def test_explicit_choices_win_over_a_size_and_the_paper_presets_keep_their_sizes(tmp_path):
    path = big_file(tmp_path, 2000)
    spec = user_spec(path, max_examples=["eval=500"], scorer_calls_per_task=50, size="light",
                     num_generated_instructions_in_each_step=5)
    assert spec.tasks.max_examples["eval"] == 500 and spec.tasks.max_examples["test"] == SIZES["light"]["max_examples"]["test"]
    assert spec.config.budget.scorer_calls_per_task == 50
    assert spec.config.num_generated_instructions_in_each_step == 5
    paper = from_sources("gpo-paper", overrides={"dataset": "user", "data_files": path, "input_col": "text",
                                                 "target_col": "label"}, check_models=False)
    assert paper.size is None and paper.tasks.max_examples is None and paper.config.budget.scorer_calls_per_task is None
    full = user_spec(path, size="full")
    assert full.tasks.max_examples is None and full.config.budget.scorer_calls_per_task is None
    quickstart = from_sources(check_models=False)
    assert quickstart.size is None and quickstart.config.budget.scorer_calls_per_task == 160


def test_the_bound_is_never_below_the_expectation_and_grows_with_every_rate(tmp_path):
    spec = user_spec(big_file(tmp_path, 600))
    tasks = load_tasks(spec.tasks)
    planned = plan(spec, tasks)
    for reply in (1, 20, 256):
        scorer = Rates(0.001, 0.02)  # a request as long as the rates say it takes
        timing = Timing(scorer=scorer, first=(40, reply, scorer.seconds(40, reply)), optimizer=Rates(0.002, 0.03))
        expected, upper = wall(spec, planned, tasks[0], timing)
        assert 0 < expected <= upper
        slower = wall(spec, planned, tasks[0], Timing(scorer=Rates(0.002, 0.04), first=(40, reply, 1.0),
                                                     optimizer=Rates(0.004, 0.06)))
        assert slower[1] == pytest.approx(2 * upper)
        briefer = Timing(scorer=scorer, first=(40, 1, scorer.seconds(40, 1)), optimizer=timing.optimizer)
        brief_expected, brief_upper = wall(spec, planned, tasks[0], briefer)  # prompts answered in a word
        assert brief_upper == upper and (brief_expected < expected or reply == 1)  # the bound never leans on it


class FixedTiming:
    """Stands in for ``sizing.measure`` (no model is timed): the rates a test gives."""

    def __init__(self, timing: Timing):
        self.timing, self.calls = timing, 0

    async def __call__(self, *args) -> Timing:
        self.calls += 1
        return self.timing


def fitted(monkeypatch, spec, timing: Timing):
    measure = FixedTiming(timing)
    monkeypatch.setattr(sizing, "measure", measure)
    monkeypatch.setattr(sizing, "build_model", lambda *a: _Closable())
    spec, line = asyncio.run(sizing.fit(spec))
    assert measure.calls == 1  # the models are timed once, whatever the sizes tried
    return spec, line


class _Closable:
    async def aclose(self) -> None:
        pass


def test_a_time_budget_takes_the_largest_size_whose_upper_bound_fits(monkeypatch, tmp_path):
    path = big_file(tmp_path)
    timing = Timing(scorer=Rates(0.0005, 0.01), first=(40, 5, 0.07), optimizer=Rates(0.0005, 0.01))
    bounds = {}
    for level in ("heavy", "medium", "light"):
        spec = user_spec(path, size=level)
        tasks = load_tasks(spec.tasks)
        bounds[level] = wall(spec, plan(spec, tasks), tasks[0], timing)[1]
    assert bounds["heavy"] > bounds["medium"] > bounds["light"]
    between = (bounds["medium"] + bounds["light"]) / 2
    spec, line = fitted(monkeypatch, user_spec(path, size=f"{between:.0f}s"), timing)
    assert spec.tasks.max_examples == SIZES["light"]["max_examples"] and "light" in line and "upper bound" in line
    assert spec.size == f"{between:.0f}s"  # what the user asked for is kept beside what it chose
    spec, line = fitted(monkeypatch, user_spec(path, size=f"{bounds['heavy'] + 1:.0f}s"), timing)
    assert spec.tasks.max_examples == SIZES["heavy"]["max_examples"]


def test_a_time_budget_too_small_for_any_search_is_refused_saying_what_the_smallest_needs(monkeypatch, tmp_path):
    slow = Timing(scorer=Rates(0.01, 1.0), first=(40, 50, 50.4), optimizer=Rates(0.01, 1.0))
    with pytest.raises(ConfigError, match=r"--budget 1m: the smallest run \(light, .*\) needs up to"):
        fitted(monkeypatch, user_spec(big_file(tmp_path, 3000), size="1m"), slow)


def test_a_money_budget_needs_prices_and_fits_the_planned_cost(monkeypatch, tmp_path):
    path = big_file(tmp_path, 3000)
    with pytest.raises(ConfigError, match="no model has a price"):
        asyncio.run(sizing.fit(user_spec(path, size="2usd")))
    priced = dict(scorer_model="m", scorer_base_url="http://127.0.0.1:9/v1", scorer_price="1,2",
                  optimizer_model="m", optimizer_base_url="http://127.0.0.1:9/v1", optimizer_price="1,2")
    costs = {level: plan(user_spec(path, size=level, **priced))["estimated_cost_usd"] for level in ("heavy", "medium")}
    budget = (costs["heavy"] + costs["medium"]) / 2
    spec, line = asyncio.run(sizing.fit(user_spec(path, size=f"{budget:.4f}usd", **priced)))
    assert spec.tasks.max_examples == SIZES["medium"]["max_examples"] and "medium" in line
    assert plan(spec)["estimated_cost_usd"] <= budget


@pytest.mark.model  # a real run of the embedded model: its work takes no longer than the plan's bound
def test_a_runs_work_takes_no_longer_than_its_planned_upper_bound(tmp_path):
    from gpo.api import optimize

    spec = from_sources(overrides={"task": ["navigate"], "method": "ape", "scorer_calls_per_task": 100,
                                   "max_examples": ["train=8", "eval=10", "test=8"], "scorer_max_tokens": 32,
                                   "optimizer_max_tokens": 64, "num_generated_instructions_in_each_step": 2},
                        check_models=False)
    assert spec.config.probe  # the check before the search is part of the work the plan bounds
    optimize(spec, tmp_path / "run")
    events = [json.loads(line) for line in (tmp_path / "run" / "events.jsonl").read_text().splitlines()]
    planned = next(e for e in events if e["event"] == "plan")
    done = next(e for e in events if e["event"] == "run_done")
    assert planned["upper_wall_s"] >= planned["estimated_wall_s"] > 0
    assert done["time"] - planned["time"] <= planned["upper_wall_s"]
