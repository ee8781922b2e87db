"""The per-task search budget holds for every method and every momentum, counted exactly.

Scripted fakes (named as such): an optimizer that answers any meta-prompt in kind (gpo's
<START>/<END> tags, promptolution's <prompt> tags, GEPA's fenced block) and the echo
scorer of the "plus" task. The scorer has no cache, so every request it answers was sent.
"""

from __future__ import annotations

import asyncio

import pytest

from fakes import HashEmbedder, ScriptedLLM, config, echo_scorer, last_user, plus_task
from fakes import Recorder
from gpo.methods import METHODS, method_class
from gpo.methods.peers import PEERS
from gpo.scoring import Evaluator, PromptFormat

# the initial prompt's 10 eval requests, then room for a little search; at 70 the old code's
# real-time momentum scored its summary past the cap (76)
CAPS = [37, 70]


def any_meta_prompt(request, i):
    """A fake optimizer: a new prompt with more '+' signs, in every shape a method parses."""
    prompt = f"plus {'+' * (1 + (request.seed or 0) % 9)} v{request.seed}-{i}"
    if "```" in last_user(request):  # GEPA's reflection asks for a fenced block
        return f"```\n{prompt}\n```"
    return f"<START>{prompt}<END> <prompt>{prompt}</prompt>"


MOMENTA = {
    "k-list recency": dict(momentum_para_name="para", momentum_selection_name="recency",
                           momentum_update_name="k-list", momentum_selection_num=2),
    "k-list relevance": dict(momentum_para_name="para", momentum_selection_name="relevance",
                             momentum_update_name="k-list", momentum_selection_num=2),
    "k-list importance": dict(momentum_para_name="para", momentum_selection_name="importance",
                              momentum_update_name="k-list", momentum_selection_num=2),
    "real-time prompts": dict(momentum_para_name="para", momentum_update_name="real-time"),
    "feedback k-list": dict(gradient_name="feedback", momentum_para_name="feedback",
                            momentum_selection_name="recency", momentum_update_name="k-list",
                            momentum_selection_num=2),
    "feedback real-time": dict(gradient_name="feedback", momentum_para_name="feedback",
                               momentum_update_name="real-time"),
}
CASES = [(m, {}) for m in METHODS] + [("gpo", settings) for settings in MOMENTA.values()]
IDS = list(METHODS) + [f"gpo-{name}" for name in MOMENTA]


@pytest.mark.parametrize("method,settings", CASES, ids=IDS)
@pytest.mark.parametrize("selection", ["full", "race"])
@pytest.mark.parametrize("cap", CAPS)
def test_every_method_and_momentum_keeps_the_search_budget_exactly(method, settings, selection, cap):
    opt, scorer = ScriptedLLM(model="opt", script=any_meta_prompt), echo_scorer()
    cfg = config(num_search_epochs=6, selection=selection, budget={"scorer_calls_per_task": cap}, **settings)
    cls = method_class(method)
    embedder = HashEmbedder() if cls.needs_embedder(cfg) else None
    search = cls(cfg, opt, Evaluator(scorer, PromptFormat(), second_round=False), embedder, Recorder())
    task = plus_task()
    result = asyncio.run(search.optimize(task))
    tested = len(task.split("test")) * (1 if result.final_prompt == result.initial_prompt else 2)
    # what the search says it spent is what the scorer answered, less the test scoring, and within the cap
    assert scorer.usage.calls == result.scorer_requests + tested
    assert result.scorer_requests <= cap
    assert result.final_test is not None
    if method in ("empty", "cot"):  # the fixed rows do not search
        return
    assert result.scorer_requests > 10  # it searched
    if method in {p.name for p in PEERS}:  # a peer runs as one step, within its share of the budget
        assert result.steps_done == result.total_steps == 1
    else:
        assert result.search_ended and "budget" in result.search_ended  # the budget ended the search
        assert cap - result.scorer_requests < 10  # only when not one more eval scoring fitted


def test_the_cases_cover_every_method_and_peer():
    assert {m for m, _ in CASES} == set(METHODS) and {p.name for p in PEERS} <= set(METHODS)
