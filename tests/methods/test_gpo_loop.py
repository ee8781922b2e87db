"""GPO's control flow with a scripted fake optimizer and scorer (named as such).

The scorer echoes its prompt; the task's metric gives an example credit when the
instruction has at least as many '+' as the example's target, so a prompt's eval
score is (number of '+', capped at 10) / 10. The optimizer replies from a script.
"""

import asyncio

import pytest

from fakes import HashEmbedder, ScriptedLLM, config, echo_scorer, last_user, plus_task, replies  # noqa: F401
from gpo.config import Budget, ConfigError
from gpo.llm import ResponseCache
from gpo.methods.gpo.method import GPO
from gpo.engine.hooks import NoHooks
from gpo.run.store import RunStore
from gpo.scoring import Evaluator, PromptFormat


def run(cfg, optimizer, scorer=None, task=None, hooks=None, embedder=None):
    scorer = scorer or echo_scorer()
    gpo = GPO(cfg, optimizer, Evaluator(scorer, PromptFormat(), second_round=False), embedder, hooks)
    return asyncio.run(gpo.optimize(task or plus_task())), gpo, scorer


def test_dedup_in_generation_order_and_selection_rule():
    table = [["a ++", "b +++", "a ++", "<START>c +<END>"], ["b +++", "a ++", "d", "d"]]
    store = NoHooks()
    states = []
    store.save_state = lambda task, state: states.append(state)
    opt = ScriptedLLM(script=replies(table))
    result, gpo, scorer = run(config(), opt, hooks=store)
    steps = states[-1]["trajectory"]["steps"]
    c0 = steps[0]["candidates"]
    assert [c["text"] for c in c0] == ["A ++", "B +++", "A ++", "C +"]
    assert [c["rejected"] for c in c0] == [None, None, "duplicate in this step", None]
    assert steps[0]["chosen"] == "B +++" and steps[0]["chosen_score"] == pytest.approx(0.3)
    c1 = steps[1]["candidates"]
    assert [c["reused"] for c in c1][:2] == [True, True]  # re-seen: their stored scores, no new scoring
    assert c1[1]["score"] == pytest.approx(0.2)
    # B +++ was already chosen (and is U); the best not chosen before is A ++
    assert steps[1]["chosen"] == "A ++"
    assert [p["prompt"] for p in states[-1]["trajectory"]["points"]] == ["start", "B +++", "A ++"]
    assert result.final_prompt == "B +++" and result.final_eval == pytest.approx(0.3)
    # scored on eval: start, A, B, C (step 0), D (step 1) = 5 prompts x 10; train: 2 x 8; test: 2 x 10
    assert scorer.usage.calls == 5 * 10 + 2 * 8 + 2 * 10
    assert opt.usage.calls == 2 and opt.usage.samples == 8  # one call with n = N per step


def test_a_small_optimizer_is_asked_with_the_short_meta_prompt():
    """optimizer_size='small': GPO's update shows the train examples as input -> output, the
    current instruction and the gradient, asks for one sentence, and names no prompt, placeholder,
    score or tag for a small model to copy; a reply without tags is read as the one sentence
    asked for (what a lead-in introduces, then its first sentence), not whole."""
    def script(request, i):  # a scripted fake optimizer: the gradient, then instructions with talk around them
        text = last_user(request)
        if not text.startswith("Examples:"):
            return "It is too short."
        later = "Old instruction: start" not in text
        body = f"Add {'more ' * later}plus signs: {'+' * (3 + i + later)}"
        if i % 2:
            return f'Here is the new instruction: "{body}"\nThis instruction adds signs.'
        return f"{body} now. The old instruction had fewer."

    opt = ScriptedLLM(script=script)
    cfg = config(optimizer_size="small", gradient_name="feedback", util_gradient_name="generate", num_search_epochs=2)
    result, _, _ = run(cfg, opt, task=plus_task(n_train=8))
    metas = [last_user(r) for r in opt.requests if last_user(r).startswith("Examples:")]
    assert len(metas) == 2 and metas[0].startswith("Examples:\nitem 0 -> 1\nitem 1 -> 2\n")
    assert "\n\nOld instruction: start\nProblems found with it: It is too short.\n" in metas[0]
    assert "\n\nOld instruction: Add plus signs: ++++++\n" in metas[1]  # the step's choice is the next's old one
    for meta in metas:
        assert meta.endswith("\nWrite a new instruction for turning each input into its output. Reply with the new "
                             "instruction only, in one sentence.")
        assert not any(w in meta.lower() for w in ("prompt", "<start>", "score", "change at most"))
    # every reply was usable as read, none asked for again (taken whole, each talks about the instruction
    # and would be set aside): 2 gradients and 2 updates were asked
    assert result.usable_proposals == 8 and len(opt.requests) == 4
    assert result.final_prompt == "Add more plus signs: +++++++"


def test_the_library_asks_with_the_papers_meta_prompt_unless_told_small():
    metas = []
    for size in (None, "large"):
        opt = ScriptedLLM(script=replies([["a +"] * 4]))
        run(config(optimizer_size=size), opt)
        metas.append(last_user(opt.requests[0]))
    assert metas[0] == metas[1] and "<Prompt>" in metas[0] and metas[0].endswith("between <START> and <END>.")


def test_initial_prompt_is_not_reselected_and_fallback_uses_real_scores():
    table = [["zero", "zero", "<Prompt> leak", ""], ["start +", "zero", "zero", "zero"]]
    states = []
    hooks = NoHooks()
    hooks.save_state = lambda t, s: states.append(s)
    result, _, _ = run(config(initial_instruction="Start +"), ScriptedLLM(script=replies(table)), hooks=hooks)
    steps = states[-1]["trajectory"]["steps"]
    assert [c["rejected"] for c in steps[0]["candidates"]] == [None, "duplicate in this step", "copies the meta-prompt's scaffolding (the <prompt> tag)", "empty"]
    assert steps[0]["chosen"] == "Zero"  # I0 scores more, but it counts as chosen already
    # step 1: nothing new; every pool entry was chosen before: fall back to the top, with its real score
    assert steps[1]["candidates"][0]["reused"]  # the initial prompt, generated again: its stored score
    assert steps[1]["chosen"] == "Start +" and steps[1]["chosen_score"] == pytest.approx(0.1)
    assert result.final_prompt == "Start +"


def test_budget_stop_returns_best_so_far():
    table = [["x ++++"] * 4, ["y +"] * 4]
    cfg = config(num_generated_instructions_in_each_step=1, budget=Budget(max_optimizer_calls=1))
    from gpo.llm.meter import Meter

    opt, scorer = ScriptedLLM(script=replies(table)), echo_scorer()
    meter = Meter(max_optimizer_calls=1)
    opt.meter, opt.role, scorer.meter, scorer.role = meter, "optimizer", meter, "scorer"
    gpo = GPO(cfg, opt, Evaluator(scorer, second_round=False), None, None, meter.exhausted)
    result = asyncio.run(gpo.optimize(plus_task()))
    assert result.stopped and "optimizer calls" in result.stopped
    assert result.steps_done == 1 and result.total_steps == 2
    assert result.final_prompt == "X ++++" and opt.usage.calls == 1
    assert result.final_test is None  # a budget stop spends nothing more on test scoring
    assert scorer.usage.calls == 10 + 8 + 10  # initial eval, one train batch, one candidate


def test_edit_budget_reject_and_resample():
    table = [["start one two three four five"] * 4, ["start plus"] * 4, ["start more"] * 4]
    cfg = config(initial_instruction="Start", learning_rate_name="w_lr", decay_strategy="fixed", initial_step_size=2, final_step_size=0,
                 edit_budget_enforcement="resample", max_resample_rounds=1, num_search_epochs=1,
                 num_generated_instructions_in_each_step=1)
    states = []
    hooks = NoHooks()
    hooks.save_state = lambda t, s: states.append(s)
    opt = ScriptedLLM(script=replies(table))
    run(cfg, opt, task=plus_task(n_train=8), hooks=hooks)
    cands = states[-1]["trajectory"]["steps"][0]["candidates"]
    assert cands[0]["rejected"] == "changes 5 words, budget 2" and cands[0]["edit_distance"] == 5
    assert cands[1]["text"] == "Start plus" and cands[1]["rejected"] is None
    seeds = [r.seed for r in opt.requests]
    assert len(seeds) == 2 and seeds[0] != seeds[1]  # the resample is a fresh draw


def test_k_list_relevance_momentum_shows_selected_prompts():
    table = [["alpha +", "beta ++", "gamma", "delta"], ["alpha beta +++", "x", "y", "z"], ["q", "r", "s", "t"]]
    cfg = config(momentum_para_name="para", momentum_selection_name="relevance", momentum_selection_num=2,
                 momentum_update_name="k-list", num_search_epochs=2)
    opt = ScriptedLLM(script=replies(table))
    run(cfg, opt, task=plus_task(n_train=8), embedder=HashEmbedder())
    metas = [last_user(r) for r in opt.requests]
    assert "Prompt: start\nScore: 0.0" in metas[0]
    # step 1: newest (Beta ++) plus the most similar older entry
    assert metas[1].index("Prompt: Beta ++") < metas[1].index("Prompt: start")
    assert "earlier prompts" in metas[1]


def test_real_time_momentum_scores_the_summary_it_made():
    table = [["a +"] * 4, ["b ++"] * 4, ["c"] * 4]
    cfg = config(momentum_para_name="para", momentum_update_name="real-time", num_search_epochs=2)
    opt, scorer = ScriptedLLM(script=replies(table)), echo_scorer()
    run(cfg, opt, scorer=scorer, task=plus_task(n_train=8))
    scored = {last_user(r).split("\n")[-1] for r in scorer.requests}
    assert "Summary ++" in scored  # M was scored (the original scored U instead)
    metas = [last_user(r) for r in opt.requests if "Put the new prompt" in last_user(r)]
    assert "Prompt: Summary ++\nScore: 20.0" in metas[1]


def test_feedback_gradient_uses_wrong_examples_and_skips_when_all_right():
    table = [["a +"] * 4, ["b ++++++++++"] * 4, ["c"] * 4]
    cfg = config(gradient_name="feedback", util_gradient_name="generate", num_search_epochs=3)
    opt = ScriptedLLM(script=replies(table))
    states = []
    hooks = NoHooks()
    hooks.save_state = lambda t, s: states.append(s)
    run(cfg, opt, task=plus_task(n_train=8), hooks=hooks)
    grad_prompts = [last_user(r) for r in opt.requests if "weaknesses" in last_user(r)]
    assert grad_prompts[0].count("Wrong prediction:") == 5  # at most gradient_max_examples
    assert len(grad_prompts) == 2  # step 2's prompt gets every train example right: no call
    grads = states[-1]["trajectory"]["gradients"]
    assert grads[0]["text"] == "It is too short." and grads[2]["text"].startswith("The current prompt answered every")
    assert grads[0]["improvement"] == pytest.approx(0.1)
    update = [last_user(r) for r in opt.requests if "Put the new prompt" in last_user(r)][0]
    assert "Problems found with the current prompt:\nIt is too short." in update


class Interrupt(Exception):
    pass


def test_resume_after_interrupt_equals_uninterrupted_run_with_no_repeated_calls(tmp_path):
    table = [[f"p{s} " + "+" * ((s * 3 + i) % 7) for i in range(4)] for s in range(9)]
    cfg = config(num_search_epochs=3, opt_batch_size=8)

    from gpo.engine.state import stable_seed

    step_of_seed = {stable_seed(cfg.seed, "test/plus", g, 0): g for g in range(9)}

    def by_seed(request, i):  # like a real model: the answer depends on the request only
        return table[step_of_seed[request.seed]][i]

    def fresh(cache_path):
        cache = ResponseCache(cache_path)
        return ScriptedLLM(model="opt", script=by_seed, cache=cache), echo_scorer(cache)

    opt, scorer = fresh(tmp_path / "a.sqlite")
    ref, _, _ = run(cfg, opt, scorer=scorer, hooks=RunStore(tmp_path / "a"))
    ref_calls = (opt.usage.calls, scorer.usage.calls)

    class Dying(RunStore):
        saved = 0

        def save_evaluation(self, task, name, evaluation):
            super().save_evaluation(task, name, evaluation)
            self.saved += 1
            if name.startswith("eval/step002") and self.saved >= 10:
                raise Interrupt  # mid-step: some candidates scored, the step not finished

    opt1, scorer1 = fresh(tmp_path / "b.sqlite")
    with pytest.raises(Interrupt):
        run(cfg, opt1, scorer=scorer1, hooks=Dying(tmp_path / "b"))
    opt2, scorer2 = fresh(tmp_path / "b.sqlite")  # as a new process would
    resumed, _, _ = run(cfg, opt2, scorer=scorer2, hooks=RunStore(tmp_path / "b"))
    assert resumed == ref
    import json

    state = lambda d: json.loads((tmp_path / d / "tasks" / "test__plus" / "state.json").read_text())
    assert state("a")["trajectory"] == state("b")["trajectory"]
    assert scorer1.usage.calls > 0 and scorer2.usage.calls > 0 and scorer2.usage.cache_hits > 0
    assert opt1.usage.calls + opt2.usage.calls == ref_calls[0]
    assert scorer1.usage.calls + scorer2.usage.calls == ref_calls[1]


def test_a_resumed_search_does_not_count_again_what_an_earlier_process_scored(tmp_path):
    """Step 0 proposes nothing usable, so step 1 probes the same prompt on the same minibatch: an
    uninterrupted run scores it once. A run interrupted in step 1 and resumed scores it again
    from the response cache, and must count it once too: its figures are the uninterrupted run's."""
    cfg = config(num_search_epochs=2, opt_batch_size=8)
    from gpo.engine.state import stable_seed

    step_1 = stable_seed(cfg.seed, "test/plus", 1, 0)

    def fresh(cache_path, dies=False):
        def script(request, i):
            if dies and request.seed == step_1:
                raise Interrupt  # step 1's probe is done; its proposals are asked for next
            return "Sure! Here is the new prompt."  # no prompt: set aside, so the current prompt stays

        cache = ResponseCache(cache_path)
        return ScriptedLLM(model="opt", script=script, cache=cache), echo_scorer(cache)

    task = plus_task(n_train=8)  # every step's minibatch is all of train
    ref, _, _ = run(cfg, *fresh(tmp_path / "a.sqlite"), task=task, hooks=RunStore(tmp_path / "a"))
    with pytest.raises(Interrupt):
        run(cfg, *fresh(tmp_path / "b.sqlite", dies=True), task=task, hooks=RunStore(tmp_path / "b"))
    opt, scorer = fresh(tmp_path / "b.sqlite")
    resumed, _, _ = run(cfg, opt, scorer=scorer, task=task, hooks=RunStore(tmp_path / "b"))
    assert scorer.usage.cache_hits > 0  # step 1's probe was scored again, from the cache
    assert resumed.scorer_requests == ref.scorer_requests and resumed.scorer_tokens == ref.scorer_tokens
    assert resumed == ref


def test_tasks_optimized_concurrently_match_sequential_runs():
    from dataclasses import replace

    table = [[f"s{k} " + "+" * ((k + i) % 5) for i in range(4)] for k in range(4)]
    tasks = [replace(plus_task(n_train=8), name=f"plus{j}") for j in range(3)]

    def by_meta(request, i):  # answer from the request alone, like a real model
        step = sum(ord(c) for c in last_user(request)) % 4
        return table[step][i]

    cfg = config(num_search_epochs=2)

    def gpo():
        return GPO(cfg, ScriptedLLM(script=by_meta), Evaluator(echo_scorer(), second_round=False))

    sequential = [asyncio.run(gpo().optimize(t)) for t in tasks]

    async def together():
        shared = gpo()
        return await asyncio.gather(*(shared.optimize(t) for t in tasks))

    assert asyncio.run(together()) == sequential


@pytest.mark.parametrize("update", ["k-list", "real-time"])
def test_momentum_over_gradients(update):
    """Feedback momentum: k-list joins selected earlier gradients; real-time merges the
    running problems with the new ones through the optimizer."""
    gradients = iter(["Too vague.", "Ignores counting.", "Misses negatives.", "Too long."])

    def script(request, i):
        text = last_user(request)
        if "weaknesses" in text:
            return f"<START>{next(gradients)}<END>"
        if "combine two lists" in text:
            return "<START>merged: " + text.split("Problems with the current prompt:\n")[1].split("\n")[0] + "<END>"
        return "<START>x<END>" if i else "<START>y +<END>"

    selection = "recency" if update == "k-list" else "-"
    cfg = config(gradient_name="feedback", util_gradient_name="generate", momentum_para_name="feedback",
                 momentum_selection_name=selection, momentum_selection_num=2, momentum_update_name=update,
                 num_search_epochs=3)
    opt = ScriptedLLM(script=script)
    run(cfg, opt, task=plus_task(n_train=8))
    updates = [last_user(r) for r in opt.requests if "Put the new prompt" in last_user(r)]
    merges = [last_user(r) for r in opt.requests if "combine two lists" in last_user(r)]
    if update == "k-list":
        assert "Problems found with the current prompt:\nIgnores counting.\n\nToo vague." in updates[1]
        assert "Misses negatives.\n\nIgnores counting." in updates[2] and "Too vague." not in updates[2]
        assert not merges
    else:
        assert "Problems found with the current prompt:\nToo vague." in updates[0]
        assert len(merges) == 2 and "Problems with earlier prompts:\nToo vague." in merges[0]
        assert "Problems found with the current prompt:\nMerged: Ignores counting." in updates[1]


def test_stoppers_compose_a_callers_patience_with_the_run_budget():
    from gpo.llm.meter import Meter
    from gpo.engine.stoppers import NoImprovement

    # step 0 finds the best (X ++++); steps 1 and 2 find nothing better: patience 2 ends the search there
    table = [["x ++++"] * 4, ["y +"] * 4, ["z +"] * 4, ["w +++++"] * 4]
    events = []
    hooks = NoHooks()
    hooks.event = lambda kind, **d: events.append((kind, d))
    cfg = config(num_search_epochs=4)
    opt = ScriptedLLM(script=replies(table))
    gpo = GPO(cfg, opt, Evaluator(echo_scorer(), second_round=False), None, hooks, stoppers=[NoImprovement(2)])
    result = asyncio.run(gpo.optimize(plus_task()))
    assert result.search_ended == "no new best on eval for 2 steps" and result.steps_done == 3
    assert result.total_steps == 8 and opt.usage.calls == 3 and result.final_prompt == "X ++++"
    assert result.final_test is not None and result.stopped is None  # an ended search is still tested
    assert [d["step"] for k, d in events if k == "search_ended"] == [3]

    # --patience is the same stopper, built from the config
    again = asyncio.run(GPO(config(num_search_epochs=4, patience=2), ScriptedLLM(script=replies(table)),
                            Evaluator(echo_scorer(), second_round=False)).optimize(plus_task()))
    assert (again.search_ended, again.steps_done, again.final_prompt) == (result.search_ended, 3, "X ++++")
    with pytest.raises(ConfigError, match="patience must be 0"):
        config(patience=-1)

    # both due after step 0 (one optimizer call of 1; no better prompt than the initial one):
    # the run budget comes first, so the run stops and spends nothing on test
    meter = Meter(max_optimizer_calls=1)
    opt = ScriptedLLM(script=replies([["y +"] * 4] * 4))
    opt.meter, opt.role = meter, "optimizer"
    gpo = GPO(config(num_search_epochs=4, initial_instruction="Start +++++"), opt,
              Evaluator(echo_scorer(), second_round=False), None, None, meter.exhausted, stoppers=[NoImprovement(1)])
    result = asyncio.run(gpo.optimize(plus_task()))
    assert result.stopped == "optimizer calls 1 of 1" and result.steps_done == 1
    assert result.search_ended is None and result.final_test is None
