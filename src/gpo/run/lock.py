"""One writer per run directory.

A process that runs, resumes or overwrites a run holds an advisory lock (``fcntl.flock``)
on ``<run_dir>/.gpo.lock``, a file that names it: pid, host and start time. The kernel
releases the lock when the process ends, however it ends (SIGKILL too), so a lock is
never left held by a process that is gone. A clean end empties the file; a file still
naming a process whose lock is free is one that died holding it, and the next process
takes it over and says so. A second process while the first runs is refused in one line
naming the first. On a system without ``fcntl`` (Windows) there is no lock.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from gpo.errors import RunInUse

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

LOCK_FILE = ".gpo.lock"


def describe(holder: dict) -> str:
    """'pid 123 on host since 2026-12-05 01:40:22' (the start time in local time)."""
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("started", 0)))
    return f"pid {holder.get('pid')} on {holder.get('host')} since {since}"


def _read(handle) -> dict | None:
    handle.seek(0)
    try:
        data = json.loads(handle.read() or "null")
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _try_lock(handle) -> bool:
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


@dataclass
class RunLock:
    """The lock a process holds on a run directory; ``taken_over``: the holder named in a lock
    file left by a process that ended without releasing it (killed), else None."""

    path: Path
    handle: object
    taken_over: dict | None = None

    @classmethod
    def acquire(cls, run_dir: str | Path) -> "RunLock":
        """Take the run directory's lock, or refuse (``RunInUse``) naming the process holding it."""
        path = Path(run_dir) / LOCK_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a+", encoding="utf-8")
        if fcntl is None:  # pragma: no cover - Windows
            return cls(path, handle)
        locked = _try_lock(handle)
        for _ in range(20):  # a glance by `holder` (gpo runs) holds it for an instant, naming no one
            if locked or _read(handle):
                break
            time.sleep(0.05)
            locked = _try_lock(handle)
        if not locked:
            holder = _read(handle)
            handle.close()
            who, stop = (describe(holder), f"kill {holder.get('pid')}") if holder else ("another process", "stop it")
            raise RunInUse(f"{run_dir} is in use by {who}: wait for it to end, or {stop} (it saves and stops), or "
                              f"choose another run directory; two processes writing one run would lose each other's "
                              f"work") from None
        left = _read(handle)
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": round(time.time(), 3)}))
        handle.flush()
        return cls(path, handle, left)

    def release(self) -> None:
        """Empty the file (a clean end) and let the lock go."""
        if self.handle.closed:
            return
        self.handle.seek(0)
        self.handle.truncate()
        self.handle.flush()
        if fcntl is not None:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()


def holder(run_dir: str | Path) -> dict | None:
    """The process holding the run directory's lock now (pid, host, started), or None."""
    path = Path(run_dir) / LOCK_FILE
    if fcntl is None or not path.is_file():
        return None
    with open(path, encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return _read(handle) or {}
        fcntl.flock(handle, fcntl.LOCK_UN)
    return None
