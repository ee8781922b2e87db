"""Demonstrations as the parameter: the text form, rendering, the random and bootstrapped
searches through the real search loop (racing, budget, checkpoint, resume), with scripted
fakes (named as such)."""

import asyncio
import json
import re

import pytest

from fakes import ScriptedLLM, config, last_user
from fakes import Recorder
from gpo.api import read_prompt_file
from gpo.config import ConfigError
from gpo.methods import METHODS
from gpo.run.store import RunStore
from gpo.scoring import Evaluator, PromptFormat
from gpo.scoring.demos import describe, split_demos, with_demos
from gpo.prompts.checks import word_edit_distance
from gpo.scoring.render import render
from gpo.tasks import AnswerKind, Example, Task
from gpo.tasks.template import Template


def test_a_prompt_carries_its_demonstrations_and_reads_them_back():
    demos = [Example("2 + 2?", "4"), Example("Is it {x}?", "yes", fields=(("q", "Is it?"),))]
    text = with_demos("Answer briefly.", demos)
    instruction, back = split_demos(text)
    assert instruction == "Answer briefly." and [(d.input, d.target, d.fields) for d in back] == \
        [("2 + 2?", "4", ()), ("Is it {x}?", "yes", (("q", "Is it?"),))]
    assert split_demos(with_demos("", demos))[0] == "" and len(split_demos(with_demos("", demos))[1]) == 2
    assert with_demos("Answer briefly.", []) == "Answer briefly."
    broken = text.replace('"answer"', '"reply"')  # a damaged block is text, not demonstrations
    assert split_demos(broken) == (broken, [])
    assert split_demos("Use <demonstrations> wisely.") == ("Use <demonstrations> wisely.", [])
    assert describe(text) == "'Answer briefly.' with 2 demonstrations" and describe("Hi.") == "'Hi.'"


def test_a_prompts_demonstrations_render_as_turns_and_through_a_template():
    text = with_demos("Answer Yes or No.", [Example("Is ice cold?", "Yes")])
    messages = render(text, Example("Is fire cold?", "No"), PromptFormat()).messages
    assert messages == (("user", "Is ice cold?\nAnswer Yes or No."), ("assistant", "Yes"),
                        ("user", "Is fire cold?\nAnswer Yes or No."))
    assert render("Answer Yes or No.", Example("Is fire cold?", "No"), PromptFormat()).messages == messages[-1:]
    base = render(text, Example("Is fire cold?", "No"), PromptFormat(chat=False)).prompt
    assert base == "Is ice cold?\nAnswer Yes or No.\nYes\n\nIs fire cold?\nAnswer Yes or No."
    template = Template("Ticket: {body}\n{instruction}")
    row = Example("", "billing", fields=(("body", "refund please"),))
    demo = Example("", "technical", fields=(("body", "app crashes"),))
    turns = render(with_demos("Category?", [demo]), row, PromptFormat(), template=template).messages
    assert turns == (("user", "Ticket: app crashes\nCategory?"), ("assistant", "technical"),
                     ("user", "Ticket: refund please\nCategory?"))


def shape_task(n_train=8, n_eval=48):
    """A yes/no task (majority No). Train items 'odd' are badly written demonstrations."""
    ex = lambda n, tag: [Example(f"{tag} {i}{' odd' if i % 2 else ''}: truth={'Yes' if i % 4 == 0 else 'No'}",
                                 "Yes" if i % 4 == 0 else "No") for i in range(n)]
    return Task("shape", "test", AnswerKind.BOOLEAN, metric="exact",
                splits={"train": ex(n_train, "train"), "eval": ex(n_eval, "eval"), "test": ex(n_eval, "test"),
                        "format": ex(3, "fmt")})


def scorer_learning_from_demos(own_answers=False):
    """Scripted scorer: shown demonstrations and none of them 'odd', it reads each question's
    truth; otherwise it answers Yes. On train it writes 'I reckon X' (own_answers)."""

    def script(request, i):
        shown = [text for role, text in request.messages[:-1] if role == "user"]
        truth = re.search(r"truth=(\w+)", last_user(request)).group(1)
        answer = truth if shown and not any("odd" in t for t in shown) else "Yes"
        return f"I reckon {answer}" if own_answers else answer

    return ScriptedLLM(model="scorer", script=script)


def search(method, tmp_path=None, scorer=None, **kw):
    cfg = config(**{"initial_instruction": "Answer Yes or No.", "num_generated_instructions_in_each_step": 4,
                    "num_search_epochs": 2, "opt_batch_size": 4, **kw})
    scorer = scorer or scorer_learning_from_demos()
    hooks = RunStore(tmp_path) if tmp_path else Recorder()
    s = METHODS[method](cfg, ScriptedLLM(model="no-optimizer"), Evaluator(scorer, PromptFormat(), second_round=False),
                        None, hooks, options={"k": 2})
    return asyncio.run(s.optimize(shape_task())), s, scorer


def test_random_demo_search_finds_a_set_that_beats_the_initial_prompt_and_the_constant(tmp_path):
    result, s, scorer = search("demos", tmp_path / "run")
    instruction, demos = split_demos(result.final_prompt)
    assert instruction == "Answer Yes or No." and len(demos) == 2
    assert not any("odd" in d.input for d in demos) and all(d.target in ("Yes", "No") for d in demos)
    assert result.final_test == 1.0 and result.initial_test == 0.25 and result.test_comparison["significant"]
    assert result.constant["test"]["final"]["vs_constant"]["significant"]
    assert s.optimizer_llm.usage.calls == 0  # no optimizer model is asked anything
    # the demonstrations survive the checkpoint, a resume and the prompt file gpo evaluate reads
    RunStore(tmp_path / "run").write_results([result.as_dict()])
    again = METHODS["demos"](s.config, s.optimizer_llm, s.evaluator, None, RunStore(tmp_path / "run"), options={"k": 2})
    assert asyncio.run(again.optimize(shape_task())).final_prompt == result.final_prompt
    row = read_prompt_file(tmp_path / "run" / "optimized_prompts.jsonl")[0]
    fresh = Evaluator(scorer_learning_from_demos(), PromptFormat(), second_round=False)
    assert asyncio.run(fresh.evaluate(shape_task(), row["prompt"], "test")).score == 1.0


def test_demo_search_races_and_keeps_the_search_budget():
    result, s, scorer = search("demos", selection="race", budget={"scorer_calls_per_task": 200})
    candidates = [c for st in s.hooks.states[-1]["trajectory"]["steps"] for c in st["candidates"]]
    raced = [c for c in candidates if c["race_examples"] is not None]
    assert raced and all(c["race_examples"] < 48 and "odd" in c["text"] for c in raced)  # only hopeless sets stop
    assert result.scorer_requests <= 200 and scorer.usage.calls == result.scorer_requests + 2 * 48


def test_bootstrap_shows_only_train_examples_the_scorer_answered_correctly_with_its_own_reply():
    result, s, scorer = search("bootstrap", scorer=scorer_learning_from_demos(own_answers=True))
    state = s.hooks.states[-1]
    train = shape_task().split("train")
    # zero-shot the scorer answers Yes: right exactly on the train items whose truth is Yes
    assert state["bootstrapped"] and all(train[i].target == "Yes" for i, _ in state["bootstrapped"])
    assert all(answer == "I reckon Yes" for _, answer in state["bootstrapped"])
    shown = [d for st in state["trajectory"]["steps"] for c in st["candidates"] for d in split_demos(c["text"])[1]]
    own = {train[i].input for i, _ in state["bootstrapped"]}
    bootstrapped = [d for d in shown if d.input in own]
    assert bootstrapped and all(d.target == "I reckon Yes" for d in bootstrapped)
    assert json.dumps(state["bootstrapped"])  # checkpointed with the state


def test_the_report_folds_demonstrations_and_sets_the_result_beside_the_constant(tmp_path):
    from gpo.api import RunSpec
    from gpo.run.report import write_report

    RunStore(tmp_path / "run").write_spec(RunSpec(method="demos").to_dict())
    result, s, _ = search("demos", tmp_path / "run")
    s.hooks.event("task_done", **{**result.as_dict(), "task": "test/shape"})
    s.hooks.close()
    page = write_report(tmp_path / "run").read_text()
    assert "<details><summary>2 demonstrations</summary>" in page and "&lt;demonstrations&gt;" not in page
    assert "the final prompt is better than always answering &#x27;No&#x27; (75.0) on test" in page
    assert "initial &#x27;Yes&#x27; 100%; final &#x27;No&#x27; 75%, &#x27;Yes&#x27; 25%" in page


def test_the_joint_search_crosses_gpos_best_instructions_with_demonstration_sets():
    opt = ScriptedLLM(model="opt", script=lambda r, i: f"<START>Answer it {r.seed % 7} {i}.<END>")
    cfg = config(initial_instruction="Answer Yes or No.", num_generated_instructions_in_each_step=3,
                 num_search_epochs=1, opt_batch_size=4)
    s = METHODS["gpo+demos"](cfg, opt, Evaluator(scorer_learning_from_demos(), PromptFormat(), second_round=False),
                             None, Recorder(), options={"k": 2, "demo_steps": 2, "instructions": 2})
    result = asyncio.run(s.optimize(shape_task()))
    steps = s.hooks.states[-1]["trajectory"]["steps"]
    assert len(steps) == 2 + 2 and result.steps_done == 4  # GPO's 2 instruction steps (train 8, batch 4), then 2
    assert all(not split_demos(c["text"])[1] for st in steps[:2] for c in st["candidates"])  # instructions alone
    crossed = [split_demos(c["text"]) for st in steps[2:] for c in st["candidates"]]
    assert crossed and all(len(demos) == 2 for _, demos in crossed)
    alone = {p for p in s.hooks.states[-1]["scores"] if not split_demos(p)[1]}
    assert {instruction for instruction, _ in crossed} <= alone  # each an instruction scored alone before
    assert split_demos(result.final_prompt)[1] and result.final_test == 1.0


class HaltAfter:
    """A stopper (as a run budget would) before step ``g``: the run can be resumed."""

    def __init__(self, g):
        self.g = g

    def __call__(self, search, task, state):
        from gpo.engine.stoppers import Halt

        return Halt("halted for the test", run_budget=True) if state.next_step == self.g else None


def joint(store, sampler="tpe", stoppers=()):
    opt = ScriptedLLM(model="opt", script=lambda r, i: f"<START>Answer it {r.seed % 7} {i}.<END>")
    cfg = config(initial_instruction="Answer Yes or No.", num_generated_instructions_in_each_step=3,
                 num_search_epochs=1, opt_batch_size=4)
    options = {"k": 2, "demo_steps": 3, "instructions": 2, "sampler": sampler, "demo_sets": 4}
    return METHODS["gpo+demos"](cfg, opt, Evaluator(scorer_learning_from_demos(), PromptFormat(), second_round=False),
                                None, store, options=options, stoppers=stoppers)


def test_tpe_pairs_instructions_with_a_fixed_pool_of_sets_and_resumes_exactly(tmp_path):
    whole = joint(RunStore(tmp_path / "whole"))
    result = asyncio.run(whole.optimize(shape_task()))
    pool = {tuple(d.input for d in s) for s in whole.demo_sets(shape_task())}
    steps = [json.loads(line) for line in (tmp_path / "whole" / "events.jsonl").read_text().splitlines()]
    texts = [e["text"] for e in steps if e["event"] == "candidate" and e["global_step"] >= 2]
    assert texts and all(tuple(d.input for d in split_demos(t)[1]) in pool for t in texts)
    assert split_demos(result.final_prompt)[1] and result.final_test == 1.0
    # halted before the second TPE step and resumed: the same trajectory as without the halt
    halted = joint(RunStore(tmp_path / "cut"), stoppers=[HaltAfter(3)])
    assert asyncio.run(halted.optimize(shape_task())).stopped == "halted for the test"
    resumed = asyncio.run(joint(RunStore(tmp_path / "cut")).optimize(shape_task()))
    state = lambda d: json.loads((tmp_path / d / "tasks" / "test__shape" / "state.json").read_text())["trajectory"]
    assert state("cut") == state("whole") and resumed.final_prompt == result.final_prompt


def test_an_unknown_sampler_is_refused_in_one_line():
    from gpo.errors import ConfigError

    with pytest.raises(ConfigError, match="sampler='grid': one of random, tpe"):
        METHODS["gpo+demos"].parse_options({"sampler": "grid"})


def test_under_a_search_budget_the_joint_search_leaves_the_rest_to_the_demonstrations():
    opt = ScriptedLLM(model="opt", script=lambda r, i: f"<START>Answer it {r.seed % 7} {i}.<END>")
    cfg = config(initial_instruction="Answer Yes or No.", num_generated_instructions_in_each_step=3,
                 num_search_epochs=4, opt_batch_size=4, budget={"scorer_calls_per_task": 600})
    s = METHODS["gpo+demos"](cfg, opt, Evaluator(scorer_learning_from_demos(), PromptFormat(), second_round=False),
                             None, Recorder(), options={"k": 2, "instruction_share": 0.5})
    result = asyncio.run(s.optimize(shape_task()))
    steps = s.hooks.states[-1]["trajectory"]["steps"]
    with_demos_ = [any(split_demos(c["text"])[1] for c in st["candidates"]) for st in steps]
    first = with_demos_.index(True)  # GPO's 8 steps would spend it all; it stops at half the budget
    assert 0 < first < 8 and all(with_demos_[first:]) and not any(with_demos_[:first])
    assert result.scorer_requests <= 600 and split_demos(result.final_prompt)[1]


def test_demos_first_gpo_rewrites_the_instruction_and_holds_the_demonstrations_it_found():
    """order=demos-first: demonstration steps for the initial instruction, then GPO's steps edit
    the best prompt's instruction; the optimizer is shown instructions only, and every new
    instruction is scored beside the demonstrations the best prompt carries."""
    opt = ScriptedLLM(model="opt", script=lambda r, i: f"<START>Answer it {r.seed % 7} {i}.<END>")
    cfg = config(initial_instruction="Answer Yes or No.", num_generated_instructions_in_each_step=3,
                 num_search_epochs=1, opt_batch_size=4)
    s = METHODS["gpo+demos"](cfg, opt, Evaluator(scorer_learning_from_demos(), PromptFormat(), second_round=False),
                             None, Recorder(), options={"k": 2, "demo_steps": 1, "order": "demos-first"})
    result = asyncio.run(s.optimize(shape_task()))
    steps = s.hooks.states[-1]["trajectory"]["steps"]
    assert len(steps) == 1 + 2 and not steps[0]["meta_prompt"] and all(st["meta_prompt"] for st in steps[1:])
    assert {split_demos(c["text"])[0] for c in steps[0]["candidates"]} == {"Answer Yes or No."}
    for st in steps[1:]:
        held = split_demos(st["current"])[1]
        assert held  # the best after the demonstration step carries its demonstrations
        assert "<demonstrations>" not in st["meta_prompt"] and split_demos(st["current"])[0] in st["meta_prompt"]
        for c in st["candidates"]:
            instruction, demos = split_demos(c["text"])
            assert instruction.startswith("Answer it") and demos == held
            # the edit distance counts the instruction's edits only (at least 'Yes or No' -> 'it N M')
            assert c["edit_distance"] == word_edit_distance(split_demos(st["current"])[0], instruction) <= 4
    assert result.final_test == 1.0 and s.optimizer_llm.usage.calls == 2


def test_a_joint_search_order_or_share_out_of_range_is_refused_in_one_line():
    from gpo.errors import ConfigError

    with pytest.raises(ConfigError, match="order='last': one of instructions-first, demos-first"):
        METHODS["gpo+demos"].parse_options({"order": "last"})
    with pytest.raises(ConfigError, match="instruction_share=1.5: a share of the search budget, from 0 to 1"):
        METHODS["gpo+demos"].parse_options({"instruction_share": "1.5"})


def test_each_phase_of_the_joint_search_keeps_to_its_share_so_the_demonstrations_get_theirs():
    """Issue 36: the first instruction step used to spend 136 of 150 requests, leaving the
    demonstrations nothing. A step is now sized to what its phase has left."""
    opt = ScriptedLLM(model="opt", script=lambda r, i: f"<START>Answer it {r.seed % 7} {i}.<END>")
    cfg = config(initial_instruction="Answer Yes or No.", num_generated_instructions_in_each_step=8,
                 num_search_epochs=1, opt_batch_size=4, selection="full", budget={"scorer_calls_per_task": 300})
    s = METHODS["gpo+demos"](cfg, opt, Evaluator(scorer_learning_from_demos(), PromptFormat(), second_round=False),
                             None, Recorder(), options={"k": 2, "instruction_share": 0.5})
    result = asyncio.run(s.optimize(shape_task()))  # eval 48: the initial prompt 48, each candidate 48 more
    states = s.hooks.states
    last_instruction = max(i for i, st in enumerate(states) if st["trajectory"]["steps"]
                           and st["trajectory"]["steps"][-1]["meta_prompt"])
    assert states[last_instruction]["scorer_requests"] <= 0.5 * 300  # the instruction phase kept to its half
    demo_steps = [st for st in states[-1]["trajectory"]["steps"] if not st["meta_prompt"]]
    assert demo_steps and any(c["score"] is not None for st in demo_steps for c in st["candidates"])
    assert result.scorer_requests <= 300


def test_a_search_budget_that_buys_too_little_is_refused_saying_what_it_buys():
    from gpo.api import RunSpec, TaskSpec, plan
    from gpo.config import preset

    spec = RunSpec(tasks=TaskSpec(source="synthetic", tasks=["navigate"], sizes={"train": 8, "eval": 10, "test": 5}),
                   config=preset("gpo", budget={"scorer_calls_per_task": 10 * 2 + 2 * 8 * 2}))
    with pytest.raises(ConfigError, match=r"after the initial prompt's 20 eval requests on synthetic/navigate, it buys "
                                          r"2 scored proposals \(each needs at least 16 requests under racing\); a "
                                          r"search needs at least 3: give at least 68"):
        plan(spec)
    spec.config = preset("gpo", budget={"scorer_calls_per_task": 68})
    assert plan(spec)["scorer_calls"] > 0
    spec.method, spec.method_options = "gpo+demos", {"k": 2, "instruction_share": 0.25}
    with pytest.raises(ConfigError, match="the instruction phase gets 25% of it, less the initial prompt: 0 requests, which buys no proposal"):
        plan(spec)
