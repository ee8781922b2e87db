"""Racing: spend scorer requests on the candidates that can still win.

A step's candidates are scored on the same examples, in blocks, in one seeded
order of the split. After each block the leader is the candidate with the
highest mean so far (the first in generation order on ties), and every other
candidate is compared with it by a paired test (``stats.compare``). Those
significantly worse at level alpha, Holm-corrected for the number of candidates
compared in that block, stop. The rest go on until the whole split is scored,
so a winner is always chosen on whole-split scores. Like irace's F-race, the
repeated looks over blocks are not corrected for; ``bench/racing.py`` measures
how often racing still picks the winner that scoring everything picks.

``race`` takes a ``fetch(prompts, indices)`` callback returning per-example
items (scores, or what another objective is computed from), so the same code runs on the
live Evaluator and on stored records. The leader, the estimates and the tests follow the
objective (``gpo.scoring.objective``): with macro-F1, the paired bootstrap.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Sequence

from gpo.scoring.objective import ACCURACY, Objective
from gpo.scoring.stats import Comparison, holm

MIN_FIRST_BLOCK = 8

Fetch = Callable[[list[str], list[int]], Awaitable[dict[str, list]]]


@dataclass
class Stop:
    """Why a candidate left the race: its mean on the examples it was scored on,
    against the leader's on the same examples."""

    examples: int
    estimate: float
    leader: str
    leader_estimate: float
    p: float | None  # the paired test's p-value against the leader (before Holm); None: the budget stopped it

    def reason(self) -> str:
        versus = f"{100 * self.estimate:.1f} vs the leader's {100 * self.leader_estimate:.1f}"
        if self.p is None:
            return f"stopped by racing after {self.examples} examples: the budget could finish only the leader ({versus})"
        return f"stopped by racing after {self.examples} examples: {versus} (p = {self.p:.3g})"


@dataclass
class RaceResult:
    finished: list[str]  # scored on the whole split, in the given order
    stopped: dict[str, Stop] = field(default_factory=dict)
    examples_scored: int = 0  # (candidate, example) scorings the race asked for


def block_ends(n: int, block: int) -> list[int]:
    """How many examples are scored after each block: block, 2 * block, ... up to n."""
    size = max(block, MIN_FIRST_BLOCK)
    return list(range(size, n, size)) + [n] if n > 0 else []


def example_order(n: int, seed: int) -> list[int]:
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return order


def least_scorings(k: int, n: int, block: int) -> int:
    """Scorings a race of k candidates needs at the least: one first block each, then the rest
    of the split for one (what a search budget must hold to admit k candidates)."""
    first = block_ends(n, block)[0] if n else 0
    return 0 if k == 0 else n + (k - 1) * first


async def race(prompts: Sequence[str], n: int, fetch: Fetch, *, block: int = MIN_FIRST_BLOCK,
               alpha: float = 0.05, seed: int = 0, affordable: Callable[[int], bool] | None = None,
               objective: Objective = ACCURACY) -> RaceResult:
    """Race ``prompts`` over the n examples of a split (see the module docstring).
    ``affordable(k)`` says whether k more scorings fit a budget: before a block that would
    leave too little to finish one candidate, every candidate but the leader stops."""
    order = example_order(n, seed)
    alive = list(dict.fromkeys(prompts))
    result = RaceResult(finished=[])
    done, scores = 0, {p: [] for p in alive}
    for end in block_ends(n, block):
        if len(alive) > 1 and affordable and not affordable(len(alive) * (end - done) + n - end):
            leader = max(alive, key=lambda p: objective.value(scores[p]))
            for p in alive:
                if p != leader:
                    result.stopped[p] = Stop(done, objective.value(scores[p]), leader, objective.value(scores[leader]), None)
            alive = [leader]
        if len(alive) == 1:
            end = n  # a lone survivor only needs its whole-split score
        scores = await fetch(alive, order[:end])
        result.examples_scored += len(alive) * (end - done)
        done = end
        if end >= n:
            break
        leader = max(alive, key=lambda p: objective.value(scores[p]))  # max keeps the first on ties
        others = [p for p in alive if p != leader]
        tests: list[Comparison] = [objective.compare(scores[p], scores[leader], alpha=alpha, seed=seed, interval=False)
                                   for p in others]
        for p, test, worse in zip(others, tests, holm([t.p for t in tests], alpha)):
            if worse and test.diff > 0:
                result.stopped[p] = Stop(end, test.mean_a, leader, test.mean_b, test.p)
        alive = [p for p in alive if p not in result.stopped]
    result.finished = alive
    return result
