"""The Pareto pool (``pool='pareto'``, after GEPA's candidate selection): a search keeps every
prompt that is best on at least one eval example, not only the best mean, and draws the prompt
a step updates from that frontier in proportion to the examples each wins.

A prompt wins an example when no scored prompt scores higher on it; an example on which every
prompt scores the same is won by none (it tells them apart on nothing). A prompt whose won
examples another prompt also wins, with more besides (or the same, listed earlier), is dominated
and leaves the frontier. The per-example scores live in the search's state
(``SearchState.example_scores``), so the frontier and every draw (seeded by task and step) are
the same after a resume."""

from __future__ import annotations

import random

__all__ = ["frontier", "draw", "merge_pair"]


def wins(scores: dict[str, list[float]]) -> dict[str, set[int]]:
    """Each prompt's won examples (indices), in the order ``scores`` lists the prompts."""
    prompts = list(scores)
    n = min((len(v) for v in scores.values()), default=0)
    won: dict[str, set[int]] = {p: set() for p in prompts}
    for i in range(n):
        column = [scores[p][i] for p in prompts]
        top = max(column)
        if top == min(column):
            continue
        for p, s in zip(prompts, column):
            if s == top:
                won[p].add(i)
    return won


def frontier(scores: dict[str, list[float]]) -> dict[str, int]:
    """The frontier: each undominated prompt that wins an example, with how many it wins (in the
    order ``scores`` lists them). With no example told apart, the first prompt alone, winning none."""
    won = wins(scores)
    order = list(won)
    kept = {}
    for i, p in enumerate(order):
        if not won[p]:
            continue
        dominated = any(won[p] <= won[q] and (won[p] != won[q] or j < i) for j, q in enumerate(order) if q != p)
        if not dominated:
            kept[p] = len(won[p])
    return kept or ({order[0]: 0} if order else {})


def draw(front: dict[str, int], rng: random.Random, k: int = 1) -> list[str]:
    """Up to ``k`` different prompts of the frontier, each drawn with probability proportional to
    the examples it wins (a prompt winning none has weight 1 where nothing wins any)."""
    left = dict(front)
    out = []
    while left and len(out) < k:
        prompts = list(left)
        weights = [max(w, 0) for w in left.values()]
        if not any(weights):
            weights = [1] * len(prompts)
        pick = rng.choices(prompts, weights=weights)[0]
        out.append(pick)
        del left[pick]
    return out


def merge_pair(scores: dict[str, list[float]], done: list[list[str]]) -> tuple[str, str, list[int], list[int]] | None:
    """Two frontier prompts to merge: of the pairs not merged before in which each wins examples
    the other does not, the pair winning the most examples together (the earlier on a tie); with
    the examples only the first wins and those only the second wins. None: no such pair."""
    won, front = wins(scores), frontier(scores)
    members = [p for p in front if front[p]]
    tried = {frozenset(pair) for pair in done}
    best = None
    for i, a in enumerate(members):
        for b in members[i + 1:]:
            only_a, only_b = won[a] - won[b], won[b] - won[a]
            if not only_a or not only_b or frozenset((a, b)) in tried:
                continue
            size = len(won[a] | won[b])
            if best is None or size > best[0]:
                best = (size, a, b, sorted(only_a), sorted(only_b))
    return None if best is None else best[1:]
