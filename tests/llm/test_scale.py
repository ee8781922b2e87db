"""Scale-out: endpoint fleets, Ray replica pools, batched llama.cpp decoding, --gpus mapping.

The pools run for real: Ray on this machine (a local cluster, 2 CPUs) with fake-latency
replicas (ScriptedLLM in an actor), and real HTTP servers on 127.0.0.1 (ScriptedEndpoint).
Batched decoding runs on the embedded model.
"""

from __future__ import annotations

import asyncio
import json
import functools

import pytest

import fakes
from fakes import ScriptedEndpoint, ScriptedLLM, parity_answer
from gpo.llm import FatalLLMError, LocalLLM, Request, ResponseCache, build_llm
from gpo.llm.pool import LLMMember, Pool
from gpo.scoring import Evaluator
from gpo.tasks import synthetic_task


async def until(condition, what: str, deadline: float = 120.0, every: float = 0.02) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``deadline`` seconds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while not condition():
        if loop.time() > end:
            raise AssertionError(f"timed out after {deadline:.0f} s waiting for {what}")
        await asyncio.sleep(every)


def records(evaluation):
    return [(r.index, r.raw_answer, r.raw_answer_second_round, r.score) for r in evaluation.records]


# ---------------------------------------------------------------- HTTP fleets

def test_fleet_balances_by_outstanding_requests_and_counts_usage_per_endpoint():
    with ScriptedEndpoint(latency=0.05) as a, ScriptedEndpoint(latency=0.05) as b:
        fleet = build_llm("m", base_url=f"{a.url}, {b.url}", concurrency=4)
        assert isinstance(fleet, Pool) and fleet.concurrency == 8
        out = asyncio.run(fleet.generate([Request.chat(f"q{i}") for i in range(40)]))
    assert [c.text for c in out] == ["answer 0"] * 40
    assert len(a.bodies) + len(b.bodies) == 40
    assert min(len(a.bodies), len(b.bodies)) >= 15  # both served, about evenly
    assert a.max_in_flight <= 4 and b.max_in_flight <= 4
    members = fleet.usage_by_member()
    assert sorted(u["calls"] for u in members.values()) == sorted([len(a.bodies), len(b.bodies)])
    assert sum(u["prompt_tokens"] for u in members.values()) == fleet.usage.prompt_tokens == 7 * 40


@pytest.mark.parametrize("failure", [500, 0], ids=["http-500", "dropped-connection"])
def test_fleet_fails_over_and_sets_a_failing_endpoint_aside(tmp_path, failure):
    task = synthetic_task("navigate", sizes={"eval": 12})
    with ScriptedEndpoint(statuses=[failure] * 1000) as bad, ScriptedEndpoint() as good:
        cache = ResponseCache(tmp_path / "cache.sqlite")
        fleet = build_llm("m", base_url=f"{bad.url},{good.url}", cache=cache, concurrency=2)
        fleet.cooldown = 60.0
        ev = asyncio.run(Evaluator(fleet, second_round=False).evaluate(task, "Think.", "eval"))
    assert ev.n == 12 and all(r.raw_answer == "answer 0" for r in ev.records)
    assert len(good.bodies) == 12  # every request answered once, by the healthy one
    assert 1 <= len(bad.bodies) <= 2  # tried, then set aside for the cool-down
    usage = fleet.usage_by_member()
    assert usage[fleet.members[0].name]["calls"] == 0 and usage[fleet.members[1].name]["calls"] == 12
    assert fleet.usage.calls == 12


def test_fleet_cache_identity_does_not_depend_on_the_endpoint_list(tmp_path):
    cache = ResponseCache(tmp_path / "cache.sqlite")
    with ScriptedEndpoint() as a, ScriptedEndpoint() as b, ScriptedEndpoint() as c:
        first = build_llm("m", base_url=f"{a.url},{b.url}", cache=cache)
        asyncio.run(first.generate([Request.chat("q")]))
        again = build_llm("m", base_url=f"{c.url},{b.url}", cache=cache)
        out = asyncio.run(again.generate([Request.chat("q")]))
    assert out[0].cached == 1 and again.usage.calls == 0


def test_pool_raises_a_retryable_error_when_every_member_fails():
    with ScriptedEndpoint(statuses=[503] * 100) as a, ScriptedEndpoint(statuses=[503] * 100) as b:
        fleet = build_llm("m", base_url=f"{a.url},{b.url}")
        fleet.retry = type(fleet.retry)(max_attempts=2, base_delay=0.01)
        fleet.cooldown = 0.01
        with pytest.raises(Exception, match="gave up after 2 attempts.*no member could answer"):
            asyncio.run(fleet.generate([Request.chat("q")]))
    assert len(a.bodies) == len(b.bodies) == 2


# ---------------------------------------------------------------- Ray replica pools

@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray.cloudpickle.register_pickle_by_value(fakes)  # the actors get the fake by value
    yield ray
    ray.shutdown()


def fake_pool(replicas: int, cache=None, delay: float = 0.05):
    from gpo.llm.ray_pool import ray_pool

    factory = functools.partial(ScriptedLLM, script=parity_answer, delay=delay)
    return ray_pool("fake", factory, replicas=replicas, num_cpus=0, kind="scripted", cache=cache)


def test_a_pool_of_two_replicas_returns_the_same_records_as_one(ray_local, tmp_path):
    task = synthetic_task("navigate", sizes={"eval": 16})
    one = fake_pool(1)
    two = fake_pool(2)
    ev1 = asyncio.run(Evaluator(one).evaluate(task, "Think.", "eval"))
    ev2 = asyncio.run(Evaluator(two).evaluate(task, "Think.", "eval"))
    assert records(ev1) == records(ev2) and ev2.n == 16
    calls = [u["calls"] for u in two.usage_by_member().values()]
    assert sum(calls) == two.usage.calls == 32 and min(calls) >= 8  # both replicas served
    asyncio.run(one.aclose())
    asyncio.run(two.aclose())


def test_killing_a_replica_mid_evaluation_loses_nothing_and_pays_nothing_twice(ray_local, tmp_path):
    task = synthetic_task("navigate", sizes={"eval": 24})
    clean = asyncio.run(Evaluator(ScriptedLLM(script=parity_answer)).evaluate(task, "Think.", "eval"))
    cache = ResponseCache(tmp_path / "cache.sqlite")
    puts: list[str] = []
    store = cache.put
    cache.put = lambda key, *rest: (puts.append(key), store(key, *rest))
    pool = fake_pool(2, cache=cache, delay=0.1)
    victim = pool.members[0]

    async def run():
        evaluation = asyncio.ensure_future(Evaluator(pool).evaluate(task, "Think.", "eval"))
        # some answers are in and others in flight: an event, not a sleep
        await until(lambda: len(puts) >= 4 and pool._outstanding.get(victim.name, 0) > 0,
                    what="answers stored and requests in flight on the victim")
        ray_local.kill(victim.actor, no_restart=True)
        ev = await evaluation
        # the replacement starts in the background: wait for it, with a deadline
        await until(lambda: pool.replaced == 1 or pool.replace_errors, what="the lost replica replaced")
        return ev

    ev = asyncio.run(run())
    assert records(ev) == records(clean)
    assert pool.usage.calls == 48  # each request answered once: 24 examples x 2 rounds
    assert len(puts) == len(set(puts)) == len(cache) == 48  # each answer stored once
    assert pool.replace_errors == [] and pool.replaced == 1 and victim not in pool.members
    assert pool.usage_by_member()[victim.name]["calls"] < 48
    # the fresh replica serves
    asyncio.run(pool.generate([Request.chat(f"after {i}") for i in range(8)]))
    assert sum(u["calls"] for n, u in pool.usage_by_member().items() if n not in (victim.name, pool.members[1].name)) > 0
    asyncio.run(pool.aclose())


@pytest.mark.model
def test_replicas_of_the_embedded_model_answer_like_the_in_process_model(ray_local):
    requests = [Request.chat(f"Is {n} an even number? Answer Yes or No.", max_tokens=12) for n in (3, 8)]
    pool = build_llm("embedded", replicas=2)
    local = LocalLLM()
    got = asyncio.run(pool.generate(requests))
    want = asyncio.run(local.generate(requests))
    assert [c.text for c in got] == [c.text for c in want]
    assert pool.backend_id == local.backend_id  # one cache identity, in process or pooled
    asyncio.run(pool.aclose())


def test_replicas_need_an_in_process_model():
    with pytest.raises(FatalLLMError, match="in-process model"):
        build_llm("gpt-4o", base_url="http://127.0.0.1:9/v1", replicas=2)


# ---------------------------------------------------------------- batched decoding

def _navigate_requests(n: int, max_tokens: int = 48):
    task = synthetic_task("navigate", seed=0)
    return [Request.chat("Let's think step by step.\n" + e.input, max_tokens=max_tokens)
            for e in task.split("eval")[:n]]


@pytest.mark.model
def test_batched_decoding_gives_the_one_at_a_time_text_for_greedy_requests():
    requests = _navigate_requests(12)
    one = asyncio.run(LocalLLM().generate(requests))
    batched_llm = LocalLLM(parallel=6)
    batched = asyncio.run(batched_llm.generate(requests))
    same = sum(a.text == b.text for a, b in zip(one, batched))
    print(f"greedy texts equal to --scorer-parallel 1: {same}/{len(requests)}")
    assert same / len(requests) >= 0.75
    assert batched_llm.max_in_flight > 1  # they really were decoded together
    for a, b in zip(one, batched):
        assert b.samples[0].prompt_tokens == a.samples[0].prompt_tokens


@pytest.mark.model
def test_batched_decoding_respects_each_requests_stop_strings_and_max_tokens():
    base = "Count from one to twenty in words, separated by commas."
    requests = [
        Request.chat(base, max_tokens=5),
        Request.chat(base, max_tokens=40, stop=("five",)),
        Request.chat(base, max_tokens=40, stop=(",",)),
        Request.chat(base, max_tokens=24),
    ]
    out = asyncio.run(LocalLLM(parallel=4).generate(requests))
    assert out[0].samples[0].completion_tokens == 5 and out[0].samples[0].finish_reason == "length"
    assert "five" not in out[1].text
    assert "," not in out[2].text and out[2].samples[0].finish_reason == "stop"
    assert out[3].samples[0].completion_tokens <= 24
    one = asyncio.run(LocalLLM().generate(requests))
    assert [c.samples[0].finish_reason for c in one] == [c.samples[0].finish_reason for c in out]


@pytest.mark.model
def test_batched_sampling_is_seeded_per_sequence():
    r = Request.chat("Write one word about the sea.", temperature=1.0, max_tokens=8, n=3, seed=5)
    a = asyncio.run(LocalLLM(parallel=3).generate([r]))[0].texts
    b = asyncio.run(LocalLLM(parallel=3).generate([r]))[0].texts
    assert a == b  # the same seeds give the same samples, whatever else is in the batch


# ---------------------------------------------------------------- --gpus

def test_gpus_map_to_llama_cpp_offload_arguments():
    from gpo.llm.local import gpu_offload_args

    assert gpu_offload_args(()) == {}
    two = gpu_offload_args((0, 1))
    assert two["n_gpu_layers"] == -1 and two["tensor_split"] == [1.0, 1.0] and two["main_gpu"] == 0
    assert gpu_offload_args((2,))["tensor_split"] == [0.0, 0.0, 1.0]


def test_gpus_map_to_vllm_tensor_parallel():
    from gpo.llm.vllm_local import vllm_engine_args

    env, kwargs = vllm_engine_args("meta-llama/Llama-3.1-8B-Instruct", (2, 3))
    assert env == {"CUDA_VISIBLE_DEVICES": "2,3"} and kwargs["tensor_parallel_size"] == 2
    assert vllm_engine_args("m", (), tensor_parallel=4) == ({}, {"model": "m", "tensor_parallel_size": 4})


def test_gpus_without_gpu_support_fail_at_once_in_one_line():
    import llama_cpp

    if llama_cpp.llama_supports_gpu_offload():
        pytest.skip("this llama-cpp-python has GPU support")
    with pytest.raises(FatalLLMError, match="no GPU support.*GGML_CUDA=on") as err:
        build_llm("embedded", gpus=(0,))
    assert "\n" not in str(err.value)


def test_fleet_member_names_are_the_endpoints():
    fleet = build_llm("m", base_url="http://127.0.0.1:1/v1,http://127.0.0.1:2/v1")
    assert [m.name for m in fleet.members] == ["m (openai:http://127.0.0.1:1/v1)", "m (openai:http://127.0.0.1:2/v1)"]
    assert isinstance(fleet.members[0], LLMMember)


def test_a_runs_usage_and_report_count_requests_per_endpoint(tmp_path):
    from gpo.api import ModelSpec, RunSpec, TaskSpec, optimize
    from gpo.run.report import write_report

    with ScriptedEndpoint() as a, ScriptedEndpoint() as b, ScriptedEndpoint() as opt:
        spec = RunSpec(
            tasks=TaskSpec(source="synthetic", tasks=["navigate"], sizes={"train": 4, "eval": 6, "test": 6}),
            scorer=ModelSpec("m", base_url=f"{a.url},{b.url}"),
            optimizer=ModelSpec("m", base_url=opt.url),
            method="cot",
        )
        optimize(spec, tmp_path / "run")
    events = [json.loads(line) for line in (tmp_path / "run" / "events.jsonl").read_text().splitlines()]
    usage = [e for e in events if e["event"] == "usage"][-1]["scorer"]
    assert sorted(usage["members"]) == sorted([f"m (openai:{a.url})", f"m (openai:{b.url})"])
    assert sum(m["calls"] for m in usage["members"].values()) == usage["calls"] == len(a.bodies) + len(b.bodies)
    page = write_report(tmp_path / "run").read_text()
    assert f"m (openai:{a.url})" in page


@pytest.mark.model
def test_cancelled_requests_leave_the_batch_and_the_model_keeps_serving():
    from gpo.llm.local import batch_decoder

    llm = LocalLLM(parallel=4)
    stories = [Request.chat(f"Write a long story about the number {i}.", max_tokens=400) for i in range(8)]

    async def go():
        pending = asyncio.ensure_future(llm.generate(stories))
        # wait for the event (four sequences in the batch), not for a time that is long
        # enough on one machine and too short on another
        decoder = await asyncio.to_thread(batch_decoder, llm.path, llm.n_ctx, 4, prefix_mb=llm.prefix_cache)
        await until(lambda: decoder.live == 4, what="four sequences in the batch")
        pending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await pending
        return decoder, await llm.generate([Request.chat("Say yes.", max_tokens=4)])

    decoder, out = asyncio.run(go())
    assert out[0].samples[0].completion_tokens >= 1
    assert decoder.dropped == 4  # the four in flight left the batch; the other four never reached it
    assert decoder.live == 0
