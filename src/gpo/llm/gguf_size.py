"""How many parameters a GGUF file's model has, read from the file's header (its tensors' shapes)
without loading the model: gpo asks a small optimizer with a short meta-prompt
(``ModelRef.known_small``), and a GGUF may hold a model of any size.

The header (GGUF versions 2 and 3): the magic ``GGUF``, the version, the tensor and key-value
counts, the key-values (skipped here), then each tensor's name, dimensions, type and offset."""

from __future__ import annotations

import functools
import math
import struct
from pathlib import Path
from typing import BinaryIO

# GGUF's value types: the size in bytes of each fixed-size one; 8 is a string, 9 an array
_FIXED = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_STRING, _ARRAY = 8, 9


def _u32(f: BinaryIO) -> int:
    return struct.unpack("<I", f.read(4))[0]


def _u64(f: BinaryIO) -> int:
    return struct.unpack("<Q", f.read(8))[0]


def _skip_value(f: BinaryIO, kind: int) -> None:
    if kind in _FIXED:
        f.seek(_FIXED[kind], 1)
    elif kind == _STRING:
        f.seek(_u64(f), 1)
    elif kind == _ARRAY:
        inner, n = _u32(f), _u64(f)
        if inner in _FIXED:
            f.seek(_FIXED[inner] * n, 1)
        else:
            for _ in range(n):
                _skip_value(f, inner)
    else:
        raise ValueError(f"unknown GGUF value type {kind}")


@functools.lru_cache(maxsize=32)
def parameter_count(path: str | Path) -> int | None:
    """The number of parameters of the model in the GGUF file at ``path`` (the sum of its tensors'
    sizes); None where the file cannot be read or is not a GGUF of version 2 or 3."""
    try:
        with open(path, "rb") as f:
            if f.read(4) != b"GGUF" or _u32(f) not in (2, 3):
                return None
            tensors, kvs = _u64(f), _u64(f)
            for _ in range(kvs):
                f.seek(_u64(f), 1)  # the key
                _skip_value(f, _u32(f))
            total = 0
            for _ in range(tensors):
                f.seek(_u64(f), 1)  # the name
                total += math.prod(_u64(f) for _ in range(_u32(f)))
                f.seek(4 + 8, 1)  # the type and the offset
            return total
    except (OSError, ValueError, struct.error):
        return None
