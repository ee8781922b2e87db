"""The Pareto pool (``--pool pareto``) and its merges (``--merge N``): the frontier on a hand-made
score table, seeded draws that a killed and resumed search repeats exactly, and merge proposals
raced and paid from the search budget. Scripted fakes (named as such) stand in for both models:
the scripted scorer echoes the prompt, and an example counts as right when the prompt carries its
tag ('[3]' for item 3), so which prompt wins which example is set by hand."""

from __future__ import annotations

import asyncio
import random
import re

import pytest

from fakes import ScriptedLLM, config, echo_scorer, last_user
from gpo.engine.frontier import draw, frontier, merge_pair
from gpo.methods import method_class
from gpo.run.store import RunStore
from gpo.scoring import Evaluator
from gpo.tasks import AnswerKind, Example, Task

TABLE = {"init": [0, 0, 0, 0, 1], "a": [1, 1, 0, 0, 1], "b": [0, 1, 1, 0, 1], "c": [1, 1, 0, 0, 0],
         "d": [0, 0, 0, 1, 1], "a again": [1, 1, 0, 0, 1]}


def test_the_frontier_keeps_each_prompt_best_somewhere_and_drops_the_dominated():
    # example 4: every prompt but c scores 1, so init, a, b and d win it; c and init win nothing a does not
    assert frontier(TABLE) == {"a": 3, "b": 3, "d": 2}  # 'a again' wins what a wins and comes later
    assert frontier({"x": [1, 0], "y": [1, 0]}) == {"x": 0}  # nothing told apart: the first alone
    assert frontier({"x": [0.5, 0.2], "y": [0.4, 0.9]}) == {"x": 1, "y": 1}  # graded scores


def test_draws_follow_the_examples_won_and_are_seeded():
    front = {"a": 3, "b": 1}
    picks = [draw(front, random.Random(i))[0] for i in range(4000)]
    assert 0.70 < picks.count("a") / len(picks) < 0.80  # 3 in 4
    assert draw(front, random.Random(7), k=5) in (["a", "b"], ["b", "a"])  # distinct, at most the frontier
    assert draw(front, random.Random(7), k=2) == draw(front, random.Random(7), k=2)


def test_a_merge_pairs_two_frontier_prompts_that_each_win_what_the_other_loses():
    a, b, only_a, only_b = merge_pair(TABLE, [])
    assert (a, b, only_a, only_b) == ("a", "b", [0], [2])  # 4 examples together; the earliest pair of equals
    assert merge_pair(TABLE, [["a", "b"]])[:2] == ("a", "d")
    assert merge_pair({"x": [1, 1], "y": [1, 0]}, []) is None  # y wins nothing x does not


def tagged_task(n_eval=12):
    metric = lambda pred, ex: float(f"[{ex.input.split()[1]}]" in pred)  # noqa: E731
    examples = lambda n: [Example(f"item {i} here", "x") for i in range(n)]  # noqa: E731
    return Task("tags", "test", AnswerKind.EXACT, metric=metric,
                splits={"train": examples(16), "eval": examples(n_eval), "test": examples(n_eval),
                        "format": examples(3), "few_shot": examples(2)})


def tag_optimizer(request, i):
    """Scripted optimizer: a merge request gets the union of the tags it shows; any other request gets
    two tags that depend on the request's text (so a rerun asks and gets the same)."""
    text = last_user(request)
    if "Two prompts were written" in text:
        return "<START>merged " + " ".join(sorted(set(re.findall(r"\[\d+\]", text)))) + "<END>"
    k = (len(text) + 7 * i + request.seed) % 12
    return f"<START>try [{k}] [{(5 * k + 1) % 12}]<END>"


class KilledAfter(RunStore):
    """A run store whose process 'dies' right after its n-th checkpoint."""

    def __init__(self, run_dir, n):
        super().__init__(run_dir)
        self.n = n

    def save_state(self, task, state):
        super().save_state(task, state)
        self.n -= 1
        if self.n == 0:
            raise KeyboardInterrupt


def search(method, cfg, hooks):
    evaluator = Evaluator(echo_scorer(), second_round=False)
    opt = ScriptedLLM(script=tag_optimizer)
    return method_class(method)(cfg, opt, evaluator, None, hooks), opt


@pytest.mark.parametrize("method", ["gpo", "ape", "opro"])
def test_pareto_draws_are_seeded_and_a_killed_search_resumes_exactly(tmp_path, method):
    cfg = config(pool="pareto", merge=1, num_generated_instructions_in_each_step=2, opt_batch_size=4)
    whole, _ = search(method, cfg, RunStore(tmp_path / "whole"))
    expected = asyncio.run(whole.optimize(tagged_task()))
    killed, _ = search(method, cfg, KilledAfter(tmp_path / "resumed", 3))
    with pytest.raises(KeyboardInterrupt):
        asyncio.run(killed.optimize(tagged_task()))
    resumed, _ = search(method, cfg, RunStore(tmp_path / "resumed"))
    again = asyncio.run(resumed.optimize(tagged_task()))
    for field in ("final_prompt", "final_eval", "scorer_requests", "optimizer_samples", "proposals"):
        assert getattr(again, field) == getattr(expected, field), field
    assert expected.steps_done >= 3


def test_a_step_updates_a_frontier_prompt_not_only_the_best_mean(tmp_path):
    cfg = config(pool="pareto", num_generated_instructions_in_each_step=2, opt_batch_size=4, num_search_epochs=3)
    gpo, _ = search("gpo", cfg, RunStore(tmp_path / "run"))
    task = tagged_task()
    asyncio.run(gpo.optimize(task))
    state = gpo.hooks.load_state(task)
    updated = [s["current"] for s in state["trajectory"]["steps"]]
    best_so_far = [s["chosen"] for s in state["trajectory"]["steps"]][:-1]
    # with pool best GPO updates the prompt the last step chose; drawn from the frontier, not always
    assert any(u != chosen for u, chosen in zip(updated[1:], best_so_far))
    front = frontier(state["example_scores"])
    assert front and all(p in state["scores"] for p in front)


def test_merges_are_raced_like_any_candidate_and_paid_from_the_search_budget(tmp_path):
    cap = 120
    cfg = config(pool="pareto", merge=2, selection="race", num_generated_instructions_in_each_step=2,
                 opt_batch_size=4, budget={"scorer_calls_per_task": cap})
    gpo, opt = search("gpo", cfg, RunStore(tmp_path / "run"))
    task = tagged_task(n_eval=16)
    result = asyncio.run(gpo.optimize(task))
    state = gpo.hooks.load_state(task)
    merged = [c for s in state["trajectory"]["steps"] for c in s["candidates"] if c["merged"]]
    asked = [r for r in opt.requests if "Two prompts were written" in last_user(r)]
    assert 1 <= len(merged) == len(asked) == len(state["merged"]) <= 2
    assert all(c["score"] is not None or c["rejected"] for c in merged)  # scored, raced out or set aside
    assert any(c["score"] is not None for c in merged)
    assert result.scorer_requests <= cap
    assert result.optimizer_samples == sum(len(s["candidates"]) for s in state["trajectory"]["steps"])


def test_merge_needs_the_pareto_pool():
    from gpo.errors import ConfigError

    with pytest.raises(ConfigError, match="pool='pareto'"):
        config(merge=1)


POOL_METHODS = ["gpo", "ape", "apo", "opro", "pe2", "evoprompt-ga", "evoprompt-de", "gpo+demos"]


@pytest.mark.parametrize("method", POOL_METHODS)
def test_every_pool_method_keeps_the_search_budget_and_its_plan_with_pareto_merges_and_a_holdout(method):
    from test_search_budget import any_meta_prompt

    from fakes import plus_task
    from gpo.api import RunSpec
    from gpo.run.plan import plan

    cap = 70
    cfg = config(num_search_epochs=4, selection="race", pool="pareto", merge=2, final_holdout=0.2,
                 budget={"scorer_calls_per_task": cap})
    opt, scorer = ScriptedLLM(model="opt", script=any_meta_prompt), echo_scorer()
    task = plus_task(n_eval=20)
    result = asyncio.run(method_class(method)(cfg, opt, Evaluator(scorer, second_round=False)).optimize(task))
    assert result.scorer_requests <= cap and result.chosen_on == "holdout"
    planned = plan(RunSpec(config=cfg, method=method), [task])
    assert scorer.usage.calls <= planned["scorer_calls"]
    assert opt.usage.calls <= planned["optimizer_calls"]
