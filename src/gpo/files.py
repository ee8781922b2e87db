"""Files written whole or not at all: the one atomic write every part of gpo uses.

The text goes to a temporary file beside the target, is flushed and fsynced, then
renamed over the target, so a crash leaves either the old file or the new one, never a
torn one. Imports nothing from gpo: any layer may use it.
"""

from __future__ import annotations

import os
from pathlib import Path


def atomic_write_text(path: str | Path, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)
    return path
