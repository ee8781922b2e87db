"""A run on disk.

    <run_dir>/
      run.json                 resolved run spec (no secrets: keys are named by env var only)
      environment.json         versions of Python, gpo and the model libraries
      events.jsonl             append-only log: every step, candidate, score, usage
      meter.json               what the run, and each task, has spent by role (budgets across resumes)
      cache.sqlite             response cache (unless the run shares one elsewhere)
      tasks/<task>/state.json  optimizer checkpoint, rewritten atomically after every step
      tasks/<task>/evals/...   per-example records of every evaluation
      optimized_prompts.jsonl  one line per task: initial and final prompt with eval and test scores
      .gpo.lock                the process writing the run (pid, host, start time; ``gpo.run.lock``)
      report.html, *.png       written by `gpo report`
"""

from __future__ import annotations

import json
import platform
import re
import shutil
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Callable

from gpo.engine.events import Event, check, of, status_of
from gpo.errors import RunDirError
from gpo.files import atomic_write_text
from gpo.run.lock import LOCK_FILE, describe, holder  # noqa: F401 - LOCK_FILE: the run directory's files


# the files of a run directory (the module docstring says what each holds)
SPEC_FILE, ENVIRONMENT_FILE, EVENTS_FILE, METER_FILE = "run.json", "environment.json", "events.jsonl", "meter.json"
RESULTS_FILE, CACHE_FILE, REPORT_FILE, STATE_FILE = "optimized_prompts.jsonl", "cache.sqlite", "report.html", "state.json"


def safe_name(task_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "__", task_id)


def environment() -> dict:
    versions = {}
    for pkg in ("gpo", "llama-cpp-python", "openai", "sentence-transformers", "torch", "rouge-score"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    return {"python": sys.version.split()[0], "platform": platform.platform(), "packages": versions,
            "argv": [a for a in sys.argv if "key" not in a.lower()]}


class RunStore:
    """A run directory, and the search's hooks (``gpo.engine.search.Hooks``) writing into it."""

    def __init__(self, run_dir: str | Path):
        self.dir = Path(run_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.listeners: list[Callable[[dict], None]] = []
        self._events = open(self.dir / EVENTS_FILE, "a", encoding="utf-8")

    # ---------------------------------------------------------------- spec
    def write_spec(self, spec: dict) -> None:
        atomic_write_text(self.dir / SPEC_FILE, json.dumps(spec, indent=2, ensure_ascii=False))
        atomic_write_text(self.dir / ENVIRONMENT_FILE, json.dumps(environment(), indent=2))

    def read_spec(self) -> dict:
        return read_spec(self.dir)

    # ---------------------------------------------------------------- hooks
    def event(self, kind: str, **data) -> None:
        record = {"time": round(time.time(), 3), "event": check(kind, data), **data}
        self._events.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._events.flush()
        for listener in self.listeners:
            listener(record)

    def _task_dir(self, task) -> Path:
        return self.dir / "tasks" / safe_name(task.id)

    def save_state(self, task, state: dict) -> None:
        atomic_write_text(self._task_dir(task) / STATE_FILE, json.dumps(state, ensure_ascii=False))

    def load_state(self, task) -> dict | None:
        path = self._task_dir(task) / STATE_FILE
        if not path.is_file():
            return None
        return read_json(path, f"remove it to search task {task.id} again from its start (the responses "
                               "paid for are in the cache, so nothing is paid twice)")

    def save_evaluation(self, task, name: str, evaluation) -> None:
        evaluation.write(self._task_dir(task) / "evals" / f"{name}.jsonl")

    # ---------------------------------------------------------------- results
    def save_meter(self, spent: dict) -> None:
        """What the run has spent by role (gpo.llm.meter), after every paid call."""
        atomic_write_text(self.dir / METER_FILE, json.dumps(spent))

    def load_meter(self) -> dict | None:
        path = self.dir / METER_FILE
        if not path.is_file():
            return None
        return read_json(path, "it holds what the run has spent against its budgets; restore it, or remove it "
                               "to count the budgets afresh")

    def write_results(self, rows: list[dict]) -> Path:
        path = self.dir / RESULTS_FILE
        atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        return path

    def close(self) -> None:
        self._events.close()


def read_json(path: Path, what_to_do: str) -> dict:
    """A JSON file of a run directory; a damaged one is named, with what to do, in one line
    (``RunDirError``). Nothing is overwritten."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise RunDirError(f"{path} is damaged (not UTF-8 text); nothing was changed: {what_to_do}") from None
    except json.JSONDecodeError as err:
        raise RunDirError(f"{path} is damaged (not valid JSON: {err.msg} at line {err.lineno}); "
                          f"nothing was changed: {what_to_do}") from None
    if not isinstance(data, dict):
        raise RunDirError(f"{path} is damaged (expected a JSON object); nothing was changed: {what_to_do}")
    return data


def read_spec(run_dir: str | Path) -> dict:
    path = Path(run_dir) / SPEC_FILE
    if not path.is_file():
        raise RunDirError(f"{run_dir} is not a gpo run directory (no run.json)")
    return read_json(path, "restore it from a backup, or start the run afresh in another directory")


def existing_spec(run_dir: str | Path) -> dict | None:
    """The spec of the run a directory holds, or None where it holds none."""
    return read_spec(run_dir) if (Path(run_dir) / SPEC_FILE).is_file() else None


def clear_run(run_dir: str | Path) -> None:
    """Remove the run a directory holds, keeping nothing of it (``--overwrite``). Only a
    directory holding a run.json is removed; a response cache kept elsewhere is not touched."""
    path = Path(run_dir)
    if (path / SPEC_FILE).is_file():
        for entry in path.iterdir():  # all but the lock the overwriting process holds
            if entry.name == LOCK_FILE:
                continue
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()


def read_events(run_dir: str | Path) -> list[dict]:
    path = Path(run_dir) / EVENTS_FILE
    if not path.is_file():
        return []
    events = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut short by a crash
            continue
    return events


def run_status(run_dir: str | Path) -> dict:
    """Status and best scores of a run, from its event log."""
    events = read_events(run_dir)
    done = of(events, Event.TASK_DONE)
    running = holder(run_dir)
    return {
        "run_dir": str(run_dir),
        "status": "running" if running is not None else status_of(events),
        "by": describe(running) if running else None,
        "tasks_done": len({e["task"] for e in done if not e.get("stopped")}),  # a task a stop cut short is not done
        "best": {e["task"]: e.get("final_eval") for e in done},
        "started": events[0]["time"] if events else None,
    }
