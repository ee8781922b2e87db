"""How the final prompt is chosen beyond the best eval mean: ``--adopt lcb`` (the highest
Bonferroni-corrected lower bound), ``--final-holdout`` (a share of eval the search never scores),
and the prompt's length (``--length-penalty``, ``--max-prompt-tokens``, the tokens and cost every
output gives). Scripted fakes (named as such): the scorer echoes the prompt, and an example is
right when the prompt carries its tag ('[3]' for item 3)."""

from __future__ import annotations

import asyncio

from fakes import ScriptedLLM, config, echo_scorer, last_user
from gpo.engine.adoption import best_point, choose
from gpo.engine.outcome import outcome
from gpo.engine.state import SearchState
from gpo.engine.trajectory import Point
from gpo.llm.types import Pricing
from gpo.methods import method_class
from gpo.prompts.checks import ExampleSpans
from gpo.prompts.length import prompt_tokens
from gpo.run.store import RunStore
from gpo.scoring import Evaluator
from gpo.scoring.stats import compare
from gpo.tasks import AnswerKind, Example, Task
from gpo.tasks.task import hold_out
from test_pool import tag_optimizer, tagged_task


def tags(name: str, items) -> str:
    return name + " " + " ".join(f"[{i}]" for i in items)


def state_with(task: Task, evaluator: Evaluator, prompts: list[str]) -> SearchState:
    """A finished search's state: the prompts scored on all of eval, the first the initial one."""
    state = SearchState(current=prompts[0])
    for p, ev in zip(prompts, asyncio.run(evaluator.evaluate_many(task, prompts, "eval"))):
        state.scores[p] = ev.score
        state.trajectory.points.append(Point(p, ev.score, -1 if p == prompts[0] else 0, -1 if p == prompts[0] else 0))
    return state


def test_lcb_adopts_the_higher_bound_over_the_higher_mean():
    task = tagged_task(n_eval=40)
    initial = tags("start", range(20))  # right on 0..19
    steady = tags("B", range(30))  # +10, loses nothing
    bold = tags("A", range(6, 40))  # +20 on 20..39, -6 on 0..5: the higher mean
    evaluator = Evaluator(echo_scorer(), second_round=False)
    state = state_with(task, evaluator, [initial, bold, steady])
    assert state.scores[bold] > state.scores[steady]
    right = lambda p: [float(f"[{i}]" in p) for i in range(40)]  # noqa: E731
    assert (compare(right(initial), right(steady), alpha=0.025).low
            > compare(right(initial), right(bold), alpha=0.025).low)  # the premise, at 0.05 / 2 candidates
    assert asyncio.run(choose(evaluator, config(adopt="best"), task, state)).final.prompt == bold
    lcb = asyncio.run(choose(evaluator, config(adopt="lcb"), task, state))
    assert lcb.final.prompt == steady
    assert lcb.details["correction"] == "bonferroni" and lcb.details["alpha"] == 0.05 / 2 and lcb.details["low"] > 0


def test_lcb_keeps_the_initial_prompt_when_no_corrected_bound_is_above_zero():
    task = tagged_task(n_eval=40)
    evaluator = Evaluator(echo_scorer(), second_round=False)
    prompts = [tags("start", range(20))] + [tags(f"c{k}", [*range(20), 20 + k]) for k in range(6)]  # +1 each
    chosen = asyncio.run(choose(evaluator, config(adopt="lcb"), task, state_with(task, evaluator, prompts)))
    assert chosen.final.prompt == prompts[0] and chosen.not_adopted["prompt"] in prompts[1:]
    assert chosen.details["finalists"] == 6 and chosen.details["alpha"] == 0.05 / 6


def test_the_holdout_is_never_scored_during_the_search_and_chooses_at_the_end(tmp_path):
    task = tagged_task(n_eval=16)
    task.splits["eval"] = [Example(f"item {i} of eval", "x") for i in range(16)]  # no other split has these
    cfg = config(final_holdout=0.25, adopt="best", num_generated_instructions_in_each_step=2, opt_batch_size=4)
    held = [e.input for e in hold_out(task, 0.25, cfg.seed).splits["holdout"]]
    assert len(held) == 4
    scorer = echo_scorer()
    marks = []

    class Marks(RunStore):
        def event(self, kind, **data):
            super().event(kind, **data)
            if kind == "step":
                marks.append(len(scorer.requests))

    gpo = method_class("gpo")(cfg, ScriptedLLM(script=tag_optimizer), Evaluator(scorer, second_round=False), None,
                              Marks(tmp_path / "run"))
    result = asyncio.run(gpo.optimize(task))
    asked = [last_user(r) for r in scorer.requests]
    during, after = asked[: marks[-1]], asked[marks[-1]:]
    assert marks and not any(h in a for a in during for h in held)
    assert any(h in a for a in after for h in held)  # scored for the final choice
    assert result.chosen_on == "holdout" and result.adoption["finalists"] <= 3
    assert "chosen on the held-out share of eval" in "\n".join(outcome(result).lines())


def test_the_length_penalty_changes_the_choice():
    short, long = "Short.", "A long prompt " + "that says the same thing again " * 10
    points = [Point("start", 0.1, -1, -1), Point(long, 0.52, 0, 0), Point(short, 0.50, 0, 1)]
    assert best_point(config(), points).prompt == long
    cfg = config(length_penalty=0.1, max_prompt_tokens=100)  # long: about 80 tokens cost 0.08
    assert best_point(cfg, points).prompt == short
    state = SearchState(scores={p.prompt: p.score for p in points})
    gpo = method_class("gpo")(cfg, ScriptedLLM(), Evaluator(echo_scorer()))
    assert gpo.actions.ranked(state, [long, short])[0] == short
    assert method_class("gpo")(config(), ScriptedLLM(), Evaluator(echo_scorer())).actions.ranked(state, [long, short])[0] == long


def test_a_candidate_over_the_token_cap_or_pasting_a_task_example_is_set_aside(tmp_path):
    story = "the quick brown fox jumps over the lazy dog near the river bank today"
    task = Task("paste", "test", AnswerKind.EXACT, metric=lambda pred, ex: 0.0, splits={
        split: [Example(f"{story} number {i}" if i == 2 else f"question {i}", "x") for i in range(8)]
        for split in ("train", "eval", "test")})
    replies = iter([f"Answer this: {story}.", "Answer the question in one word.", "word " * 40])

    def optimizer(request, i):
        return f"<START>{next(replies)}<END>" if "Put the new prompt between" in last_user(request) else ""

    cfg = config(num_generated_instructions_in_each_step=3, opt_batch_size=8, max_prompt_tokens=40)
    gpo = method_class("gpo")(cfg, ScriptedLLM(script=optimizer), Evaluator(echo_scorer(), second_round=False), None,
                              RunStore(tmp_path / "run"))
    asyncio.run(gpo.optimize(task))
    candidates = gpo.hooks.load_state(task)["trajectory"]["steps"][0]["candidates"]
    reasons = [c["rejected"] for c in candidates]
    assert reasons[0].startswith("copies a task example: 8+ words of example 3")
    assert reasons[1] is None
    assert reasons[2].startswith("too many tokens (")


def test_example_spans_allow_the_tasks_own_wording_and_the_reference():
    question = "If you follow these instructions, do you return to the starting point?"
    spans = ExampleSpans([[f"{question} Take {i} steps. Turn left.", "No"] for i in range(20)]
                         + [["A unique sentence that only one example of the task has in it.", "Yes"]])
    assert spans.copied(question + " Answer Yes or No.") is None  # every input asks it: the task's wording
    pasted = "Remember: a unique sentence that only one example of the task has."
    assert "example 21" in spans.copied(pasted)
    assert spans.copied(pasted, allowed=pasted) is None  # already in the prompt being edited
    assert spans.copied("Track your position step by step and answer Yes or No.") is None


def test_every_result_gives_the_final_prompts_tokens_and_cost_per_1000_calls(tmp_path):
    scorer = ScriptedLLM(model="echo", script=lambda r, i: last_user(r), pricing=Pricing(prompt=2.0))
    cfg = config(num_generated_instructions_in_each_step=2, opt_batch_size=4)
    gpo = method_class("gpo")(cfg, ScriptedLLM(script=tag_optimizer), Evaluator(scorer, second_round=False), None,
                              RunStore(tmp_path / "run"))
    result = asyncio.run(gpo.optimize(tagged_task()))
    assert result.final_tokens == prompt_tokens(result.final_prompt)
    assert abs(result.cost_per_1000_calls - result.final_tokens * 2.0 * 1000 / 1e6) < 1e-12
    line = next(x for x in outcome(result).lines() if x.startswith("the final prompt: about"))
    assert f"about {result.final_tokens} tokens" in line and f"${result.cost_per_1000_calls:.4f} per 1,000 calls" in line
