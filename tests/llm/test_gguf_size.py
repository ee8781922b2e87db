"""A GGUF's parameter count, read from its header without loading the model, decides whether it
is a small optimizer (``ModelRef.known_small``). Real files: the embedded model's GGUF, and GGUF
headers written here byte by byte in the format's layout."""

from __future__ import annotations

import struct

from gpo.llm import default_gguf_path
from gpo.llm.gguf_size import parameter_count
from gpo.llm.resolve import SMALL_PARAMETERS, resolve_model


def _string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


def write_gguf(path, shapes: list[tuple[int, ...]], version: int = 3) -> None:
    """A GGUF header: three key-values (a string, an array of strings, a u32) and one tensor per shape."""
    kvs = [_string("general.name") + struct.pack("<I", 8) + _string("tiny"),
           _string("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 2) + _string("a") + _string("bc"),
           _string("general.alignment") + struct.pack("<II", 4, 32)]
    tensors = [_string(f"t{i}") + struct.pack("<I", len(s)) + b"".join(struct.pack("<Q", d) for d in s)
               + struct.pack("<IQ", 0, 0) for i, s in enumerate(shapes)]
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", version, len(shapes), len(kvs)) + b"".join(kvs + tensors))


def test_the_embedded_models_file_counts_its_135m_parameters():
    count = parameter_count(str(default_gguf_path()))
    assert 130_000_000 < count < 140_000_000
    assert resolve_model(str(default_gguf_path())).known_small


def test_a_header_is_read_past_its_key_values_and_its_tensors_summed(tmp_path):
    small, large = tmp_path / "small.gguf", tmp_path / "large.gguf"
    write_gguf(small, [(7, 3), (5,)])
    write_gguf(large, [(SMALL_PARAMETERS // 2, 2), (1,)], version=2)
    assert parameter_count(small) == 26 and parameter_count(large) == SMALL_PARAMETERS + 1
    assert resolve_model(str(small)).known_small and not resolve_model(str(large)).known_small


def test_a_file_that_is_no_gguf_has_no_count_and_is_not_known_small(tmp_path):
    text, cut = tmp_path / "notes.gguf", tmp_path / "cut.gguf"
    text.write_text("not a model")
    write_gguf(cut, [(7, 3)])
    cut.write_bytes(cut.read_bytes()[:-20])  # the header ends inside the tensor list
    assert parameter_count(text) is None and parameter_count(cut) is None
    assert parameter_count(tmp_path / "missing.gguf") is None
    assert not resolve_model(str(text)).known_small and not resolve_model(str(cut)).known_small
