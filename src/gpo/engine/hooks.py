"""Where a search reports to: the run store, a progress display, or nothing."""

from __future__ import annotations

from typing import Protocol

from gpo.tasks.task import Task


class Hooks(Protocol):
    """Where a search reports to: the run store (``gpo.run.store.RunStore``), a progress
    display, or nothing (``NoHooks``)."""

    def event(self, kind: str, **data) -> None: ...

    def save_state(self, task: Task, state: dict) -> None: ...

    def load_state(self, task: Task) -> dict | None: ...

    def save_evaluation(self, task: Task, name: str, evaluation) -> None: ...


class NoHooks:
    """Hooks that keep nothing: a search run only for its result."""

    def event(self, kind: str, **data) -> None: ...

    def save_state(self, task: Task, state: dict) -> None: ...

    def load_state(self, task: Task) -> dict | None:
        return None

    def save_evaluation(self, task: Task, name: str, evaluation) -> None: ...
