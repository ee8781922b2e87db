"""The gain per request: after the initial scoring and each step, what the search had spent and
the best eval score so far, with its interval and its gain over the initial prompt; and the
requests spent when that gain first became significant. Scripted fakes (named as such): the
scorer echoes its prompt and an example counts as right when the prompt has at least as many
'+' as its target, so a prompt's eval score is its number of '+' (at most 10) / 10."""

import asyncio

from fakes import Recorder, ScriptedLLM, config, echo_scorer, plus_task, replies
from gpo.engine.outcome import outcome
from gpo.methods.gpo.method import GPO
from gpo.scoring import Evaluator, PromptFormat


def search(table, n_eval=40, epochs=2):
    hooks = Recorder()
    gpo = GPO(config(num_search_epochs=epochs, initial_instruction="Start"), ScriptedLLM(script=replies(table)),
              Evaluator(echo_scorer(), PromptFormat(), second_round=False), None, hooks)
    return asyncio.run(gpo.optimize(plus_task(n_eval=n_eval))), hooks


def test_the_curve_follows_the_steps_and_finds_where_the_gain_became_significant():
    # step 0 gains a little ('+', 10% of examples), step 1 a lot (8 '+': 80%), the rest nothing new
    table = [["a +", "b", "c", "d"], ["e ++++++++", "f", "g", "h"], ["a +", "b", "c", "d"], ["a +", "b", "c", "d"]]
    result, hooks = search(table)
    steps = [data for kind, data in hooks.events if kind == "step"]
    curve = result.curve
    assert len(curve) == 1 + len(steps) == 1 + result.steps_done
    assert [p["requests"] for p in curve[1:]] == [s["scorer_requests"] for s in steps]  # what each step had spent
    assert curve[0]["requests"] == 40 and curve[-1]["requests"] == result.scorer_requests
    assert [round(p["best"], 2) for p in curve] == [0.0, 0.1, 0.8, 0.8, 0.8]
    assert all(p["low"] <= p["best"] <= p["high"] for p in curve)
    assert not curve[1]["gain"]["significant"] and curve[2]["gain"]["significant"]  # 4 of 40 is not; 32 of 40 is
    assert result.requests_to_gain == curve[2]["requests"]
    assert outcome(result).curve == (f"gain per request: the best prompt was first significantly better than the "
                                     f"initial one on eval after {curve[2]['requests']} of the search's "
                                     f"{result.scorer_requests} scorer requests")


def test_a_search_that_never_gains_says_so_with_what_it_spent():
    result, _ = search([["a", "b", "c", "d"]] * 4)
    assert result.requests_to_gain is None and all(p["best"] == 0.0 for p in result.curve)
    assert outcome(result).curve == (f"gain per request: no significant gain on eval at any point of the search "
                                     f"({result.scorer_requests} scorer requests)")
