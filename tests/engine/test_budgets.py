"""Run budgets are hard caps held by the run's meter, and they hold across `gpo resume`.

Scripted fakes (named as such) for the control flow and real local HTTP servers for the
API-level runs; the quickstart case runs the embedded model through the `gpo` command."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import pytest

from fakes import ScriptedEndpoint, ScriptedLLM, config, echo_scorer, plus_task, replies
from gpo.api import ModelSpec, RunSpec, TaskSpec, optimize, resume
from gpo.config import Budget
from gpo.llm.meter import BudgetSpent, Meter
from gpo.methods.gpo.method import GPO
from gpo.scoring import Evaluator


def metered(meter, **roles):
    for role, llm in roles.items():
        llm.meter, llm.role = meter, role


def test_a_scorer_budget_stops_mid_step_at_exactly_the_cap():
    """Before the meter, the check fell between steps: with 15 allowed, the first step's
    train batch and candidate (18 more requests) were all sent."""
    opt, scorer = ScriptedLLM(script=replies([["x ++++"] * 4] * 3)), echo_scorer()
    meter = Meter(max_scorer_calls=15)
    metered(meter, optimizer=opt, scorer=scorer)
    cfg = config(num_generated_instructions_in_each_step=1, budget=Budget(max_scorer_calls=15))
    result = asyncio.run(GPO(cfg, opt, Evaluator(scorer, second_round=False), None, None, meter.exhausted)
                         .optimize(plus_task()))
    assert scorer.usage.calls == 15 and meter.spent["scorer"].calls == 15
    assert result.stopped == "scorer calls 15 of 15" and result.final_test is None
    assert result.final_prompt == "start"  # the interrupted step is dropped; the best so far stays


def test_concurrent_requests_cannot_overshoot_a_cap():
    meter = Meter(max_scorer_calls=5)
    scorer = ScriptedLLM(script=lambda r, i: "x", delay=0.05, concurrency=8)
    metered(meter, scorer=scorer)
    from gpo.llm import Request

    async def go():
        return await asyncio.gather(*(scorer.complete(Request.chat(f"q{i}")) for i in range(12)),
                                    return_exceptions=True)

    out = asyncio.run(go())
    assert sum(not isinstance(o, Exception) for o in out) == 5 == scorer.usage.calls
    assert all(isinstance(o, BudgetSpent) for o in out if isinstance(o, Exception))


def test_the_meter_refuses_the_next_call_once_tokens_or_cost_are_reached():
    from gpo.llm import Pricing, Request

    meter = Meter(max_tokens=30, max_cost=1.0)
    llm = ScriptedLLM(script=lambda r, i: "x", pricing=Pricing(1e5, 1e5))  # 15 tokens a call: $1.50
    metered(meter, scorer=llm)
    asyncio.run(llm.complete(Request.chat("a")))
    with pytest.raises(BudgetSpent, match=r"cost \$1.5000 of \$1.0"):
        asyncio.run(llm.complete(Request.chat("b")))


def test_the_meter_keeps_an_account_per_task_when_tasks_are_searched_together():
    from dataclasses import replace

    opt, scorer = ScriptedLLM(script=replies([["x ++++"] * 2] * 4), delay=0.001), echo_scorer()
    scorer.delay = 0.001  # the two searches interleave
    meter = Meter()
    metered(meter, optimizer=opt, scorer=scorer)
    evaluator = Evaluator(scorer, second_round=False)
    search = GPO(config(num_generated_instructions_in_each_step=2), opt, evaluator, None, None, meter.exhausted)
    small = replace(plus_task(n_train=8, n_eval=6), name="small")
    tasks = [plus_task(), small]

    async def both():
        return await asyncio.gather(*(search.optimize(t) for t in tasks))

    asyncio.run(both())
    big, little = (meter.task_spent(t.id) for t in tasks)
    assert big["scorer"]["calls"] == evaluator.requests[tasks[0].id] == 10 + 8 * 2 + 10 * 1 + 10 * 2
    assert little["scorer"]["calls"] == evaluator.requests[small.id] == 6 + 8 + 6 + 6 * 2
    assert big["optimizer"]["calls"] == 2 and little["optimizer"]["calls"] == 1
    for role in ("scorer", "optimizer"):
        assert big[role]["calls"] + little[role]["calls"] == meter.spent[role].calls
        assert big[role]["completion_tokens"] + little[role]["completion_tokens"] == meter.spent[role].completion_tokens
    restored = Meter()
    restored.restore(json.loads(json.dumps(meter.to_dict())))
    assert restored.task_spent(small.id) == little and restored.to_dict() == meter.to_dict()
    old = Meter()  # a meter.json written before per-task accounts: the run's roles only
    old.restore({"scorer": {"calls": 3, "samples": 3, "prompt_tokens": 30, "completion_tokens": 15, "cost": 0.5}})
    assert old.spent["scorer"].calls == 3 and old.cost["scorer"] == 0.5 and old.tasks == {}


@pytest.mark.parametrize("budget,field", [
    (Budget(max_scorer_calls=25), "scorer"),
    (Budget(max_optimizer_calls=1), "optimizer"),
    (Budget(max_tokens=300), "tokens"),
    (Budget(max_cost=0.002), "cost"),
])
def test_budgets_hold_across_resume(tmp_path, budget, field):
    """A run stopped by a budget, resumed: the resumed process sends nothing more, because
    the meter it restores already holds what the first process spent."""
    with ScriptedEndpoint() as scorer, ScriptedEndpoint() as opt:
        spec = RunSpec(
            tasks=TaskSpec(source="synthetic", tasks=["navigate"], sizes={"train": 4, "eval": 8, "test": 8}),
            config=config(initial_instruction="Think.", num_search_epochs=3, opt_batch_size=4,
                          num_generated_instructions_in_each_step=2, budget=budget),
            scorer=ModelSpec("m", base_url=scorer.url, price_prompt=10, price_completion=10),
            optimizer=ModelSpec("m", base_url=opt.url, price_prompt=10, price_completion=10),
        )
        (first,) = optimize(spec, tmp_path / "run")
        sent = len(scorer.bodies), len(opt.bodies)
        (again,) = resume(tmp_path / "run")
        assert (len(scorer.bodies), len(opt.bodies)) == sent  # the resume sent nothing
    assert first.stopped and again.stopped
    saved = json.loads((tmp_path / "run" / "meter.json").read_text())
    spent = saved["run"]
    assert saved["tasks"]["synthetic/navigate"] == spent  # one task: its account is the run's, across the resume
    # the meter never counts less than the servers received (a request cut off in flight by
    # the end of the run counts as spent: it may have been paid)
    assert spent["scorer"]["calls"] >= sent[0] and spent.get("optimizer", {}).get("calls", 0) >= sent[1]
    if field == "scorer":
        assert 0 < sent[0] <= 25 and spent["scorer"]["calls"] == 25
    elif field == "optimizer":
        assert sent[1] == 1
    elif field == "tokens":
        tokens = sum(r["prompt_tokens"] + r["completion_tokens"] for r in spent.values())  # of answers received
        # tokens are known only when a call returns: the calls in flight when the cap was
        # reached (at most 8, the endpoint's concurrency; 10 or 13 tokens each) still count
        assert 300 <= tokens < 300 + 8 * 13
    else:
        assert 0.002 <= sum(r["cost"] for r in spent.values()) < 0.002 + 8 * 0.00013  # $10 per million tokens


@pytest.mark.model  # the quickstart on the embedded model, in gpo processes
def test_quickstart_with_a_scorer_budget_sends_at_most_that_many_requests_across_a_resume(tmp_path):
    run = tmp_path / "run"
    gpo = [sys.executable, "-m", "gpo.cli"]
    # 100: the initial prompt's eval scoring (32 examples, two rounds) fits, the search does not
    first = subprocess.run(gpo + ["optimize", "--max-scorer-calls", "100", "--progress", "quiet", "--run-dir", str(run)],
                           capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stderr
    again = subprocess.run(gpo + ["resume", str(run), "--progress", "quiet"], capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    starts = [i for i, e in enumerate(events) if e["event"] == "run_start"]
    assert len(starts) == 2
    per_process = []
    for a, b in zip(starts, starts[1:] + [len(events)]):
        usage = [e for e in events[a:b] if e["event"] == "usage"]
        per_process.append(usage[-1]["scorer"]["calls"] if usage else 0)
    assert per_process[0] == 100 and per_process[1] == 0
    # where the cap falls (mid-step, between steps, before test scoring) depends on how many
    # proposals the model's replies leave to score, which differs between machines; that the
    # run stopped on it does not (the mid-step stop at the cap: the scripted tests above)
    assert [e for e in events if e["event"] == "budget_stop"]


def test_a_step_cut_short_keeps_no_half_changed_state_with_hooks_that_keep_nothing():
    """With the library's default hooks (nothing kept), a mid-step budget stop restores the
    state from before that step: the step's candidates are not in the search's memory."""
    from gpo.engine.hooks import NoHooks

    class Saves(NoHooks):  # sees each checkpoint, keeps nothing (load_state is None)
        def __init__(self):
            self.states = []

        def save_state(self, task, state):
            self.states.append(json.loads(json.dumps(state)))

    opt = ScriptedLLM(script=replies([["x +", "y ++", "z +++"], ["w ++++", "v +++++", "u"]]))
    scorer = echo_scorer()
    meter = Meter(max_scorer_calls=10 + 8 + 30 + 8 + 15)  # step 1 is cut short while scoring its candidates
    metered(meter, optimizer=opt, scorer=scorer)
    hooks = Saves()
    cfg = config(num_generated_instructions_in_each_step=3, num_search_epochs=2)
    result = asyncio.run(GPO(cfg, opt, Evaluator(scorer, second_round=False), None, hooks, meter.exhausted)
                         .optimize(plus_task()))
    assert result.stopped and result.steps_done == 1
    after_step_0, final = hooks.states[-2], hooks.states[-1]
    assert after_step_0["next_step"] == 1
    assert {k: v for k, v in final.items() if k not in ("done", "result")} == \
           {k: v for k, v in after_step_0.items() if k not in ("done", "result")}
    assert not any(text in final["seen"] for text in ("W ++++", "V +++++"))  # step 1's candidates are dropped


@pytest.mark.parametrize("latency", [0.05, 0.2])
def test_requests_in_flight_when_a_budget_stops_the_run_are_counted(tmp_path, latency):
    """When one request of a batch is refused by the budget, its siblings already sent finish
    (and are counted and cached) before the step is dropped and the run closes its clients:
    before, the run closed the HTTP client under them, the meter released them as unsent
    although the server had them, and the resume sent more than the cap."""
    with ScriptedEndpoint(latency=latency) as scorer, ScriptedEndpoint() as opt:
        spec = RunSpec(
            tasks=TaskSpec(source="synthetic", tasks=["navigate"], sizes={"train": 4, "eval": 8, "test": 8}),
            config=config(initial_instruction="Think.", num_search_epochs=3, opt_batch_size=4,
                          num_generated_instructions_in_each_step=2, budget=Budget(max_scorer_calls=21)),
            scorer=ModelSpec("m", base_url=scorer.url), optimizer=ModelSpec("m", base_url=opt.url),
        )
        (first,) = optimize(spec, tmp_path / "run")
        sent = len(scorer.bodies)
        counted = json.loads((tmp_path / "run" / "meter.json").read_text())["run"]["scorer"]["calls"]
        (again,) = resume(tmp_path / "run")
        assert len(scorer.bodies) == sent  # the resume sent nothing
    assert first.stopped and again.stopped
    assert counted == sent == 21
