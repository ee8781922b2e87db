"""The Evaluator: rendering + first round + second round + metric, per example."""

import asyncio
import json

import pytest

from fakes import ScriptedLLM
from gpo.llm import LocalLLM
from gpo.scoring import Evaluator, Position, PromptFormat
from gpo.tasks import synthetic_task


def chatty_scorer(request, i):
    """Scripted scorer: rambles in round one; in round two answers 'Yes' only if the
    instruction said 'carefully'."""
    if len(request.messages) > 1:  # second round
        first = request.messages[0][1]
        return "Yes" if "carefully" in first else "No"
    return "Let me think about the steps one by one..."


def test_second_round_flow_records_and_mean():
    task = synthetic_task("navigate", sizes={"eval": 10})
    scorer = ScriptedLLM(script=chatty_scorer)
    ev = asyncio.run(Evaluator(scorer, PromptFormat(Position.Q_END)).evaluate(task, "Go carefully.", "eval"))
    yes = sum(e.target == "Yes" for e in task.split("eval"))
    assert ev.n == 10 and ev.score == yes / 10
    r = ev.records[0]
    assert r.raw_answer.startswith("Let me think") and r.raw_answer_second_round in ("Yes", "No")
    assert "Yes" in r.second_round_prompt and "No" in r.second_round_prompt
    assert r.prompt.endswith("Go carefully.")
    assert 0 < ev.ci95 < 1
    assert scorer.usage.calls == 20  # two rounds


def test_second_round_can_be_switched_off():
    task = synthetic_task("navigate", sizes={"eval": 4})
    scorer = ScriptedLLM(script=lambda r, i: "Yes")
    ev = asyncio.run(Evaluator(scorer, second_round=False).evaluate(task, "x", "eval"))
    assert scorer.usage.calls == 4 and ev.records[0].raw_answer_second_round is None


def test_same_prompt_same_split_is_scored_once():
    task = synthetic_task("navigate", sizes={"eval": 5})
    scorer = ScriptedLLM(script=lambda r, i: "Yes")
    evaluator = Evaluator(scorer, second_round=False)

    async def go():
        return await asyncio.gather(evaluator.evaluate(task, "p", "eval"), evaluator.evaluate(task, "p", "eval"),
                                    evaluator.evaluate_many(task, ["p", "q"], "eval"))

    asyncio.run(go())
    assert scorer.usage.calls == 10  # "p" once, "q" once


def test_examples_already_scored_are_not_sent_again_and_requests_are_counted_per_task():
    task = synthetic_task("navigate", sizes={"eval": 6})
    scorer = ScriptedLLM(script=chatty_scorer)
    evaluator = Evaluator(scorer)
    assert evaluator.requests_needed(task, "p", "eval", [0, 1, 2]) == 6  # 3 examples, two rounds each

    async def go():
        part = await evaluator.evaluate(task, "p", "eval", [1, 3])
        whole = await evaluator.evaluate(task, "p", "eval")
        return part, whole

    part, whole = asyncio.run(go())
    assert scorer.usage.calls == 12  # 6 examples x 2 rounds: examples 1 and 3 were not asked twice
    assert [r.index for r in whole.records] == list(range(6))
    assert whole.records[1] is part.records[0] and whole.records[3] is part.records[1]
    assert evaluator.requests_needed(task, "p", "eval") == 0 and evaluator.requests_needed(task, "q", "eval") == 12
    assert evaluator.requests[task.id] == 12 and evaluator.tokens[task.id] == 12 * 15  # fake: 10 + 5 tokens


def test_requests_count_cache_hits_like_a_fresh_run(tmp_path):
    from gpo.llm import ResponseCache

    task = synthetic_task("navigate", sizes={"eval": 4})
    counts = []
    for _ in range(2):
        scorer = ScriptedLLM(script=lambda r, i: "Yes", cache=ResponseCache(tmp_path / "c.sqlite"))
        evaluator = Evaluator(scorer, second_round=False)
        asyncio.run(evaluator.evaluate(task, "p", "eval"))
        counts.append((scorer.usage.calls, evaluator.requests[task.id]))
    assert counts == [(4, 4), (0, 4)]  # the second run is served from the cache but counts the same


def test_records_are_written(tmp_path):
    task = synthetic_task("word_sorting", sizes={"test": 3})
    scorer = ScriptedLLM(script=lambda r, i: "alpha beta")
    ev = asyncio.run(Evaluator(scorer, second_round=False).evaluate(task, "Sort.", "test"))
    path = ev.write(tmp_path / "out.jsonl")
    lines = [json.loads(l) for l in path.read_text().splitlines()]
    assert lines[0]["summary"]["n"] == 3 and len(lines) == 4
    assert {"prompt", "raw_answer", "parsed_answer", "target", "score"} <= set(lines[1])


@pytest.mark.model
def test_embedded_model_scores_a_real_task():
    task = synthetic_task("boolean_expressions", sizes={"eval": 6})
    scorer = LocalLLM()
    evaluator = Evaluator(scorer, max_tokens=48)
    ev = asyncio.run(evaluator.evaluate(task, "Answer True or False.", "eval"))
    assert ev.n == 6 == scorer.usage.calls // 2  # two rounds for each example, each sent once
    # each example's score is its parsed answer against the target, and the split's score their mean
    assert all(r.score == float(r.parsed_answer == r.target.lower()) for r in ev.records)
    assert ev.score == sum(r.score for r in ev.records) / 6
    assert all(r.raw_answer_second_round is not None for r in ev.records)
    assert all(r.parsed_answer in ("true", "false") or r.score == 0 for r in ev.records)
    again = asyncio.run(Evaluator(scorer, max_tokens=48).evaluate(task, "Answer True or False.", "eval"))
    assert [r.raw_answer for r in again.records] == [r.raw_answer for r in ev.records]  # greedy: deterministic


def test_prompt_files_in_the_papers_shape_and_ours(tmp_path):

    from gpo.api import read_prompt_file
    from gpo.tasks import TaskError

    f = tmp_path / "GPO_results.jsonl"
    f.write_text('{"dataset": "bbh", "task": "navigate", "prompt": "Track your position."}\n'
                 '{"dataset": "gsm8k", "prompt": "Plan meticulously."}\n'
                 '{"dataset": "synthetic", "task": "navigate", "final_prompt": "Ours.", "final_eval": 0.5}\n')
    rows = read_prompt_file(f)
    assert [(r["task"], r["prompt"]) for r in rows] == [("navigate", "Track your position."), ("gsm8k", "Plan meticulously."),
                                                         ("navigate", "Ours.")]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"dataset": "bbh", "text": "x"}\n')
    with pytest.raises(TaskError, match=r"bad\.jsonl, line 1: no 'prompt'"):
        read_prompt_file(bad)
