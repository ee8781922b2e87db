"""Files written whole or not at all: the one atomic write every part of gpo uses; and a
user's JSON file read with one clear line on failure.

The text goes to a temporary file beside the target, is flushed and fsynced, then
renamed over the target, so a crash leaves either the old file or the new one, never a
torn one. Imports nothing from gpo but its errors: any layer may use it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from gpo.errors import TaskError


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


def read_json_file(path: str | Path, where: str, what: str) -> object:
    """A JSON file's value; an unreadable file or invalid JSON is one ``TaskError`` line that
    starts with ``where`` and says ``what`` the file holds."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as err:
        raise TaskError(f"{where}: cannot read {what} ({err.strerror})") from None
    except json.JSONDecodeError as err:
        raise TaskError(f"{where}: {what} is not JSON (line {err.lineno}: {err.msg})") from None
