"""A reply that is no prompt is asked for once more, told why in one sentence; counted in the
budgets, the plan and the closing lines; ``--repair 0`` turns it off. Constrained replies are on
by default where the backend is measured to gain from them, stated in the plan. A scripted fake
optimizer (named as such) for the search."""

from __future__ import annotations

import asyncio
import json

import pytest

from fakes import ScriptedLLM, config, echo_scorer, last_user, plus_task
from gpo.engine import outcome as said
from gpo.engine.proposals import REPAIR_NOTE, rejection_counts
from gpo.engine.trajectory import Candidate
from gpo.llm import default_gguf_path
from gpo.methods.gpo.method import GPO
from gpo.methods.gpo.update import SMALL_READING
from gpo.run.store import RunStore
from gpo.scoring import Evaluator

JUNK = "I'm ready to help. What prompt would you like to work on?"


def scripted_optimizer(request, i):
    """Fake optimizer: sample 0 of an update is junk, the others a prompt; asked again, a prompt."""
    text = last_user(request)
    if text.startswith("That reply was set aside"):
        return f"<START>start ++ fixed {request.seed % 997}<END>"
    if "Put the new prompt between" not in text:
        return "<START>It is too short.<END>"
    return f"<START>{JUNK}<END>" if i == 0 else f"<START>start +{i}{request.seed % 5}<END>"


def search(tmp_path, **kw):
    opt, store = ScriptedLLM(script=scripted_optimizer), RunStore(tmp_path / "run")
    result = asyncio.run(GPO(config(num_generated_instructions_in_each_step=3, **kw), opt,
                             Evaluator(echo_scorer(), second_round=False), None, store).optimize(plus_task()))
    store.close()
    events = [json.loads(line) for line in (tmp_path / "run/events.jsonl").read_text().splitlines()]
    return result, opt, events


def test_a_reply_that_is_no_prompt_is_asked_for_again_with_the_reason(tmp_path):
    result, opt, events = search(tmp_path, repair=1)
    again = [r for r in opt.requests if last_user(r).startswith("That reply was set aside")]
    steps = [e for e in events if e["event"] == "step"]
    assert len(again) == len(steps)  # one junk reply a step, asked for once more
    first = again[0]
    assert first.n == 1 and first.messages[-2] == ("assistant", f"<START>{JUNK}<END>")
    assert last_user(first) == REPAIR_NOTE.format(
        why="asks the user for input ('would you like')")  # the reason, in one sentence
    assert first.messages[:-2] == next(r for r in opt.requests if "Put the new prompt between" in last_user(r)).messages
    repaired = [e for e in events if e["event"] == "candidate" and e["first_rejected"]]
    assert repaired and all(e["first_reply"] == JUNK and "fixed" in e["text"] for e in repaired)
    assert all(s["rejected"]["asks the user for input"] == 1 for s in steps)
    assert result.repaired_proposals == len(repaired)
    assert not any(e["event"] == "candidate" and e["text"] == JUNK for e in events)  # the junk never became one
    assert any(f"{len(repaired)} of them when asked again" in line for line in said.outcome(result).lines())
    assert result.optimizer_samples == sum(r.n for r in opt.requests)  # every repair is counted


def test_repair_0_asks_nothing_again_and_the_junk_is_set_aside(tmp_path):
    result, opt, events = search(tmp_path, repair=0)
    assert not any(last_user(r).startswith("That reply was set aside") for r in opt.requests)
    junk = [e for e in events if e["event"] == "candidate" and e["text"] == JUNK]
    assert junk and all(e["rejected"].startswith("asks the user") and e["score"] is None for e in junk)
    assert result.usable_proposals < result.proposals and result.repaired_proposals == 0


def test_a_small_optimizer_is_asked_again_in_the_short_meta_prompts_words(tmp_path):
    """optimizer_size='small': a reply set aside is asked for again with no tags and no 'prompt' in the
    note (the words a 135M model copies), and the new reply is read as one sentence too."""
    def small_optimizer(request, i):  # a scripted fake optimizer
        text = last_user(request)
        if text.startswith("That reply was set aside"):
            return f"Add plus signs {request.seed % 97} times. This new instruction is better."
        if not text.startswith("Examples:"):
            return "It is too short."
        return JUNK if i == 0 else f"Write +{i}{request.seed % 5} here. Then stop."

    opt, store = ScriptedLLM(script=small_optimizer), RunStore(tmp_path / "run")
    result = asyncio.run(GPO(config(num_generated_instructions_in_each_step=3, optimizer_size="small", repair=1), opt,
                             Evaluator(echo_scorer(), second_round=False), None, store).optimize(plus_task()))
    store.close()
    again = [last_user(r) for r in opt.requests if last_user(r).startswith("That reply was set aside")]
    assert again and again[0] == SMALL_READING.note.format(why="answers as an assistant instead of instructing ('I'm ready')")
    assert not any(w in again[0].lower() for w in ("<start>", "prompt"))
    events = [json.loads(line) for line in (tmp_path / "run/events.jsonl").read_text().splitlines()]
    repaired = [e for e in events if e["event"] == "candidate" and e["first_rejected"]]
    assert repaired and all(e["text"].startswith("Add plus signs") and e["text"].endswith(" times.") for e in repaired)
    assert result.repaired_proposals == len(repaired)


def test_a_repair_that_is_no_prompt_either_is_set_aside_and_both_reasons_are_counted():
    c = Candidate("Hello!", rejected="answers as an assistant instead of instructing ('Hello')",
                  first_reply="#\n#", first_rejected="repeats a line ('#')")
    assert rejection_counts([c]) == {"repeats a line": 1, "answers as an assistant instead of instructing": 1}


def test_the_plan_counts_the_repairs_and_says_how_replies_are_held():
    from gpo.api import ModelSpec, RunSpec, TaskSpec, plan
    from gpo.config import preset

    def planned(model: ModelSpec, **kw):
        cfg = preset("gpo", num_search_epochs=1, **kw)
        return plan(RunSpec(tasks=TaskSpec(source="synthetic", tasks=["navigate"]), config=cfg, optimizer=model))

    embedded, endpoint = ModelSpec("embedded"), ModelSpec("m", base_url="http://127.0.0.1:9/v1")
    once, never = planned(embedded), planned(embedded, repair=0)
    assert once["optimizer_samples"] == 2 * never["optimizer_samples"]
    assert once["optimizer_calls"] - never["optimizer_calls"] == never["optimizer_samples"]
    assert once["replies"].startswith("optimizer: the short meta-prompt for a small optimizer (default for the "
                                      "embedded model and a GGUF of under 4B parameters; --optimizer-size large: "
                                      "the paper's), free replies (")
    assert once["replies"].endswith("asked for again 1 time, told why (--repair 0: never)")
    assert never["replies"].endswith("; unusable replies are not asked for again")
    assert planned(embedded, optimizer_size="large")["replies"].startswith(
        "optimizer: the paper's meta-prompt, replies constrained to one tagged prompt (default for llama.cpp")
    assert planned(endpoint)["replies"].startswith("optimizer: the paper's meta-prompt, free replies (")
    assert planned(endpoint, constrained_replies=True)["replies"].startswith(
        "optimizer: the paper's meta-prompt, replies constrained")


@pytest.mark.parametrize("model,base_url,size,expected", [
    ("embedded", None, "small", False), ("/models/small.gguf", None, "large", True),  # unread: its size is unknown
    (str(default_gguf_path()), None, "small", False),  # the embedded model's file, 135M parameters by its header
    ("m", "http://127.0.0.1:9/v1", "large", False), ("vllm:some/model", None, "large", False)])
def test_the_meta_prompt_and_constrained_replies_are_decided_by_the_optimizer_unless_given(model, base_url, size,
                                                                                            expected):
    from gpo.api import ModelSpec, RunSpec
    from gpo.config import preset
    from gpo.run.build import run_config

    def decided(cfg):
        run = run_config(RunSpec(config=cfg, optimizer=ModelSpec(model, base_url)))
        return run.optimizer_size, run.constrained_replies

    assert preset("gpo").constrained_replies is None and preset("gpo").optimizer_size is None
    assert decided(preset("gpo")) == (size, expected)
    assert decided(preset("gpo", constrained_replies=False))[1] is False  # --no-constrained-replies
    assert decided(preset("gpo", constrained_replies=True))[1] is True
    assert decided(preset("gpo", optimizer_size="large")) == ("large", model != "vllm:some/model" and base_url is None)
    assert decided(preset("gpo", optimizer_size="small")) == ("small", False)  # a short meta-prompt asks no tags
    assert decided(preset("gpo-paper")) == ("large", False) and preset("gpo-paper").repair == 0  # the paper's


def test_the_command_line_sets_constrained_replies_and_repair():
    from click.testing import CliRunner

    from gpo.cli import main

    endpoint = ["--optimizer-model", "m", "--optimizer-base-url", "http://127.0.0.1:9/v1", "--scorer-model", "m",
                "--scorer-base-url", "http://127.0.0.1:9/v1"]  # nothing in process to time
    out = CliRunner().invoke(main, ["optimize", "--dry-run", "--method", "gpo", "--dataset", "synthetic", *endpoint,
                                    "--constrained-replies", "--repair", "0", "--optimizer-size", "small"])
    assert out.exit_code == 0, out.output
    planned = json.loads(out.output[out.output.index("{"):out.output.rindex("}") + 1])
    assert planned["replies"] == ("optimizer: the short meta-prompt for a small optimizer, replies constrained to one "
                                  "tagged prompt; unusable replies are not asked for again")
    wrong = CliRunner().invoke(main, ["optimize", "--dry-run", "--dataset", "synthetic", *endpoint,
                                      "--optimizer-size", "tiny"])
    assert wrong.exit_code != 0 and "optimizer_size must be small or large, got 'tiny'" in wrong.output


def test_a_repair_that_keeps_words_of_its_first_reply_is_no_copy_but_one_of_the_note_is(tmp_path):
    """The first reply is quoted back to the optimizer when it is asked again, but gpo did not write
    it: a repair that keeps its good half is usable. The note gpo wrote still counts as meta-prompt."""
    note_words = "Reply with one sentence that tells how to turn each input into its output."

    def small_optimizer(request, i):  # a scripted fake optimizer
        text = last_user(request)
        if text.startswith("That reply was set aside"):
            first = request.messages[-2][1]
            return note_words if first == JUNK else f"Add plus signs to the end of each input {request.seed % 97} times."
        if not text.startswith("Examples:"):
            return "It is too short."
        if i == 0:
            return JUNK
        return f"Add plus signs to the end of each input {request.seed % 89} times, says the new instruction."

    opt, store = ScriptedLLM(script=small_optimizer), RunStore(tmp_path / "run")
    asyncio.run(GPO(config(num_generated_instructions_in_each_step=3, optimizer_size="small", repair=1), opt,
                    Evaluator(echo_scorer(), second_round=False), None, store).optimize(plus_task()))
    store.close()
    events = [json.loads(line) for line in (tmp_path / "run/events.jsonl").read_text().splitlines()]
    repaired = [e for e in events if e["event"] == "candidate" and e["first_rejected"]]
    kept = [e for e in repaired if e["text"].startswith("Add plus signs")]
    assert kept and all(e["first_rejected"].startswith("talks about prompts") for e in kept)
    assert all(e["rejected"] is None or e["rejected"] == "duplicate in this step" for e in kept)
    copied = [e for e in repaired if e["text"] == note_words]  # then seen before
    assert copied and copied[0]["rejected"].endswith("copies 8+ words of the meta-prompt or its examples")
    assert all(e["rejected"] for e in copied)
