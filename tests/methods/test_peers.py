"""Peer optimizers (GEPA, promptolution's CAPO / OPRO / EvoPrompt-GA) through their own
published APIs, on gpo's engine with a scripted fake optimizer and the echo scorer (fakes,
named as such): gpo counts and caps their scorer requests, the best prompt comes back,
and every request goes through gpo's response cache.

The "plus" task credits an example when the rendered prompt holds at least as many '+' as
its target (1..10), so prompts with more '+' score higher. The fake optimizer answers any
meta-prompt with a new prompt of 1..9 '+', in the wrapping each library extracts.
"""

import asyncio

import pytest

from fakes import ScriptedLLM, last_user
from gpo.config import ConfigError
from gpo.llm import ResponseCache
from gpo.methods import method_class
from gpo.scoring import Evaluator, PromptFormat
from fakes import Recorder, config
from fakes import echo_scorer, plus_task

PEERS = ["gepa", "capo", "pl-opro", "pl-evoprompt-ga"]


def any_library(request, i):
    text = last_user(request)
    prompt = "plus " + "+" * (1 + request.seed % 9)
    if "```" in text:  # GEPA's reflection prompt asks for the instruction in a fenced block
        return f"```\n{prompt}\n```"
    return f"<prompt>{prompt}</prompt>"  # promptolution's templates extract between these tags


def run(method, cache, budget=60, task=None):
    opt = ScriptedLLM(model="opt", script=any_library, cache=cache)
    scorer = echo_scorer(cache)
    hooks = Recorder()
    evaluator = Evaluator(scorer, PromptFormat(), second_round=False)
    cfg = config(num_search_epochs=2, budget={"scorer_calls_per_task": budget})
    search = method_class(method)(cfg, opt, evaluator, None, hooks)
    result = asyncio.run(search.optimize(task or plus_task()))
    return result, hooks, opt, scorer


@pytest.mark.parametrize("method", PEERS)
def test_peer_keeps_the_budget_returns_its_best_and_reruns_from_the_cache(method, tmp_path):
    result, hooks, opt, scorer = run(method, ResponseCache(tmp_path / "cache.sqlite"))
    assert result.method == method
    assert 10 < result.scorer_requests <= 60  # the peer searched, and within the budget gpo counted
    assert opt.requests and result.optimizer_samples == len(opt.requests)
    scores = hooks.states[-1]["scores"]
    assert result.final_prompt != "start" and result.final_eval == max(scores.values()) > result.initial_eval
    assert any("plus" in last_user(r) for r in scorer.requests)  # the peer's prompts went to gpo's scorer

    again, _, opt2, scorer2 = run(method, ResponseCache(tmp_path / "cache.sqlite"))
    assert opt2.requests == [] and scorer2.requests == []  # every request was cached by gpo
    assert again.final_prompt == result.final_prompt and again.scorer_requests == result.scorer_requests


def test_a_tight_budget_stops_the_peer_midway_and_the_final_prompt_is_still_scored(tmp_path):
    result, hooks, _, _ = run("gepa", ResponseCache(tmp_path / "c.sqlite"), budget=25)
    assert result.scorer_requests <= 25
    assert result.final_prompt in hooks.states[-1]["scores"]


def test_a_missing_peer_library_is_named_with_the_extra(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "gepa" else real(name, *a))
    with pytest.raises(ConfigError, match=r"needs the package 'gepa': pip install 'gpo\[peers\]'"):
        run("gepa", None)


def test_capo_draws_its_shots_from_a_train_split_smaller_than_its_five(tmp_path):
    result, _, _, _ = run("capo", ResponseCache(tmp_path / "c.sqlite"), task=plus_task(n_train=3))
    assert result.scorer_requests > 10 and result.final_eval > result.initial_eval


def test_promptolution_is_quiet_when_gpo_ends_its_run_on_budget(tmp_path, caplog):
    result, _, _, _ = run("capo", ResponseCache(tmp_path / "c.sqlite"), budget=25)
    assert result.scorer_requests <= 25
    assert [r.getMessage() for r in caplog.records if r.name.startswith("promptolution")] == []
