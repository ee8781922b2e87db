"""A user's Python function, named ``MODULE:FUNCTION`` or ``path/to/file.py:FUNCTION``
(a metric, a program), imported with one clear line for whatever is wrong. A file is executed
once per process while it is unchanged (checking a run and building it share the module), as
``importlib`` does for a module name."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from typing import Callable

from gpo.errors import TaskError

_FILES: dict[tuple, object] = {}  # (path, mtime, size, module name) -> the module made from that file


def import_function(target: str, flag: str, kind: str) -> Callable:
    """The function ``target`` names; ``flag`` (e.g. ``--metric python:m:f``) starts every
    error line, ``kind`` names the module made from a file (``gpo_user_<kind>_<stem>``)."""
    module_name, _, function = target.rpartition(":")
    if not module_name or not function:
        raise TaskError(f"{flag}: expected MODULE:FUNCTION or FILE.py:FUNCTION")
    try:
        if module_name.endswith(".py"):
            path = Path(module_name)
            if not path.is_file():
                raise TaskError(f"{flag}: file not found: {module_name}")
            module = _from_file(path, f"gpo_user_{kind}_{path.stem}")
        else:
            module = importlib.import_module(module_name)
    except TaskError:
        raise
    except Exception as err:  # noqa: BLE001 - any import failure is one line
        raise TaskError(f"{flag}: cannot import {module_name} ({type(err).__name__}: {err})") from None
    fn = getattr(module, function, None)
    if not callable(fn):
        raise TaskError(f"{flag}: {module_name} has no function {function!r}")
    return fn


def _from_file(path: Path, name: str):
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size, name)
    if key not in _FILES:
        loader = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(loader)
        loader.loader.exec_module(module)
        _FILES[key] = module
    return _FILES[key]
