"""A model string and base URL resolve once to what they are; build_llm builds that."""

from __future__ import annotations

import pytest

from gpo.llm import LocalLLM, OpenAILLM, Pool, build_llm, resolve_model
from gpo.llm.base import FatalLLMError
from gpo.llm.local import DEFAULT_MODEL_NAME


@pytest.mark.parametrize("model,base_url,kind,name", [
    ("embedded", None, "embedded", DEFAULT_MODEL_NAME),
    ("", None, "embedded", DEFAULT_MODEL_NAME),
    ("models/tiny.gguf", None, "gguf", "tiny"),
    ("vllm:Qwen/Qwen2.5-7B", None, "vllm", "Qwen/Qwen2.5-7B"),
    ("gpt-4o-mini", None, "endpoint", "gpt-4o-mini"),
    ("embedded", "http://127.0.0.1:8000/v1", "endpoint", "embedded"),
    ("m", "http://127.0.0.1:8000/v1, http://127.0.0.1:8001/v1", "fleet", "m"),
])
def test_a_model_string_resolves_to_one_kind(model, base_url, kind, name):
    ref = resolve_model(model, base_url)
    assert (ref.kind, ref.name) == (kind, name)
    assert ref.in_process == (kind in ("embedded", "gguf", "vllm"))
    assert len(ref.urls) == {"fleet": 2, "endpoint": 1 if base_url else 0}.get(kind, 0)


def test_build_llm_builds_what_the_string_resolves_to():
    assert isinstance(build_llm("gpt-4o-mini", base_url="http://127.0.0.1:9/v1"), OpenAILLM)
    fleet = build_llm("m", base_url="http://127.0.0.1:9/v1,http://127.0.0.1:10/v1")
    assert isinstance(fleet, Pool) and len(fleet.members) == 2
    local = build_llm("some/where/tiny.gguf")
    assert isinstance(local, LocalLLM) and local.model == "tiny"
    with pytest.raises(FatalLLMError, match="replicas run copies of an in-process model"):
        build_llm("m", base_url="http://127.0.0.1:9/v1", replicas=2)
