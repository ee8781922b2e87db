"""Baseline optimizers' control flow with a scripted fake optimizer and scorer (named as such).

The scorer echoes its prompt and the "plus" task gives an example credit when the
instruction holds at least as many '+' as the example's target, so a prompt's eval
score is its number of '+' (capped at 10) / 10. The scripted optimizer answers
each baseline's meta-prompt by kind, adding '+' so that better prompts exist.
"""

import asyncio
import re

import pytest

from fakes import Recorder, ScriptedLLM, last_user
from gpo.config import ConfigError, GPOConfig
from gpo.llm import ResponseCache
from gpo.methods import METHODS, method_class
from gpo.methods.gpo.schedule import StepSizeSchedule
from gpo.run.store import RunStore
from gpo.scoring import Evaluator, PromptFormat
from fakes import echo_scorer, plus_task


def config(**kw):
    base = dict(adopt="best", repair=0, num_search_epochs=1, opt_batch_size=8, num_generated_instructions_in_each_step=4,
                initial_instruction="start", momentum_para_name="-", momentum_selection_name="-",
                momentum_update_name="-", learning_rate_name="wo_lr", decay_strategy="-")
    return GPOConfig(**{**base, **kw})


def after(label: str, text: str) -> str:
    return re.search(rf"{label}\s*(.*)", text).group(1).strip()


def optimizer_script(request, i):
    """A fake optimizer that answers every baseline's meta-prompt in kind."""
    text = last_user(request)
    if "What was the instruction?" in text:  # APE induction
        return f"<START>induced {len(request.messages)}{request.seed % 7} " + "+" * (1 + request.seed % 3) + "<END>"
    if text.startswith("Rewrite the following instruction"):  # paraphrase
        return f"<START>{after('Instruction:', text)} v{i}+<END>"
    if "Give 2 different reasons" in text:  # APO gradient
        return "<START>too few plus signs<END> <START>not enough plus<END>"
    if "Write an improved prompt that fixes" in text:  # APO edit
        return f"<START>{after('The prompt is:', text)} ++ {i}<END>"
    if text.startswith("A prompt engineering task"):  # PE2
        current = re.search(r"The current prompt, with score [\d.]+:\n(.*)", text).group(1)
        return f"1. No, the output is wrong. 2. ... <START>{current} +{i}+<END>"
    if "Cross over the two prompts" in text:  # EvoPrompt GA
        return f"<START>{after('Prompt 1:', text)} x {after('Prompt 2:', text)}<END>"
    if "Find the parts in which" in text:  # EvoPrompt DE
        return f"<START>{after('Basic prompt:', text)} +d{i}<END>"
    if "scores higher than all of them" in text:  # OPRO: extend the best (last) prompt
        prompts = re.findall(r"^Prompt: (.*)$", text, re.M)
        return f"<START>{prompts[-1]} +{request.seed % 5}{i}<END>"
    if "works better in place of" in text:  # GPO's update
        current = re.search(r"The current prompt is:\n(.*)", text).group(1)
        return f"<START>{current} +{request.seed % 5}{i}<END>"
    raise AssertionError(f"unexpected meta-prompt: {text[:80]}")


def run(method, cfg=None, options=None, task=None, hooks=None, opt=None, scorer=None):
    cfg = cfg or config()
    opt = opt or ScriptedLLM(model="opt", script=optimizer_script)
    scorer = scorer or echo_scorer()
    hooks = hooks or Recorder()
    evaluator = Evaluator(scorer, PromptFormat(), second_round=False)
    search = method_class(method)(cfg, opt, evaluator, None, hooks, options=options)
    result = asyncio.run(search.optimize(task or plus_task()))
    return result, hooks, opt, scorer, evaluator


def steps(hooks):
    return hooks.states[-1]["trajectory"]["steps"]


def test_registry_names_aliases_and_bad_options():
    assert set(METHODS) == {"gpo", "ape", "apo", "opro", "pe2", "sgdm", "evoprompt-ga", "evoprompt-de", "empty", "cot",
                            "demos", "bootstrap", "gpo+demos", "gepa", "capo", "pl-opro", "pl-evoprompt-ga"}
    assert method_class("ProTeGi") is METHODS["apo"] and method_class("evoprompt") is METHODS["evoprompt-ga"]
    with pytest.raises(ConfigError, match="did you mean opro"):
        method_class("oprp")
    with pytest.raises(ConfigError, match="has no option 'bem'.*did you mean beam"):
        METHODS["apo"].parse_options({"bem": 2})
    with pytest.raises(ConfigError, match="expected int"):
        METHODS["apo"].parse_options({"beam": "wide"})
    assert METHODS["apo"].parse_options({"beam": "2"}).beam == 2  # CLI strings are converted


@pytest.mark.parametrize("method, prompt", [("empty", ""), ("cot", "Let's think step by step.")])
def test_fixed_rows_score_one_prompt_and_never_call_the_optimizer(method, prompt):
    result, hooks, opt, scorer, _ = run(method, config(num_search_epochs=3))
    assert opt.requests == [] and result.steps_done == 0 and result.total_steps == 0
    assert result.initial_prompt == result.final_prompt == prompt
    assert result.final_test == result.initial_test is not None
    assert result.scorer_requests == 10  # eval only; the test split is not search spending


def test_ape_induces_from_different_demos_then_resamples_the_best():
    result, hooks, opt, _, _ = run("ape", config(num_search_epochs=2), options={"keep": 2, "demos": 3})
    induce = [last_user(r) for r in opt.requests if "What was the instruction?" in last_user(r)]
    assert len(induce) == 4  # N = 4 requests at step 0, each with its own random demos
    demos = {tuple(re.findall(r"Input: (item \d+)", t)) for t in induce}
    assert len(demos) > 1 and all(len(d) == 3 for d in demos)
    s0, s1 = steps(hooks)[0], steps(hooks)[2]  # 16 train / batch 8 = 2 steps per epoch
    pool_after_s0 = sorted(
        (c for c in s0["candidates"] + [{"text": "start", "score": 0.0, "rejected": None}] if c["rejected"] is None),
        key=lambda c: -c["score"])[:2]
    paraphrased = [after("Instruction:", last_user(r)) for r in opt.requests
                   if last_user(r).startswith("Rewrite") and r.seed]
    # step 1 paraphrases exactly the best `keep` prompts
    assert set(paraphrased[:2]) == {c["text"] for c in pool_after_s0}
    assert s1["global_step"] == 2
    assert result.final_eval == max(p["score"] for p in hooks.states[-1]["trajectory"]["points"])


def test_opro_shows_history_ascending_capped_and_asks_once_for_n():
    result, hooks, opt, _, _ = run("opro", config(num_search_epochs=2), options={"history": 3})
    metas = [r for r in opt.requests if "scores higher than all of them" in last_user(r)]
    assert len(metas) == 4 and all(r.n == 4 for r in metas)  # one request per step, N samples
    last = last_user(metas[-1])
    scores = [float(s) for s in re.findall(r"^Score: ([\d.]+)$", last, re.M)]
    assert len(scores) == 3 and scores == sorted(scores)  # the top 3 so far, best last
    top3 = sorted(hooks.states[3]["scores"].values(), reverse=True)[:3]  # saved after step 2
    assert sorted(scores, reverse=True) == [round(100 * s, 1) for s in top3]
    exemplar_sets = {tuple(re.findall(r"(item \d+)", last_user(r))) for r in metas}
    assert len(exemplar_sets) > 1  # exemplars are drawn afresh each step
    assert result.final_eval > result.initial_eval


def test_apo_gradients_edits_paraphrases_and_ucb_keeps_the_beam():
    opts = {"beam": 2, "gradients": 2, "edits": 1, "paraphrases": 1, "bandit_batch": 3, "bandit_rounds": 2}
    result, hooks, opt, _, ev = run("apo", config(num_search_epochs=1), options=opts)
    s0 = steps(hooks)[0]
    kinds = [last_user(r).split("\n")[0] for r in opt.requests]
    assert kinds[:1] == ["Your job is to find out why a prompt fails."]  # one gradient for the one beam prompt
    assert kinds[1:3] == ["Your job is to improve a prompt."] * 2  # one edit per reason
    assert s0["gradient"] == "Too few plus signs\n\nNot enough plus"  # both reasons, polished
    texts = [c["text"] for c in s0["candidates"]]
    assert texts[:2] == ["Start ++ 0", "Start ++ 0"]  # 2 edits (the fake ignores the reason)...
    assert s0["candidates"][1]["rejected"] == "duplicate in this step"
    assert texts[2:] == ["Start ++ 0 v0+", "Start ++ 0 v0+"]  # ...and a paraphrase of each
    kept = [c for c in s0["candidates"] if c["rejected"] is None]
    dropped = [c for c in s0["candidates"] if (c["rejected"] or "").startswith("dropped by UCB")]
    assert len(kept) <= 2 and dropped, s0["candidates"]
    assert len(hooks.states[-1]["pool"]) == 2
    # dropped candidates were never scored on the whole eval split, kept ones were
    for c in dropped:
        assert c["score"] is None and c["text"] not in hooks.states[-1]["scores"]
    for c in kept:
        assert c["score"] == hooks.states[-1]["scores"][c["text"]]
    assert result.final_eval >= result.initial_eval


def test_pe2_reasons_over_failures_with_a_step_size_and_expands_the_beam():
    result, hooks, opt, _, _ = run("pe2", config(num_search_epochs=2), options={"beam": 2, "step_size": 7})
    metas = [last_user(r) for r in opt.requests]
    assert all(m.startswith("A prompt engineering task") for m in metas)
    assert "Change at most 7 words" in metas[0] and "Wrong prediction:" in metas[0]
    assert "Is it necessary to edit the prompt?" in metas[0]
    assert opt.requests[0].n == 4  # one beam prompt at step 0: all N edits from it
    later = [r for r in opt.requests[1:]]
    assert {r.n for r in later} == {2} and len(later) % 2 == 0  # two beam prompts, N / 2 each
    assert len(hooks.states[-1]["pool"]) == 2
    assert result.final_eval > result.initial_eval


def test_pe2_step_size_follows_gpos_schedule_and_a_bad_decay_is_named():
    _, _, opt, _, _ = run("pe2", config(num_search_epochs=2),
                          options={"beam": 1, "step_size": 40, "decay": "linear", "final_step_size": 10})
    budgets = [int(re.search(r"Change at most (\d+) words", last_user(r)).group(1)) for r in opt.requests]
    assert budgets == StepSizeSchedule("linear", 40, 10, 4).values()  # 2 epochs x 2 steps, one request each
    assert budgets == [32, 25, 17, 10]
    with pytest.raises(ConfigError, match="option decay: unknown decay strategy 'steep'"):
        run("pe2", config(), options={"decay": "steep"})


def test_evoprompt_ga_initialises_then_breeds_from_the_population():
    result, hooks, opt, _, _ = run("evoprompt-ga", config(num_search_epochs=2), options={"population": 3})
    first = opt.requests[0]
    assert last_user(first).startswith("Rewrite") and first.n == 2  # population 3 = initial + 2 paraphrases
    s0, s1 = steps(hooks)[0], steps(hooks)[1]
    population = {c["text"] for c in s0["candidates"] if c["rejected"] is None} | {"start"}
    crosses = [last_user(r) for r in opt.requests if "Cross over" in last_user(r)][:4]
    assert len(crosses) == 4  # N children per step
    for text in crosses:
        assert after("Prompt 1:", text) in population and after("Prompt 2:", text) in population
    final_pool = hooks.states[-1]["pool"]
    assert len(final_pool) == 3
    scores = hooks.states[-1]["scores"]
    assert [scores[p] for p in final_pool] == sorted((scores[p] for p in final_pool), reverse=True)
    assert min(scores[p] for p in final_pool) >= max(
        sorted(scores.values(), reverse=True)[3:] or [0])  # the best 3 survive
    assert s1["candidates"]


def test_evoprompt_de_replaces_a_member_only_with_a_better_child():
    result, hooks, opt, _, _ = run("evoprompt-de", config(num_search_epochs=2), options={"population": 3})
    de = [last_user(r) for r in opt.requests if "Find the parts" in last_user(r)]
    assert len(de) == 3 * 3  # one child per member, steps 1..3
    before = hooks.states[1]["pool"]  # after initialisation
    assert all(after("Prompt 3:", t) == hooks.states[1]["pool"][0] for t in de[:3])  # the best member
    assert [after("Basic prompt:", t) for t in de[:3]] == before
    # children "p +dI" have one more '+' than their basic prompt, so each replaces its parent
    after_step = hooks.states[2]["pool"]
    assert all(p.endswith(("+d0",)) for p in after_step)
    assert result.final_eval > result.initial_eval


@pytest.mark.parametrize("method", ["ape", "apo", "opro", "pe2", "evoprompt-ga", "evoprompt-de", "gpo"])
def test_equal_search_budget_is_respected_and_the_final_prompt_is_tested(method):
    cfg = config(num_search_epochs=10, budget={"scorer_calls_per_task": 47})
    result, hooks, opt, scorer, ev = run(method, cfg, options={"beam": 2} if method in ("apo", "pe2") else None)
    assert result.scorer_requests <= 47
    assert result.scorer_requests >= 47 - 10  # stops only when one more eval scoring would not fit
    assert result.search_ended and "scorer budget spent" in result.search_ended
    assert result.steps_done < result.total_steps
    assert result.final_test is not None  # a search budget is not a run stop: the final prompt is tested
    assert ev.requests["test/plus"] == result.scorer_requests + (10 if result.final_prompt == "start" else 20)


def test_baseline_resumes_after_an_interrupt_to_the_same_result(tmp_path):
    class Interrupt(Exception):
        pass

    def fresh(path):
        cache = ResponseCache(path)
        return ScriptedLLM(model="opt", script=optimizer_script, cache=cache), echo_scorer(cache)

    cfg = config(num_search_epochs=2)
    opts = {"beam": 2}
    opt, scorer = fresh(tmp_path / "a.sqlite")
    ref, *_ = run("pe2", cfg, opts, hooks=RunStore(tmp_path / "a"), opt=opt, scorer=scorer)

    class Dying(RunStore):
        def save_state(self, task, state):
            super().save_state(task, state)
            if state["next_step"] == 2:
                raise Interrupt

    opt1, scorer1 = fresh(tmp_path / "b.sqlite")
    with pytest.raises(Interrupt):
        run("pe2", cfg, opts, hooks=Dying(tmp_path / "b"), opt=opt1, scorer=scorer1)
    opt2, scorer2 = fresh(tmp_path / "b.sqlite")
    again, *_ = run("pe2", cfg, opts, hooks=RunStore(tmp_path / "b"), opt=opt2, scorer=scorer2)
    assert again.as_dict() == ref.as_dict()  # the same prompts, scores and spending
    assert opt1.usage.calls + opt2.usage.calls == opt.usage.calls  # no optimizer call paid twice
