"""What a run has already paid for on scoring, kept across its processes.

The Evaluator scores a prompt on an example once per process and counts the requests that
took (``Evaluator.requests``: what a fresh run pays). A resumed run starts with an empty
memory, so a prompt it scores again on the same examples would be counted a second time,
though the response cache answers it for free, and the resumed run's figures would differ
from an uninterrupted run's. So a task's search keeps, with its checkpoint, which examples it
has scored each prompt on (``SearchState.paid``: a short digest of the prompt and the example
indices, per split), and a resumed Evaluator scores those again without counting them.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from typing import Iterable


def digest(text: str) -> str:
    """A short, stable name for a prompt (the same in every process)."""
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


class Paid:
    """Per task: the (split, prompt digest, example index) triples scored so far in this run."""

    def __init__(self) -> None:
        self._keys: dict[str, set[tuple[str, str, int]]] = defaultdict(set)

    def add(self, task_id: str, split: str, instruction: str, indices: Iterable[int]) -> None:
        d = digest(instruction)
        self._keys[task_id].update((split, d, i) for i in indices)

    def partition(self, task_id: str, split: str, instruction: str, indices: list[int]) -> tuple[list[int], list[int]]:
        """``indices`` as (not paid for yet, paid for by an earlier process of the run)."""
        d, keys = digest(instruction), self._keys.get(task_id, set())
        return [i for i in indices if (split, d, i) not in keys], [i for i in indices if (split, d, i) in keys]

    def dump(self, task_id: str) -> dict[str, list[int]]:
        """This task's triples as ``{"split digest": [indices]}`` (for its checkpoint)."""
        out: dict[str, list[int]] = defaultdict(list)
        for split, d, i in self._keys.get(task_id, ()):
            out[f"{split} {d}"].append(i)
        return {k: sorted(v) for k, v in sorted(out.items())}

    def load(self, task_id: str, saved: dict[str, list[int]]) -> None:
        """Add what a checkpoint says earlier processes of the run paid for."""
        for key, indices in saved.items():
            split, d = key.split(" ")
            self._keys[task_id].update((split, d, int(i)) for i in indices)
