"""The OpenAI-compatible backend: retries, fatal errors, concurrency (scripted
local endpoint), and a real llama.cpp server."""

import asyncio
import socket
import subprocess
import sys
import time

import urllib.request
import pytest


def run(llm, requests):
    async def go():
        try:
            return await llm.generate(requests)
        finally:
            await llm.aclose()

    return asyncio.run(go())

from fakes import ScriptedEndpoint
from gpo.llm import FatalLLMError, LLMError, OpenAILLM, Request
from gpo.llm.retry import RetryPolicy

FAST = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05)
SECRET = "sk-test-SECRET-1234567890abcdef"


def test_retries_429_then_500_then_success_with_all_arguments():
    with ScriptedEndpoint(statuses=[429, 500], retry_after="0") as ep:
        llm = OpenAILLM(model="my-model", base_url=ep.url, api_key=SECRET, retry=FAST)
        req = Request.chat("hello", temperature=0.7, max_tokens=33, n=3, seed=5, stop=("END",))
        (out,) = run(llm, [req])
    assert out.texts == ["answer 0", "answer 1", "answer 2"]
    assert len(ep.bodies) == 3
    for body in ep.bodies:  # every argument survives every retry
        assert body["model"] == "my-model" and body["n"] == 3 and body["max_tokens"] == 33
        assert body["temperature"] == 0.7 and body["stop"] == ["END"] and body["seed"] == 5
    assert llm.usage.calls == 1 and llm.usage.prompt_tokens == 7


def test_prompt_tokens_an_endpoint_served_from_its_cache_are_counted_and_priced():
    """usage.prompt_tokens_details.cached_tokens, as OpenAI (and vLLM) document it, from the
    scripted endpoint (a fake): counted in the role's usage and the meter, priced at the cached
    price where one is given, at the prompt price otherwise."""
    from gpo.llm import Pricing
    from gpo.llm.meter import Meter
    from gpo.run.sources import from_sources

    with ScriptedEndpoint(cached_tokens=5) as ep:
        llm = OpenAILLM(model="m", base_url=ep.url, api_key=SECRET, pricing=Pricing(1.0, 2.0, 0.1))
        llm.meter, llm.role = Meter(max_cost=1.0), "scorer"
        run(llm, [Request.chat("a"), Request.chat("b")])
        plain = OpenAILLM(model="m", base_url=ep.url, api_key=SECRET, pricing=Pricing(1.0, 2.0))
        run(plain, [Request.chat("a")])
    assert llm.usage.prompt_tokens == 14 and llm.usage.cached_prompt_tokens == 10
    assert llm.cost == pytest.approx(2 * (2 * 1.0 + 5 * 0.1 + 3 * 2.0) / 1e6)
    assert llm.meter.cost["scorer"] == pytest.approx(llm.cost)
    assert llm.meter.to_dict()["run"]["scorer"]["cached_prompt_tokens"] == 10
    assert plain.cost == pytest.approx((7 * 1.0 + 3 * 2.0) / 1e6)  # no cached price: the prompt price
    spec = from_sources(overrides={"scorer_model": "m", "scorer_base_url": "http://127.0.0.1:9/v1",
                                           "scorer_price": "1,2,0.1"}, check_models=False)
    assert (spec.scorer.price_prompt, spec.scorer.price_completion, spec.scorer.price_cached_prompt) == (1, 2, 0.1)


def test_cache_prompt_goes_only_to_llama_server_whose_own_cached_count_is_read():
    """llama.cpp's server (answering /props as it does; the scripted endpoint, a fake) gets
    ``cache_prompt`` and its ``timings.cache_n`` is counted; another endpoint gets no field it
    may refuse, and is asked /props once, not once per request."""
    with ScriptedEndpoint(cached_tokens=4, llama_server=True) as server:
        llm = OpenAILLM(model="m", base_url=server.url, api_key=SECRET)
        run(llm, [Request.chat("a"), Request.chat("b")])
    assert [b.get("cache_prompt") for b in server.bodies] == [True, True]
    assert llm.usage.cached_prompt_tokens == 8
    with ScriptedEndpoint() as other:
        llm = OpenAILLM(model="m", base_url=other.url, api_key=SECRET)
        run(llm, [Request.chat("a"), Request.chat("b")])
    assert all("cache_prompt" not in b for b in other.bodies) and len(other.bodies) == 2
    assert llm.usage.cached_prompt_tokens == 0


def test_retry_after_header_is_honoured():
    with ScriptedEndpoint(statuses=[429], retry_after="0.4") as ep:
        llm = OpenAILLM(model="m", base_url=ep.url, retry=RetryPolicy(max_attempts=3, base_delay=0.0))
        start = time.time()
        run(llm, [Request.chat("x")])
    assert time.time() - start >= 0.35


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_fatal_status_fails_at_once_without_the_key(status):
    with ScriptedEndpoint(statuses=[status] * 5) as ep:
        llm = OpenAILLM(model="m", base_url=ep.url, api_key=SECRET, retry=FAST)
        with pytest.raises(FatalLLMError) as err:
            run(llm, [Request.chat("x")])
    assert len(ep.bodies) == 1  # no retry
    assert f"HTTP {status}" in str(err.value)
    assert SECRET not in str(err.value) and "SECRET" not in str(err.value)
    assert SECRET not in repr(llm)


def test_gives_up_after_bounded_attempts():
    with ScriptedEndpoint(statuses=[503] * 10) as ep:
        llm = OpenAILLM(model="m", base_url=ep.url, retry=FAST)
        with pytest.raises(LLMError, match="gave up after 4 attempts"):
            run(llm, [Request.chat("x")])
    assert len(ep.bodies) == 4


def test_unreachable_endpoint_is_a_clear_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    llm = OpenAILLM(model="m", base_url=f"http://127.0.0.1:{port}/v1", retry=FAST)
    with pytest.raises(LLMError, match="cannot connect"):
        run(llm, [Request.chat("x")])


def test_concurrency_limit_is_honoured():
    with ScriptedEndpoint(latency=0.05) as ep:
        llm = OpenAILLM(model="m", base_url=ep.url, concurrency=3, retry=FAST)
        outs = run(llm, [Request.chat(f"q{i}") for i in range(20)])
    assert len(outs) == 20 and len(ep.bodies) == 20
    assert ep.max_in_flight <= 3 and llm.max_in_flight <= 3
    assert ep.max_in_flight >= 2  # it really ran concurrently


# ---------------------------------------------------------------- real llama.cpp server

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# `python -m llama_cpp.server`, with the embedded backend's guard against llama.cpp's AMX kernels
SERVER_MAIN = ("from gpo.llm.local import avoid_amx_kernels; avoid_amx_kernels(); import runpy; "
               "runpy.run_module('llama_cpp.server', run_name='__main__', alter_sys=True)")


def _start_server(gguf, *extra):
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER_MAIN, "--model", str(gguf), "--host", "127.0.0.1", "--port", str(port),
         "--n_ctx", "2048", "--model_alias", "smollm2", *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            with urllib.request.urlopen(url + "/v1/models", timeout=1) as resp:
                if resp.status == 200:
                    return proc, url + "/v1"
        except OSError:
            pass
        if proc.poll() is not None:
            raise RuntimeError("llama_cpp.server exited during start-up")
        time.sleep(0.5)
    proc.kill()
    raise RuntimeError("llama_cpp.server did not start in 60 s")


@pytest.fixture(scope="module")
def llama_server(gguf_path):
    proc, url = _start_server(gguf_path)
    yield url
    proc.terminate()
    proc.wait(timeout=20)


def test_real_server_chat(llama_server, tmp_path):
    # A server that reuses the previous request's KV may answer the same greedy request
    # differently (the split points change the logits on some CPUs), so "greedy is
    # deterministic" is not asserted. What gpo guarantees is its cache: the second ask
    # returns the first answer and sends nothing.
    from gpo.llm import ResponseCache

    cache = ResponseCache(tmp_path / "cache.sqlite")
    req = Request.chat("What is 2 + 2? Answer with a number.", max_tokens=12)
    llm = OpenAILLM(model="smollm2", base_url=llama_server, cache=cache)
    (a,) = run(llm, [req])
    assert a.text.strip() and a.cached == 0
    assert llm.usage.calls == 1 and llm.usage.prompt_tokens > 0 and llm.usage.completion_tokens > 0
    # llama-cpp-python's server reuses the previous request's KV but reports no cached prompt
    # tokens (no prompt_tokens_details): read as none
    assert llm.usage.cached_prompt_tokens == 0
    # nor is it llama.cpp's C++ llama-server: it is sent no cache_prompt
    assert asyncio.run(OpenAILLM(model="smollm2", base_url=llama_server).is_llama_server()) is False
    again = OpenAILLM(model="smollm2", base_url=llama_server, cache=cache)
    (b,) = run(again, [req])
    assert b.text == a.text and b.cached == 1
    assert again.usage.calls == 0 and again.usage.cache_hits == 1
    cache.close()


def test_real_server_n_samples_are_topped_up(llama_server):
    llm = OpenAILLM(model="smollm2", base_url=llama_server)
    (out,) = run(llm, [Request.chat("Say a colour.", temperature=1.0, n=3, max_tokens=8, seed=1)])
    assert len(out.texts) == 3  # the server returns one choice; the backend asks again


def test_real_server_embeddings(gguf_path):
    from gpo.llm.embed import OpenAIEmbedder

    proc, url = _start_server(gguf_path, "--embedding", "true")
    try:
        emb = OpenAIEmbedder("smollm2", base_url=url, one_per_request=True)
        vecs = asyncio.run(emb.embed(["a cat sat on the mat", "quantum chromodynamics", "a cat sat on the mat"]))
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    # protocol check (SmolLM2 is no sentence encoder): one normalised vector per text,
    # the same text gives the same vector, a different text does not
    assert vecs.shape[0] == 3 and vecs.shape[1] > 100
    sims = vecs @ vecs[0]
    assert abs(sims[0] - 1) < 1e-4 and abs(sims[2] - 1) < 1e-4 and sims[1] < 0.999


def test_real_server_holds_a_constrained_reply_to_the_json_schema(llama_server):
    # response_format with a JSON schema on a real llama.cpp server: every sampled reply comes
    # back as the tagged text gpo parses, within the shape's words
    from gpo.llm import ReplyShape
    from gpo.prompts.tags import extract_tagged

    shape = ReplyShape()  # gpo's default word budget (150): a length bound in the schema once killed this server
    llm = OpenAILLM(model="smollm2", base_url=llama_server)
    ask = "Write one instruction that helps a model answer yes/no questions about directions."
    (out,) = run(llm, [Request.chat(ask, temperature=1.0, n=4, max_tokens=96, seed=3, shape=shape)])
    for text in out.texts:
        assert text.startswith("<START>") and text.endswith("<END>"), text
        assert extract_tagged(text).strip()
    assert llm.usage.calls >= 1
