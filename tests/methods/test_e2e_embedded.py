"""End to end on the embedded model in both roles (real llama.cpp, real MiniLM)."""

import asyncio
import json

import pytest

from gpo.api import RunSpec, ScoringSpec, TaskSpec, load_tasks, optimize, plan
from gpo.config import preset
from gpo.llm import LocalLLM
from gpo.scoring import Evaluator

pytestmark = pytest.mark.model  # the embedded model in both roles

SIZES = {"train": 4, "eval": 4, "test": 4, "format": 3, "few_shot": 2}


def test_gpo_preset_end_to_end_and_test_score_reproduces(tmp_path):
    spec = RunSpec(
        tasks=TaskSpec(source="synthetic", tasks=["boolean_expressions"], sizes=SIZES),
        config=preset("gpo", num_search_epochs=2, opt_batch_size=4, num_generated_instructions_in_each_step=2,
                      optimizer_max_tokens=96, adopt="best"),
        scoring=ScoringSpec(max_tokens=32, second_round_max_tokens=8),
    )
    (result,) = optimize(spec, tmp_path / "run")
    # the plan is an upper bound on every figure the run spent (real tokens of the real model)
    planned, spent = plan(spec), json.loads((tmp_path / "run/meter.json").read_text())["run"]
    assert 0 < spent["scorer"]["calls"] <= planned["scorer_calls"]
    assert 0 < spent["optimizer"]["samples"] <= planned["optimizer_samples"]
    assert spent["optimizer"]["calls"] <= planned["optimizer_calls"]
    for role in ("scorer", "optimizer"):
        assert spent[role]["prompt_tokens"] <= planned[f"{role}_tokens"][0], role
        assert spent[role]["completion_tokens"] <= planned[f"{role}_tokens"][1], role
    state = json.loads((tmp_path / "run/tasks/synthetic__boolean_expressions/state.json").read_text())
    points = state["trajectory"]["points"]
    assert len(points) == 3 and len(state["trajectory"]["steps"]) == 2
    assert all(len(s["candidates"]) == 2 for s in state["trajectory"]["steps"])
    assert [s["step_size"] for s in state["trajectory"]["steps"]] == [30, 10]  # cosine 50 -> 10, T = 2
    assert result.final_eval == max(p["score"] for p in points)
    rows = [json.loads(l) for l in (tmp_path / "run/optimized_prompts.jsonl").read_text().splitlines()]
    assert rows[0]["final_prompt"] == result.final_prompt and rows[0]["task"] == "boolean_expressions"
    # the reported test score is what a fresh evaluation (new model object, no cache) gives
    task = load_tasks(spec.tasks)[0]
    fresh = Evaluator(LocalLLM(), max_tokens=32, second_round_max_tokens=8)
    again = asyncio.run(fresh.evaluate(task, result.final_prompt, "test"))
    assert again.score == result.final_test


def test_racing_end_to_end_every_recorded_eval_score_is_whole_split(tmp_path):
    """Racing on the real model: 16 eval examples give two blocks of 8. A candidate either
    stops after the first block (and has no eval score) or is scored on all 16."""
    spec = RunSpec(
        tasks=TaskSpec(source="synthetic", tasks=["navigate"], sizes={**SIZES, "eval": 16}),
        config=preset("gpo", num_search_epochs=1, opt_batch_size=4, num_generated_instructions_in_each_step=3,
                      optimizer_max_tokens=64, train_probe=False, adopt="best"),
        scoring=ScoringSpec(max_tokens=16, second_round=False),
    )
    (result,) = optimize(spec, tmp_path / "run")
    task_dir = tmp_path / "run/tasks/synthetic__navigate"
    state = json.loads((task_dir / "state.json").read_text())
    assert result.selection == "race"
    scored = 0
    for c in state["trajectory"]["steps"][0]["candidates"]:
        if c["race_examples"] is not None:
            assert c["race_examples"] == 8 and c["score"] is None and c["rejected"].startswith("stopped by racing")
        elif c["rejected"] is None and not c["reused"]:
            scored += 1
            assert state["scores"][c["text"]] == c["score"]
    summaries = [json.loads(p.read_text().splitlines()[0])["summary"] for p in (task_dir / "evals/eval").glob("*.jsonl")]
    assert all(s["n"] == 16 for s in summaries if s["instruction"] in state["scores"])  # whole split
    assert all(s["n"] == 8 for s in summaries if s["instruction"] not in state["scores"])  # stopped: partial
    assert scored >= 1 and result.final_eval == max(state["scores"].values())
    assert result.eval_comparison["n"] == 16 and result.test_comparison["n"] == 4
