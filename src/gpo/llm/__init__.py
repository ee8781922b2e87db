"""The model layer: the only part of gpo that talks to models."""

from __future__ import annotations

from pathlib import Path

from gpo.llm.base import (
    LLM,
    Completion,
    FatalLLMError,
    LLMError,
    Pricing,
    Request,
    Sample,
    TransientLLMError,
    Usage,
)
from gpo.llm.cache import CacheError, ResponseCache
from gpo.llm.local import DEFAULT_MODEL_NAME, LocalLLM, default_gguf_path
from gpo.llm.openai import OpenAILLM

EMBEDDED_ALIASES = {"", "embedded", "default", "smollm2", DEFAULT_MODEL_NAME}

__all__ = [
    "LLM", "Completion", "FatalLLMError", "LLMError", "Pricing", "Request", "Sample",
    "TransientLLMError", "Usage", "CacheError", "ResponseCache", "LocalLLM", "OpenAILLM",
    "build_llm", "default_gguf_path",
]


def build_llm(
    model: str = "embedded",
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    cache: ResponseCache | None = None,
    concurrency: int | None = None,
    pricing: Pricing | None = None,
) -> LLM:
    """One model role from a short description.

    - ``embedded`` (default): SmolLM2-135M-Instruct in process;
    - a path ending in ``.gguf``: that file in process;
    - anything else, or any ``base_url``: an OpenAI-compatible endpoint serving that model.
    """
    extra = {} if concurrency is None else {"concurrency": concurrency}
    if base_url is None and model.lower() in EMBEDDED_ALIASES:
        return LocalLLM(cache=cache, pricing=pricing, **extra)
    if base_url is None and model.endswith(".gguf"):
        return LocalLLM(model=Path(model).stem, path=Path(model), cache=cache, pricing=pricing, **extra)
    return OpenAILLM(model=model, base_url=base_url, api_key=api_key, cache=cache, pricing=pricing, **extra)
