"""Racing selection through the real search loop, with scripted fakes (named as such).

The scripted scorer echoes its prompt. A candidate "acc=0.8" is right on eval
example i exactly when (i + 0.5) / 48 < 0.8, so the planted accuracies are
nested: the 0.2 candidate is right only where the 0.5 and 0.8 ones are too.
"""

import asyncio
import json
import re

import pytest

from fakes import ScriptedLLM, last_user
from gpo.config import GPOConfig
from gpo.llm import ResponseCache
from gpo.methods import METHODS
from gpo.methods.gpo.method import GPO
from gpo.run.store import RunStore
from gpo.scoring import Evaluator, PromptFormat
from gpo.scoring.racing import block_ends, example_order, race
from gpo.tasks import AnswerKind, Example, Task

N_EVAL = 48
CANDIDATES = ["acc=0.2", "acc=0.5", "acc=0.8"]


def planted_task(n_eval=N_EVAL):
    def metric(pred, ex):
        m = re.search(r"acc=([0-9.]+)", pred, re.I)
        return float(bool(m) and (int(ex.target) + 0.5) / n_eval < float(m.group(1)))

    ex = lambda n: [Example(f"item {i}", str(i)) for i in range(n)]
    return Task("planted", "test", AnswerKind.EXACT, metric=metric,
                splits={"train": ex(8), "eval": ex(n_eval), "test": ex(12), "format": ex(3)})


def optimizer(texts=CANDIDATES):
    return ScriptedLLM(model="opt", script=lambda r, i: f"<START>{texts[i]}<END>")


def echo(cache=None, fail_after=None):
    calls = {"n": 0}

    def script(request, i):
        calls["n"] += 1
        if fail_after is not None and calls["n"] > fail_after:
            raise Interrupt
        return last_user(request)

    return ScriptedLLM(model="echo", script=script, cache=cache)


class Interrupt(Exception):
    pass


def config(**kw):
    base = dict(num_search_epochs=1, opt_batch_size=8, num_generated_instructions_in_each_step=3,
                initial_instruction="start", momentum_para_name="-", momentum_selection_name="-",
                momentum_update_name="-", learning_rate_name="wo_lr", decay_strategy="-", train_probe=False,
                race_block=16)
    return GPOConfig(**{**base, **kw})


def run(cfg, scorer=None, hooks=None, opt=None):
    scorer = scorer or echo()
    gpo = GPO(cfg, opt or optimizer(), Evaluator(scorer, PromptFormat(), second_round=False), hooks=hooks)
    return asyncio.run(gpo.optimize(planted_task())), gpo, scorer


def candidates_of(hooks_dir):
    state = json.loads((hooks_dir / "tasks" / "test__planted" / "state.json").read_text())
    return {c["text"]: c for c in state["trajectory"]["steps"][0]["candidates"]}


def test_racing_stops_the_weak_candidate_after_the_first_block_and_picks_the_best(tmp_path):
    result, gpo, scorer = run(config(), hooks=RunStore(tmp_path / "race"))
    cands = candidates_of(tmp_path / "race")
    weak, mid, best = (cands[t.capitalize()] for t in CANDIDATES)
    assert weak["race_examples"] == 16 and weak["rejected"].startswith("stopped by racing after 16 examples")
    assert weak["score"] is None  # no eval score is recorded for a partially scored prompt
    assert mid["race_examples"] is not None and mid["race_examples"] < N_EVAL
    assert best["rejected"] is None and best["score"] == pytest.approx(38 / 48)  # a whole-split score
    assert result.final_prompt == "Acc=0.8" and result.final_eval == pytest.approx(38 / 48)
    # the stopped candidates' partial records are kept, on the examples they were scored on
    partial = list((tmp_path / "race" / "tasks" / "test__planted" / "evals" / "eval").glob("*-raced.jsonl"))
    assert len(partial) == 2
    assert result.selection == "race"

    full, gpo_full, scorer_full = run(config(selection="full"))
    assert full.final_prompt == result.final_prompt and full.final_eval == result.final_eval
    sent_race, sent_full = scorer.usage.calls, scorer_full.usage.calls
    # full: initial 48 + 3 x 48 on eval, 2 x 12 on test
    assert sent_full == 48 + 3 * 48 + 2 * 12
    assert sent_race <= sent_full - 32  # the weak one stopped at 16 of 48, the middle one early too
    assert result.scorer_requests == sent_race - 2 * 12  # the search counts only what racing sent


def test_full_scores_every_candidate_on_the_whole_split():
    result, gpo, scorer = run(config(selection="full"))
    task = planted_task()
    for text in ("Acc=0.2", "Acc=0.5", "Acc=0.8"):
        assert gpo.evaluator.requests_needed(task, text, "eval") == 0  # every eval example already scored
    assert result.scorer_requests == 48 * 4


def half_hopeless():
    """A fake optimizer whose samples alternate: a prompt that scores 1 on every plus-task
    example (ten '+'), then one that scores 0 (none)."""
    count = {"n": 0}

    def script(request, i):
        count["n"] += 1
        prompt = f"plus {'none' if count['n'] % 2 == 0 else '+' * 10} v{request.seed}-{i}"
        return f"<START>{prompt}<END>"

    return script


SEARCHING = [m for m, cls in METHODS.items() if m not in ("empty", "cot", "demos", "bootstrap", "gpo+demos")
             and cls.__module__.startswith("gpo.methods.baselines") or m in ("gpo", "sgdm")]
# the demonstration searches call no optimizer: tests/methods/test_demos.py races them


@pytest.mark.parametrize("method", SEARCHING)
def test_racing_applies_to_every_searching_method(method):
    """Behaviour, not structure: under selection=race a hopeless candidate stops after the
    first block of eval examples, and under full scoring the same run scores it in full."""
    from fakes import config, echo_scorer, plus_task
    from fakes import Recorder

    runs = {}
    for selection in ("race", "full"):
        opt, scorer = ScriptedLLM(model="opt", script=half_hopeless()), echo_scorer()
        cfg = config(num_search_epochs=1, selection=selection)
        options = {"apo": {"beam": 8}, "pe2": {"beam": 2}}.get(method)  # apo: no UCB cut before the race
        search = METHODS[method](cfg, opt, Evaluator(scorer, PromptFormat(), second_round=False), None, Recorder(),
                                 options=options)
        asyncio.run(search.optimize(plus_task(n_eval=48)))
        candidates = [c for st in search.hooks.states[-1]["trajectory"]["steps"] for c in st["candidates"]]
        runs[selection] = candidates
    raced = [c for c in runs["race"] if c["race_examples"] is not None]
    assert raced and all(c["race_examples"] < 48 and c["rejected"].startswith("stopped by racing") for c in raced)
    assert all("none" in c["text"] for c in raced)  # only hopeless ones stop
    assert not any(c["race_examples"] for c in runs["full"])
    assert any("none" in c["text"] and c["score"] == 0.0 for c in runs["full"])  # full scores them to the end


def test_race_on_stored_records_matches_block_schedule():
    n = 40
    scores = {"a": [1.0] * n, "b": [0.0] * n, "c": [1.0 if i % 2 else 0.0 for i in range(n)]}
    asked = []

    async def fetch(prompts, indices):
        asked.append((tuple(prompts), len(indices)))
        return {p: [scores[p][i] for i in indices] for p in prompts}

    result = asyncio.run(race(["a", "b", "c"], n, fetch, block=8, alpha=0.05, seed=1))
    assert block_ends(n, 8) == [8, 16, 24, 32, 40]
    assert block_ends(20, 3) == [8, 16, 20]  # blocks are never smaller than 8
    assert asked[0] == (("a", "b", "c"), 8)
    assert result.stopped["b"].examples == 8  # 8 of 8 discordant: p = 2/256 < 0.05/2
    assert result.finished == ["a"] and "c" in result.stopped
    assert asked[-1] == (("a",), n)  # a lone survivor goes straight to the whole split
    assert sorted(example_order(n, 1)) == list(range(n)) and example_order(n, 1) == example_order(n, 1)


def test_ties_and_equal_candidates_all_finish():
    n = 32
    same = [1.0 if i % 3 else 0.0 for i in range(n)]

    async def fetch(prompts, indices):
        return {p: [same[i] for i in indices] for p in prompts}

    result = asyncio.run(race(["x", "y", "z"], n, fetch, block=8))
    assert result.finished == ["x", "y", "z"] and not result.stopped
    assert result.examples_scored == 3 * n


def test_raced_step_interrupted_and_resumed_sends_no_request_twice(tmp_path):
    ref, _, ref_scorer = run(config(), scorer=echo(ResponseCache(tmp_path / "ref.sqlite")),
                             hooks=RunStore(tmp_path / "ref"))
    cache = tmp_path / "b.sqlite"
    first = echo(ResponseCache(cache), fail_after=48 + 40)  # initial prompt, then mid-way through the second block
    with pytest.raises(Interrupt):
        run(config(), scorer=first, hooks=RunStore(tmp_path / "b"))
    second = echo(ResponseCache(cache))  # as a new process would
    resumed, _, _ = run(config(), scorer=second, hooks=RunStore(tmp_path / "b"))
    assert resumed == ref
    sent = [json.dumps(r.messages) for r in first.requests + second.requests]
    answered_first = first.usage.calls
    assert answered_first > 48 and second.usage.cache_hits > 0
    assert len(set(sent)) == len(sent) - (len(first.requests) - answered_first)  # only the failed calls repeat
    assert answered_first + second.usage.calls == ref_scorer.usage.calls


def test_at_a_tight_search_budget_racing_admits_more_candidates_and_stays_within_it(tmp_path):
    # budget: the initial prompt (48) + 80. Full fits one candidate (48); a race of three needs at least
    # 48 + 2 x 16 = 80: the weak one stops after its first block, then the budget finishes only the leader.
    budget = {"scorer_calls_per_task": 48 + 80}
    full, _, _ = run(config(selection="full", budget=budget))
    raced, _, _ = run(config(budget=budget), hooks=RunStore(tmp_path / "tight"))
    assert full.final_prompt == "Acc=0.2"  # the only candidate full scoring could afford
    assert raced.final_prompt == "Acc=0.8" and raced.final_eval == pytest.approx(38 / 48)
    assert raced.scorer_requests <= 128 and full.scorer_requests <= 128
    cands = candidates_of(tmp_path / "tight")
    assert "budget could finish only the leader" in cands["Acc=0.5"]["rejected"]
    assert cands["Acc=0.2"]["race_examples"] == 16


def test_adopt_significant_keeps_the_initial_prompt_unless_the_gain_is_significant():
    # 0.2 beats the initial prompt (0 on every example) on 10 examples: significant (p = 2/2^10)
    one = dict(num_generated_instructions_in_each_step=1)
    won, _, _ = run(config(adopt="significant", **one), opt=optimizer(["acc=0.2"]))
    assert won.final_prompt == "Acc=0.2" and won.not_adopted is None
    assert won.eval_comparison["significant"] and won.adopt == "significant"
    # 0.07 is right on 3 examples of 48: better on eval, but not significantly (p = 2/2^3)
    kept, _, _ = run(config(adopt="significant", **one), opt=optimizer(["acc=0.07"]))
    assert kept.final_prompt == "start" and kept.final_eval == 0.0
    assert kept.not_adopted["prompt"] == "Acc=0.07" and kept.not_adopted["comparison"]["p"] == pytest.approx(0.25)
    assert kept.eval_comparison["diff"] == 0.0 and kept.test_comparison["diff"] == 0.0
    best, _, _ = run(config(adopt="best", **one), opt=optimizer(["acc=0.07"]))  # adopt=best takes the higher mean
    assert best.final_prompt == "Acc=0.07" and not best.eval_comparison["significant"]


def test_a_run_directory_from_before_racing_resumes_with_full(tmp_path):
    from gpo.api import RunSpec

    old = RunSpec().to_dict()
    del old["config"]["selection"]  # run.json as written before this option existed
    assert RunSpec.from_dict(old).config.selection == "full"
    assert RunSpec.from_dict(RunSpec().to_dict()).config.selection == "race"  # new runs keep theirs


def test_paper_presets_select_with_full_and_the_default_races():
    from gpo.config import PRESETS, preset

    assert preset("gpo").selection == "race" and preset("quickstart").selection == "race"
    assert all(preset(name).selection == "full" for name in PRESETS if name not in ("gpo", "quickstart"))
