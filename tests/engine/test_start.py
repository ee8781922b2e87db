"""Where a search starts (issue 36): the headroom check before it, and a probe prompt that beats
the initial prompt significantly as its starting point. Scripted fakes (named as such): the scorer
echoes its prompt, and an example counts as right when the prompt asks for "the answer only", as
the answer-format probe of this exact-answer task does; the optimizer replies from a table."""

import asyncio

from fakes import Recorder, ScriptedLLM, config, echo_scorer, plus_task, replies
from gpo.engine.outcome import outcome
from gpo.methods.gpo.method import GPO
from gpo.scoring import Evaluator, PromptFormat
from gpo.scoring.headroom import format_instruction

TABLE = [["a", "b", "c", "d"]] * 4  # proposals that never ask for the answer only


def answer_only_task(n_eval=40):
    task = plus_task(n_eval=n_eval)
    task.metric = lambda prediction, example: float("answer only" in prediction)
    return task


def search(probe: bool, task=None):
    hooks, optimizer = Recorder(), ScriptedLLM(script=replies(TABLE))
    evaluator = Evaluator(echo_scorer(), PromptFormat(), second_round=False)
    gpo = GPO(config(initial_instruction="Start", probe=probe), optimizer, evaluator, None, hooks)
    task = task or answer_only_task()
    return asyncio.run(gpo.optimize(task)), hooks, optimizer, evaluator.requests[task.id]


def test_a_probe_better_than_the_initial_prompt_is_where_the_search_starts():
    result, hooks, optimizer, requests = search(probe=True)
    start = format_instruction(answer_only_task())
    (headroom,) = [data for kind, data in hooks.events if kind == "headroom"]
    assert headroom["moves"] and headroom["best"] == "answer format" and headroom["started_from"] == "answer format"
    assert result.started_from == "answer format" and result.headroom["verdict"] == headroom["verdict"]
    assert result.initial_prompt == "Start" and result.final_prompt == start  # gains are still from the initial prompt
    first_update = next(r for r in optimizer.requests if "Put the new prompt between" in r.messages[-1][1])
    assert start in first_update.messages[-1][1]  # the first step updates the probe's prompt
    line = outcome(result).headroom
    assert line.startswith("before the search: headroom: prompts move this model") and line.endswith(
        "the search started from that probe (answer format)")
    assert outcome(result).lines()[0] == line
    assert result.curve[0]["best"] == 1.0 and result.requests_to_gain == result.curve[0]["requests"]  # from the start
    assert outcome(result).curve.startswith("gain per request: the search started from a probe already")
    without, _, _, requests_without = search(probe=False)
    assert without.final_prompt == "Start" and requests_without == without.scorer_requests + 40  # one prompt on test
    # the check's requests are outside the search budget: its sample (5 prompts on 32 examples), then the
    # start on the rest of eval (a prompt is never scored twice on one example in a run)
    assert headroom["n"] == 32 and headroom["requests"] == 5 * 32
    assert requests == result.scorer_requests + headroom["requests"] + (40 - 32) + 2 * 40
    state = GPO.State.from_dict(hooks.states[-1])  # a resumed search keeps where it started
    assert state.started_from == "answer format" and state.headroom["best"] == "answer format"


def test_without_the_probe_the_search_starts_from_the_initial_prompt():
    result, hooks, _, _ = search(probe=False)
    assert not [kind for kind, _ in hooks.events if kind == "headroom"]
    assert result.headroom is None and result.started_from is None and outcome(result).headroom is None


def test_a_probe_that_is_not_significantly_better_is_shown_but_not_started_from():
    task = answer_only_task()
    task.metric = lambda prediction, example: 0.0  # no prompt moves this scorer
    result, hooks, _, _ = search(probe=True, task=task)
    assert result.started_from is None and not result.headroom["moves"]
    assert outcome(result).headroom.startswith("before the search: no measurable headroom")
