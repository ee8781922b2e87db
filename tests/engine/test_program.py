"""Programs (gpo.tasks.program): a user's pipeline whose named prompts are optimized, one per
step, with the scripted fake scorer and optimizer (named as such).

The scorer echoes its prompt, so the two-step program's output begins with the second
prompt's text; the metric gives an example credit when that first line holds at least as
many '+' as the example's target. Only the second prompt ("classify") can matter.
"""

from __future__ import annotations

import asyncio

import pytest

from fakes import ScriptedLLM, config, echo_scorer, last_user
from gpo.config import Budget
from gpo.engine.hooks import NoHooks
from gpo.llm import ResponseCache
from gpo.methods import method_class
from gpo.run.store import RunStore
from gpo.scoring import Evaluator, PromptFormat
from gpo.tasks import AnswerKind, Example, Task
from gpo.tasks.program import Program, decode, encode, load_program, read_prompts
from gpo.tasks.task import TaskError

EXTRACT, CLASSIFY = "Pull out the key sentence.", "Name the category."


def two_step(example, prompts, lm):
    sentence = lm(f"{prompts['extract']}\n{example.input}")
    return lm(f"{prompts['classify']}\n{sentence}"), {"extract": sentence}


def plus_metric(output, example):
    score = float(output.splitlines()[0].count("+") >= int(example.target))
    return score if score else (score, f"needs {example.target} plus signs")


def program_task(run=two_step, prompts=((("extract", EXTRACT), ("classify", CLASSIFY)))):
    ex = lambda n: [Example(f"item {i}", str(i % 4 + 1)) for i in range(n)]  # noqa: E731
    return Task("two", "test", AnswerKind.EXACT, metric=plus_metric, program=Program(run, "test:two_step", prompts),
                splits={"train": ex(8), "eval": ex(8), "test": ex(8), "format": ex(3)})


def proposer(request, i):
    """Scripted optimizer: one more '+' on whichever prompt the meta-prompt is about."""
    text = last_user(request)
    if "Put the new prompt between" not in text:
        return "<START>It needs more plus signs.<END>"
    base = CLASSIFY if CLASSIFY in text else EXTRACT
    have = max((line.count("+") for line in text.splitlines() if base in line), default=0)
    return f"<START>{base} {'+' * (have + i + 1)}<END>"


def search(cfg, optimizer, scorer=None, hooks=None, method="gpo"):
    evaluator = Evaluator(scorer or echo_scorer(), PromptFormat(), second_round=False)
    return method_class(method)(cfg, optimizer, evaluator, None, hooks)


def test_the_encoding_keeps_every_named_prompt():
    prompts = {"extract": "Copy a sentence.\nOnly one.", "classify": "One word."}
    assert decode(encode(prompts), ["extract", "classify"]) == prompts
    with pytest.raises(TaskError, match="lack classify"):
        decode("[[extract]]\nx", ["extract", "classify"])


def test_each_step_edits_one_prompt_and_only_the_one_that_matters_changes():
    opt = ScriptedLLM(script=proposer)
    states = []
    hooks = NoHooks()
    hooks.save_state = lambda task, state: states.append(state)
    gpo = search(config(num_search_epochs=2, opt_batch_size=4, gradient_name="feedback"), opt, hooks=hooks)
    result = asyncio.run(gpo.optimize(program_task()))
    steps = states[-1]["trajectory"]["steps"]
    assert [s["component"] for s in steps] == ["extract", "classify", "extract", "classify"]
    final = decode(result.final_prompt, ["extract", "classify"])
    assert final["extract"] == EXTRACT  # its candidates scored no higher: the program kept it
    assert final["classify"].startswith(CLASSIFY) and final["classify"].count("+") >= 2
    assert result.final_eval > result.initial_eval
    # the program's traces and the metric's feedback reached the optimizer (the gradient's meta-prompt)
    asked = "\n".join(last_user(r) for r in opt.requests)
    assert "Steps of the program:\nextract: Pull out the key sentence." in asked
    assert "Feedback: needs" in asked


def test_a_program_search_killed_mid_step_resumes_and_repeats_no_paid_call(tmp_path):
    cfg = config(num_search_epochs=2, opt_batch_size=4)
    full_cache = ResponseCache(tmp_path / "full.sqlite")  # a run repeats some requests: the cache answers those
    full_opt, full_scorer = ScriptedLLM(script=proposer, cache=full_cache), echo_scorer(full_cache)
    full = asyncio.run(search(cfg, full_opt, full_scorer).optimize(program_task()))

    class Killed(Exception):
        pass

    asked = {"n": 0}

    def dies_mid_step(request, i):  # the scorer stops answering partway through the third step
        asked["n"] += 1
        if asked["n"] > 0.7 * full_scorer.usage.calls:
            raise Killed
        return last_user(request)

    store, cache = RunStore(tmp_path / "run"), ResponseCache(tmp_path / "cache.sqlite")
    first_opt, first_scorer = ScriptedLLM(script=proposer, cache=cache), ScriptedLLM(model="echo", script=dies_mid_step, cache=cache)
    with pytest.raises(Killed):
        asyncio.run(search(cfg, first_opt, first_scorer, hooks=store).optimize(program_task()))
    assert 0 < store.load_state(program_task())["next_step"] < 4  # it died inside the search, past a checkpoint
    opt, scorer = ScriptedLLM(script=proposer, cache=cache), echo_scorer(cache)
    resumed = asyncio.run(search(cfg, opt, scorer, hooks=store).optimize(program_task()))
    assert resumed.final_prompt == full.final_prompt and resumed.final_eval == full.final_eval
    # the resumed run paid only for what the first did not: together, what the whole run paid
    assert first_opt.usage.calls + opt.usage.calls == full_opt.usage.calls
    assert first_scorer.usage.calls + scorer.usage.calls == full_scorer.usage.calls
    cache.close()
    full_cache.close()


@pytest.mark.parametrize("method", ["gpo", "opro", "protegi"])
def test_budgets_hold_for_programs(method):
    cap = 120
    cfg = config(num_search_epochs=2, opt_batch_size=4, selection="race", budget=Budget(scorer_calls_per_task=cap))
    result = asyncio.run(search(cfg, ScriptedLLM(script=proposer), method=method).optimize(program_task()))
    assert result.scorer_requests <= cap
    assert result.steps_done >= 1


def test_racing_stops_a_programs_weak_candidates_early():
    states = []
    hooks = NoHooks()
    hooks.save_state = lambda task, state: states.append(state)
    task = program_task()
    task.splits["eval"] = [Example(f"item {i}", str(i % 4 + 1)) for i in range(60)]
    cfg = config(num_search_epochs=1, opt_batch_size=4, selection="race", num_generated_instructions_in_each_step=4)
    asyncio.run(search(cfg, ScriptedLLM(script=proposer), hooks=hooks).optimize(task))
    classify = next(s for s in states[-1]["trajectory"]["steps"] if s["component"] == "classify")
    raced = [c for c in classify["candidates"] if c["race_examples"] is not None]
    assert raced and all(c["race_examples"] < 60 for c in raced)  # stopped before the whole eval split
    assert any(c["score"] == 1.0 for c in classify["candidates"])  # the leader was scored in full


def test_a_prompt_that_grows_past_the_word_limit_is_refused():
    def wordy(request, i):
        text = last_user(request)
        base = CLASSIFY if CLASSIFY in text else EXTRACT
        return f"<START>{base} {'word ' * 20}+<END>" if i == 0 else proposer(request, i)

    states = []
    hooks = NoHooks()
    hooks.save_state = lambda task, state: states.append(state)
    cfg = config(num_search_epochs=1, opt_batch_size=4, max_prompt_words=12)
    asyncio.run(search(cfg, ScriptedLLM(script=wordy), hooks=hooks).optimize(program_task()))
    firsts = [s["candidates"][0] for s in states[-1]["trajectory"]["steps"]]
    assert firsts and all(c["rejected"].startswith("too long") and c["score"] is None for c in firsts)


def test_a_program_that_raises_is_named_with_the_example():
    def broken(example, prompts, lm):
        if example.input.endswith("3"):
            raise KeyError("summary")
        return lm(prompts["extract"] + prompts["classify"])

    evaluator = Evaluator(echo_scorer(), PromptFormat(), second_round=False)
    task = program_task(run=broken)
    with pytest.raises(TaskError, match=r"program test:two_step raised KeyError: 'summary' on eval example 3 "
                                        r"\(input: 'item 3'\)"):
        asyncio.run(evaluator.evaluate(task, task.program.initial, "eval"))


def test_a_prompt_the_program_never_reads_is_reported_at_once():
    def reads_one(example, prompts, lm):
        return lm(prompts["classify"])

    evaluator = Evaluator(echo_scorer(), PromptFormat(), second_round=False)
    task = program_task(run=reads_one)
    with pytest.raises(TaskError, match="never read 'extract'"):
        asyncio.run(evaluator.evaluate(task, task.program.initial, "eval", [0]))


def test_program_and_prompts_files_are_checked(tmp_path):
    bad = tmp_path / "prompts.yaml"
    bad.write_text("extract: [1, 2]\n")
    with pytest.raises(TaskError, match="'extract' is empty or not text"):
        read_prompts(bad)
    bad.write_text("extract: a\n  b: c\n")
    with pytest.raises(TaskError, match=r"not valid YAML \(line 2\)"):
        read_prompts(bad)
    with pytest.raises(TaskError, match="has no function 'nope'"):
        load_program("tests/data/ticket_program.py:nope", {"x": "y"})
    program = load_program("tests/data/ticket_program.py:run", read_prompts("tests/data/ticket_prompts.yaml"))
    assert program.names == ["extract", "classify"]


def test_programs_waiting_for_answers_leave_the_model_layer_its_threads():
    """The embedded backend hands work to asyncio's default thread pool; programs blocked on
    their answers must not fill that pool (a deadlock with more examples than its threads)."""

    class Threaded(ScriptedLLM):
        async def _sample(self, request, indices):
            return await asyncio.to_thread(lambda: [s for s in asyncio.run(ScriptedLLM._sample(self, request, indices))])

    scorer = Threaded(model="echo", script=lambda r, i: last_user(r))
    task = program_task()
    many = [Example(f"item {i}", "1") for i in range(40)]
    task.splits["eval"] = many
    evaluator = Evaluator(scorer, PromptFormat(), second_round=False)

    async def go():
        return await asyncio.wait_for(evaluator.evaluate(task, task.program.initial, "eval"), timeout=60)

    assert asyncio.run(go()).n == 40


def test_a_program_needs_its_prompts_and_user_data():
    from gpo.errors import ConfigError
    from gpo.run.sources import from_sources

    data = {"dataset": "user", "data_files": ["tests/data/tickets.csv"], "target_col": "label"}
    with pytest.raises(ConfigError, match="--program MODULE:FUNCTION and --prompts FILE go together"):
        from_sources(overrides={**data, "program": "tests/data/ticket_program.py:run"}, check_models=False)
    with pytest.raises(ConfigError, match="--program, --prompts: for your own data"):
        from_sources(overrides={"program": "x:y", "program_prompts": "p.yaml"}, check_models=False)
    spec = from_sources(overrides={**data, "program": "tests/data/ticket_program.py:run",
                                           "program_prompts": "tests/data/ticket_prompts.yaml"}, check_models=False)
    assert list(spec.tasks.program_prompts) == ["extract", "classify"]  # kept in run.json: a resume needs no file
