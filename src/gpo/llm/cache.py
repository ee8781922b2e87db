"""Durable response cache in SQLite (WAL).

Keyed by backend + model + messages + sampling parameters + sample index, so a
rerun or a resumed run costs zero calls and sampled (temperature > 0) outputs stay
reproducible. Each response is committed the moment it arrives: a run killed
mid-batch keeps every response it had received.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from pathlib import Path

from gpo.errors import CacheError
from gpo.llm.types import Sample, dumps_canonical

APPLICATION_ID = 0x6770_6F31  # "gpo1": marks a file as a gpo cache
SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    backend TEXT NOT NULL,
    model TEXT NOT NULL,
    text TEXT NOT NULL,
    finish_reason TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    created REAL NOT NULL
)
"""


def cache_key(backend: str, model: str, request_fields: dict, sample_index: int) -> str:
    payload = dumps_canonical(
        {"backend": backend, "model": model, "request": request_fields, "sample": sample_index}
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class ResponseCache:
    """A key -> Sample store. Safe for threads of one process and for several processes."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(
                self.path, timeout=30.0, check_same_thread=False, isolation_level=None
            )
            # Check and create in one write transaction: another process creating the same
            # new cache at this moment is waited for, not mistaken for a foreign database.
            self._db.execute("BEGIN IMMEDIATE")
            app_id = self._db.execute("PRAGMA application_id").fetchone()[0]
            tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if app_id not in (0, APPLICATION_ID) or (app_id == 0 and tables):
                self._db.execute("ROLLBACK")
                raise CacheError(
                    f"{self.path} is an SQLite file but not a gpo response cache "
                    f"(application_id={app_id}, tables={sorted(tables)}); it was left untouched. "
                    "Point --cache at another path."
                )
            self._db.execute(SCHEMA)
            if app_id == 0:
                self._db.execute(f"PRAGMA application_id={APPLICATION_ID}")
            self._db.execute("COMMIT")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.DatabaseError as err:
            raise CacheError(
                f"cannot open response cache {self.path}: {err}. The file is left untouched; "
                "move it aside (your run directories are unaffected) or point --cache elsewhere."
            ) from err

    def get_many(self, keys: list[str]) -> dict[str, Sample]:
        if not keys:
            return {}
        marks = ",".join("?" * len(keys))
        with self._lock:
            rows = self._db.execute(
                f"SELECT key, text, finish_reason, prompt_tokens, completion_tokens "
                f"FROM responses WHERE key IN ({marks})",
                keys,
            ).fetchall()
        return {r[0]: Sample(r[1], r[2], r[3], r[4]) for r in rows}

    def get(self, key: str) -> Sample | None:
        return self.get_many([key]).get(key)

    def put(self, key: str, sample: Sample, backend: str, model: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO responses VALUES (?,?,?,?,?,?,?,?)",
                (key, backend, model, sample.text, sample.finish_reason,
                 sample.prompt_tokens, sample.completion_tokens, time.time()),
            )

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
