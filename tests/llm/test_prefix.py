"""Prefix reuse in the embedded backend (gpo.llm.prefix): the second round continues the
first, a shared start is read once, memory stays bounded, and records do not depend on
what was reused (fresh run, rerun with the caches cleared, killed-and-resumed run)."""

from __future__ import annotations

import asyncio

import pytest

from gpo.llm import LocalLLM, Request, ResponseCache
from gpo.llm.local import batch_decoder
from gpo.llm.prefix import BLOCK, plan
from gpo.scoring import Evaluator
from gpo.tasks import synthetic_task


def test_a_plan_reads_blocks_from_each_message_and_a_continued_answer_one_token_at_a_time():
    assert plan(70) == [BLOCK, 2 * BLOCK, 70]
    assert plan(2 * BLOCK) == [BLOCK, 2 * BLOCK]
    # an answer at 40..43 (as it was generated), then blocks again from where it ends
    assert plan(100, ((40, 43),)) == [BLOCK, 40, 41, 42, 43, 43 + BLOCK, 100]
    # blocks counted from where each message starts: chats sharing their first messages share chunks
    assert plan(100, marks=(10,)) == [10, 10 + BLOCK, 10 + 2 * BLOCK, 100]
    assert plan(0) == []


def _prefix_of(llm: LocalLLM):
    return batch_decoder(llm.path, llm.n_ctx, llm.parallel, prefix_mb=llm.prefix_cache).prefix


def _task(n: int = 5):
    task = synthetic_task("navigate", seed=3, sizes={"eval": n})
    assert task.second_round  # the records below have two rounds
    return task


def _kept(prefix) -> dict[tuple[int, ...], bytes]:
    """The KV bytes of every state the prefix cache holds, by the tokens it read."""
    return {tuple(state.tokens): bytes(state.data) for state in prefix._states.values()}


def _records(evaluation):
    return [(r.index, r.raw_answer, r.raw_answer_second_round, r.score) for r in evaluation.records]


INSTRUCTION = "Let's think step by step."


@pytest.mark.model
def test_the_second_round_continues_the_first_and_a_shared_start_is_read_once():
    llm = LocalLLM()
    prefix = _prefix_of(llm)
    prefix.clear()
    task = _task(4)
    evaluator = Evaluator(llm, max_tokens=48)
    firsts = evaluator.first_requests(task, INSTRUCTION, "eval", range(4))
    out = asyncio.run(llm.generate(firsts))
    # every example starts with the same header and instruction: the first whole blocks
    # of it were read once, by the first example
    assert out[0].samples[0].cached_prompt_tokens == 0
    assert all(c.samples[0].cached_prompt_tokens >= BLOCK for c in out[1:])
    evaluated = prefix.evaluated
    ev = asyncio.run(evaluator.evaluate(task, INSTRUCTION, "eval"))
    # scoring asked the four first rounds again (answered the same, from the prefix cache
    # but for their last chunk) and four second rounds, each continuing its first round:
    # its prompt and the answer as generated were not read again
    seconds = [Request.chat(firsts[j].message_dicts() + [
        {"role": "assistant", "content": ev.records[j].raw_answer.strip()},
        {"role": "user", "content": task.second_round_for(task.split("eval")[j])}], max_tokens=100, continues=True)
        for j in range(4)]
    again = asyncio.run(llm.generate(seconds))
    continued = [a.samples[0].cached_prompt_tokens > f.samples[0].prompt_tokens for a, f in zip(again, out)]
    assert sum(continued) >= 3, continued
    for a, was_continued in zip(again, continued):  # an answer's text (machine-dependent) may re-tokenize
        if not was_continued:                          # otherwise than generated: that one reads it again
            continue
        s = a.samples[0]
        assert s.prompt_tokens - s.cached_prompt_tokens < 60  # only the follow-up question is new
    assert prefix.evaluated > evaluated


@pytest.mark.model
def test_records_are_the_same_fresh_rerun_with_caches_cleared_and_killed_and_resumed(tmp_path):
    task = _task(5)
    llm = LocalLLM()
    prefix = _prefix_of(llm)

    def evaluate(cache=None, order=None):
        model = LocalLLM(cache=cache)
        evaluator = Evaluator(model, max_tokens=48)
        for part in order or []:
            asyncio.run(evaluator.evaluate(task, INSTRUCTION, "eval", part))
        return _records(asyncio.run(evaluator.evaluate(task, INSTRUCTION, "eval"))), model

    prefix.clear()
    fresh, _ = evaluate()
    fresh_states = _kept(prefix)
    assert prefix.reused > 0
    prefix.clear()
    rerun, _ = evaluate(order=[[4, 1], [2]])  # another order: other states were kept and reused
    assert rerun == fresh

    # a run killed mid-evaluation: some first rounds answered and cached on disk, then cancelled
    prefix.clear()
    cache = ResponseCache(tmp_path / "responses.sqlite")
    killed = LocalLLM(cache=cache)

    async def kill_after_two():
        scoring = asyncio.ensure_future(Evaluator(killed, max_tokens=48).evaluate(task, INSTRUCTION, "eval"))
        while killed.usage.calls < 2:  # an event: two answers paid for and cached
            await asyncio.sleep(0.05)
        scoring.cancel()
        with pytest.raises(asyncio.CancelledError):
            await scoring

    asyncio.run(kill_after_two())
    prefix.clear()  # a new process: nothing kept in memory
    resumed, model = evaluate(cache=ResponseCache(tmp_path / "responses.sqlite"))
    assert model.usage.cache_hits >= 2  # the resumed run did not pay again for what was answered
    assert resumed == fresh
    # the guarantee beneath: the KV computed for the same tokens is the same, bit for bit,
    # whether a second round continued its first round's state or read it all afresh
    resumed_states = _kept(prefix)
    common = fresh_states.keys() & resumed_states.keys()
    assert len(common) >= 5
    assert all(fresh_states[k] == resumed_states[k] for k in common)


@pytest.mark.model
def test_memory_stays_within_the_prefix_caches_bound():
    llm = LocalLLM(prefix_cache=4)  # MiB: room for a state or two of these prompts
    prefix = _prefix_of(llm)
    prefix.clear()
    requests = [Request.chat(f"Question {i}: name a colour that rhymes with {w}.", max_tokens=24)
                for i, w in enumerate(["bed", "sky", "bean", "bite", "brown", "cold", "sea", "fun"])]
    for r in requests:
        asyncio.run(llm.generate([r]))
        assert prefix.used <= 4 << 20
    assert prefix.evicted >= 1 and len(prefix) >= 1


@pytest.mark.model
def test_switched_off_every_prompt_is_read_whole_as_before():
    llm = LocalLLM(prefix_cache=0)
    r = Request.chat("Let's think step by step. What is 2 + 3?", max_tokens=16)
    a, b = asyncio.run(llm.generate([r, Request.chat(r.messages[0][1] + " And 4 + 5?", max_tokens=16)]))
    assert a.samples[0].cached_prompt_tokens == 0 and b.samples[0].cached_prompt_tokens == 0
    assert llm.usage.cached_prompt_tokens == 0


@pytest.mark.model
def test_batched_a_request_that_ends_at_its_first_token_leaves_a_usable_state():
    llm = LocalLLM(parallel=2)
    prefix = _prefix_of(llm)
    text = "Here is a long list of fruits: apple, banana, cherry, date, elderberry, fig, grape, honeydew. " * 2
    short, full = (Request.chat(text + "Name one.", max_tokens=n) for n in (1, 16))
    prefix.clear()
    (fresh,) = asyncio.run(llm.generate([full]))
    prefix.clear()
    asyncio.run(llm.generate([short]))  # finished by its length at the first token it sampled
    (again,) = asyncio.run(llm.generate([full]))
    assert again.samples[0].cached_prompt_tokens >= BLOCK  # started from the state the short one left
    assert again.text == fresh.text
