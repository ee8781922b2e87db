"""Files written whole or not at all: the one atomic write every part of gpo uses; a user's
text file decoded (UTF-8, with or without a byte-order mark; UTF-16 by its mark) or refused
in one line; and a user's JSON file read with one clear line on failure.

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


RESAVE = "re-save it as UTF-8 (in a spreadsheet: Save As, 'CSV UTF-8'; in an editor: encoding UTF-8)"


def read_user_text(path: str | Path) -> str:
    """A user's text file as text: UTF-8 (a byte-order mark is skipped) or UTF-16 with its
    mark, as some spreadsheet programs save; anything else is one ``TaskError`` line naming
    the file, where it stops being UTF-8, and how to re-save it. A directory or a missing file
    is named as such."""
    path = Path(path)
    if path.is_dir():
        raise TaskError(f"{path} is a directory, not a data file: give a .jsonl, .csv or .tsv file")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise TaskError(f"data file not found: {path}") from None
    except OSError as err:
        raise TaskError(f"{path}: cannot read it ({err.strerror})") from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise TaskError(f"{path}: starts with a UTF-16 mark but is not UTF-16 text; {RESAVE}") from None
    if b"\x00" in data:  # valid UTF-8 to a decoder, never in a text file
        raise TaskError(f"{path}: holds NUL bytes, so it looks like UTF-16 without its byte-order mark (or is not a "
                        f"text file); {RESAVE}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        raise TaskError(f"{path}, line {line}, column {column}: not UTF-8 (byte 0x{data[err.start]:02x}: perhaps "
                        f"Latin-1 or Windows-1252); {RESAVE}") from None


def read_json_file(path: str | Path, where: str, what: str) -> object:
    """A JSON file's value; an unreadable file or invalid JSON is one ``TaskError`` line that
    starts with ``where`` and says ``what`` the file holds."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as err:
        raise TaskError(f"{where}: cannot read {what} ({err.strerror})") from None
    except json.JSONDecodeError as err:
        raise TaskError(f"{where}: {what} is not JSON (line {err.lineno}: {err.msg})") from None
