"""Constrained replies on the embedded llama.cpp model: a grammar holds every sample to one
tagged text within the word budget, where the free model writes whatever it likes."""

import asyncio

import pytest

from gpo.llm import LocalLLM, ReplyShape, Request
from gpo.prompts.tags import extract_tagged

META = ("Your task is to write a better prompt for a language model that answers yes/no questions about "
        "following directions. Current prompt: Let's think step by step. Write the new prompt between "
        "<START> and <END>.")


def test_the_shape_is_part_of_the_cache_key_and_reads_json_replies():
    free = Request.chat("hi")
    shaped = Request.chat("hi", shape=ReplyShape(max_words=5))
    assert "shape" not in free.cache_fields() and "{0,4}" in shaped.cache_fields()["shape"]
    shape = ReplyShape()
    assert shape.from_json('{"prompt": "Be brief."}') == "<START>Be brief.<END>"
    assert shape.from_json("not json") == "not json" and shape.json_schema()["required"] == ["prompt"]


@pytest.mark.model
def test_embedded_replies_under_the_grammar_always_parse_within_the_budget():
    shape = ReplyShape(max_words=20)
    llm = LocalLLM()
    request = Request.chat(META, temperature=1.0, n=6, max_tokens=80, seed=7, shape=shape)
    (out,) = asyncio.run(llm.generate([request]))
    for text in out.texts:
        if text.endswith("<END>"):  # a reply can only end early by running out of tokens
            assert text.startswith("<START>") and "\n" not in text, text
            assert 1 <= len(extract_tagged(text).split()) <= 20, text
        else:
            assert text.startswith("<START>") and "\n" not in text, text
    assert sum(t.endswith("<END>") for t in out.texts) >= 1
