"""Every baseline end to end on the embedded model in both roles (real llama.cpp):
one step on a tiny synthetic task, through the same API a user calls."""

import json

import pytest

from gpo.api import RunSpec, ScoringSpec, TaskSpec, optimize
from gpo.config import GPOConfig

pytestmark = pytest.mark.model  # the embedded model in both roles

SIZES = {"train": 4, "eval": 3, "test": 3, "format": 3, "few_shot": 2}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("e2e") / "cache.sqlite")  # the shared initial-prompt scoring is paid once


@pytest.mark.parametrize("method", ["ape", "apo", "opro", "pe2", "evoprompt-ga", "evoprompt-de"])
def test_baseline_end_to_end_on_the_embedded_model(method, cache, tmp_path):
    spec = RunSpec(
        tasks=TaskSpec(source="synthetic", tasks=["navigate"], sizes=SIZES),
        config=GPOConfig(num_search_epochs=1, opt_batch_size=4, num_generated_instructions_in_each_step=2,
                         optimizer_max_tokens=48, momentum_selection_name="recency", adopt="best"),
        scoring=ScoringSpec(max_tokens=24, second_round_max_tokens=8), method=method, cache=cache,
        method_options={"beam": 2} if method in ("apo", "pe2") else {},
    )
    (result,) = optimize(spec, tmp_path / "run")
    state = json.loads((tmp_path / "run/tasks/synthetic__navigate/state.json").read_text())
    (step,) = state["trajectory"]["steps"]
    assert result.method == method and result.steps_done == 1
    assert step["candidates"] and all(c["text"] is not None for c in step["candidates"])
    scored = [c for c in step["candidates"] if c["rejected"] is None]
    assert all(c["score"] == state["scores"][c["text"]] for c in scored)
    assert result.final_eval == max(state["scores"].values())  # the best on eval, never on test
    assert result.final_test is not None and result.optimizer_samples > 0
    assert result.scorer_requests == state["scorer_requests"] >= 6  # at least the initial prompt, 3 x 2 rounds
    row = json.loads((tmp_path / "run/optimized_prompts.jsonl").read_text().splitlines()[0])
    assert row["method"] == method and row["final_prompt"] == result.final_prompt


def test_fixed_rows_end_to_end(cache, tmp_path):
    """The fixed rows search nothing: each scores its one prompt (empty, or step by step)
    on eval and test, and what it reports is what its saved records hold."""
    for method, prompt in (("empty", ""), ("cot", "Let's think step by step.")):
        spec = RunSpec(tasks=TaskSpec(source="synthetic", tasks=["navigate"], sizes=SIZES), method=method,
                       scoring=ScoringSpec(max_tokens=24, second_round_max_tokens=8), cache=cache)
        (result,) = optimize(spec, tmp_path / method)
        assert result.initial_prompt == result.final_prompt == prompt
        assert result.optimizer_samples == 0 and result.steps_done == 0
        evals = tmp_path / method / "tasks/synthetic__navigate/evals"
        for split, reported in (("eval", result.final_eval), ("test", result.final_test)):
            lines = (evals / split / ("initial.jsonl")).read_text().splitlines()
            summary, records = json.loads(lines[0])["summary"], [json.loads(l) for l in lines[1:]]
            assert summary["instruction"] == prompt and summary["n"] == SIZES[split] == len(records)
            assert reported == summary["score"] == sum(r["score"] for r in records) / len(records)
            # the prompt really reached the scorer: in the first-round request, or not at all
            assert all((prompt in r["prompt"]) if prompt else ("step by step" not in r["prompt"]) for r in records)
