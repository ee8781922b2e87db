"""Momentum: which earlier prompts (or gradients) inform the update direction.

Selection (k-list) over a chronological history, newest last (GPO_SPEC 6.4), with
the k = 0 edge cases fixed (k = 0 selects nothing) and one rule for importance:

- recency: the newest k, newest first;
- relevance: the newest, then the k-1 older entries most similar to it (cosine
  similarity of embeddings), most similar first;
- importance: for prompts, the k best-scoring; for gradients, the newest plus the
  k-1 older ones with the largest improvement (the original returned k+1 there).
  Equal scores keep chronological order, older first, as the original's stable sort did.
"""

from __future__ import annotations

from typing import Sequence

from gpo.llm.embed import Embedder
from gpo.optim.update import END, SCALE_NOTE, START, show_score


async def select(
    history: Sequence[tuple[str, float]], method: str, k: int, embedder: Embedder | None = None,
    force_newest: bool = False,
) -> list[int]:
    """Indices into ``history`` of the selected entries, in presentation order."""
    n = len(history)
    if k <= 0 or n == 0:
        return []
    newest = n - 1
    if method == "recency":
        return list(range(newest, max(-1, newest - k), -1))
    if method == "importance":
        if force_newest:
            older = sorted(range(newest), key=lambda i: (-history[i][1], i))[: k - 1]
            return [newest] + older
        return sorted(range(n), key=lambda i: (-history[i][1], i))[:k]
    if method in ("relevance", "relavance"):
        if n == 1 or k == 1:
            return [newest]
        if embedder is None:
            raise ValueError("relevance selection needs an embedder")
        vectors = await embedder.embed([text for text, _ in history])
        sims = vectors[:newest] @ vectors[newest]
        older = sorted(range(newest), key=lambda i: (-float(sims[i]), -i))[: k - 1]
        return [newest] + older
    raise ValueError(f"unknown momentum selection {method!r}")


def summarise_prompts_prompt(previous: str, previous_score: float, current: str, current_score: float) -> str:
    """Real-time parameter momentum: fold the current prompt into the running summary."""
    return "\n\n".join(
        [
            "Your job is to write one new prompt that summarises an earlier prompt and the current prompt, "
            f"taking their scores into account. {SCALE_NOTE}",
            f"Earlier prompt:\n{previous}\nScore: {show_score(previous_score)}",
            f"Current prompt:\n{current}\nScore: {show_score(current_score)}",
            f"Write the new prompt between {START} and {END}.",
        ]
    )
