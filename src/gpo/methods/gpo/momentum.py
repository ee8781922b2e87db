"""Momentum: which earlier prompts (or gradients) inform the update direction.

Small pieces, each built once from the config (``prompt_momentum``,
``gradient_momentum``), as optax builds a transformation once and applies it every
step. A piece's running state (the real-time summary) is passed in and handed back,
so it lives in the checkpointed search state, not in the piece.

Selectors pick from a chronological history, newest last (docs/BEHAVIOUR.md, "The update direction"), with the
k = 0 edge cases fixed (k = 0 selects nothing) and one rule for importance:

- ``Recency``: the newest k, newest first;
- ``Relevance``: the newest, then the k-1 older entries most similar to it (cosine
  similarity of embeddings), most similar first;
- ``Importance``: the k best-scoring; over gradients (``keep_newest``), the newest plus
  the k-1 older ones with the largest improvement (the original returned k+1 there).
  Equal scores keep chronological order, older first, as the original's stable sort did.
  OPRO's memory of the best prompts is this selector too.

Momentum over prompts: ``NoMomentum`` (the current prompt only), ``KList`` (the k
prompts a selector picks) or ``RealTime`` (a running summary the optimizer LLM
rewrites every step, scored on eval). Over gradients the same two kinds:
``KListGradients`` and ``RealTimeGradients``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol, Sequence

from gpo.engine.trajectory import GradientEntry, Point
from gpo.llm.embed import Embedder
from gpo.prompts.blocks import (
    SCALE_NOTE,
    current_block,
    k_list_block,
    real_time_block,
    show_score,
)
from gpo.prompts.tags import END, START

History = Sequence[tuple[str, float]]  # (text, score or improvement), oldest first


# ---------------------------------------------------------------------- selectors
class Selector(Protocol):
    async def __call__(self, history: History, k: int) -> list[int]:
        """Indices into ``history`` of the selected entries, in presentation order."""
        ...


@dataclass(frozen=True)
class Recency:
    async def __call__(self, history: History, k: int) -> list[int]:
        newest = len(history) - 1
        return list(range(newest, max(-1, newest - k), -1)) if k > 0 else []


@dataclass(frozen=True)
class Importance:
    keep_newest: bool = False  # over gradients: the newest always, then the k-1 most improving

    async def __call__(self, history: History, k: int) -> list[int]:
        n = len(history)
        if k <= 0 or n == 0:
            return []
        best_first = lambda indices: sorted(indices, key=lambda i: (-history[i][1], i))  # noqa: E731
        if self.keep_newest:
            return [n - 1] + best_first(range(n - 1))[: k - 1]
        return best_first(range(n))[:k]


@dataclass(frozen=True)
class Relevance:
    embedder: Embedder | None

    async def __call__(self, history: History, k: int) -> list[int]:
        n = len(history)
        if k <= 0 or n == 0:
            return []
        newest = n - 1
        if n == 1 or k == 1:
            return [newest]
        if self.embedder is None:
            raise ValueError("relevance selection needs an embedder")
        vectors = await self.embedder.embed([text for text, _ in history])
        sims = vectors[:newest] @ vectors[newest]
        return [newest] + sorted(range(newest), key=lambda i: (-float(sims[i]), -i))[: k - 1]


def selector(name: str, embedder: Embedder | None = None, keep_newest: bool = False) -> Selector:
    """The selector a config names (the original's ``relavance`` is normalised by gpo.config)."""
    if name == "recency":
        return Recency()
    if name == "importance":
        return Importance(keep_newest)
    if name == "relevance":
        return Relevance(embedder)
    raise ValueError(f"unknown momentum selection {name!r}")


async def select(history: History, method: str, k: int, embedder: Embedder | None = None,
                 force_newest: bool = False) -> list[int]:
    """Indices into ``history`` of the entries the named selector picks, in presentation order."""
    return await selector(method, embedder, force_newest)(history, k)


# ---------------------------------------------------------------------- what a piece may ask for
class Optimizing(Protocol):
    """What a momentum piece may do inside a step: one greedy optimizer reply, and an eval score."""

    async def reply(self, prompt: str) -> str: ...

    async def eval_score(self, prompt: str) -> float | None: ...  # None: the search budget cannot pay for it


# ---------------------------------------------------------------------- momentum over prompts
Summary = tuple[str, float] | None  # a real-time summary and its eval score


@dataclass(frozen=True)
class Direction:
    block: str  # the trajectory block of the update meta-prompt
    kind: str  # "-", "k-list" or "real-time": what the meta-prompt asks the optimizer to study


@dataclass(frozen=True)
class NoMomentum:
    """The update sees the current prompt and its score only."""

    requests: ClassVar[int] = 0  # optimizer requests per step (at most)
    scores: ClassVar[bool] = False  # whether it scores a prompt on eval every step

    async def __call__(self, points: list[Point], current: tuple[str, float], summary: Summary,
                       tools: Optimizing) -> tuple[Direction, Summary]:
        return Direction(current_block(*current), "-"), summary


@dataclass(frozen=True)
class KList:
    """The k earlier prompts (chosen ones, initial first) that ``select`` picks."""

    select: Selector
    k: int
    requests: ClassVar[int] = 0
    scores: ClassVar[bool] = False

    async def __call__(self, points: list[Point], current: tuple[str, float], summary: Summary,
                       tools: Optimizing) -> tuple[Direction, Summary]:
        history = [(p.prompt, p.score) for p in points]
        picked = await self.select(history, self.k)
        return Direction(k_list_block([history[i] for i in picked]), "k-list"), summary


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


@dataclass(frozen=True)
class RealTime:
    """A running summary of the trajectory: the optimizer LLM folds the current prompt into
    it every step, and the summary is scored on eval. At the first step there is no summary
    yet: the block shows the current prompt, and no summary is asked to be studied."""

    requests: ClassVar[int] = 1
    scores: ClassVar[bool] = True

    async def __call__(self, points: list[Point], current: tuple[str, float], summary: Summary,
                       tools: Optimizing) -> tuple[Direction, Summary]:
        if summary is None:
            return Direction(current_block(*current), "-"), current
        text = await tools.reply(summarise_prompts_prompt(*summary, *current)) or current[0]
        score = await tools.eval_score(text)
        if score is None:  # the search budget cannot score the new summary: this step goes without, the old one stays
            return Direction(current_block(*current), "-"), summary
        return Direction(real_time_block(text, score), "real-time"), (text, score)


PromptMomentum = NoMomentum | KList | RealTime


def prompt_momentum(cfg, embedder: Embedder | None = None) -> PromptMomentum:
    """Momentum over prompts, as a GPOConfig names it (``momentum_para_name='para'``)."""
    if cfg.momentum_para_name != "para":
        return NoMomentum()
    if cfg.momentum_update_name == "k-list":
        return KList(selector(cfg.momentum_selection_name, embedder), cfg.momentum_selection_num)
    return RealTime()


# ---------------------------------------------------------------------- momentum over gradients
def integrate_gradients_prompt(running: str, new: str) -> str:
    """Real-time gradient momentum: merge the problems found so far with the new ones."""
    return "\n\n".join(
        [
            "Your job is to combine two lists of problems with prompts into one: problems found with earlier "
            "prompts, and problems found with the current prompt.",
            f"Problems with earlier prompts:\n{running}",
            f"Problems with the current prompt:\n{new}",
            f"Write the combined list of problems between {START} and {END}.",
        ]
    )


@dataclass(frozen=True)
class NewestGradient:
    """No gradient momentum: the update sees this step's gradient."""

    requests: ClassVar[int] = 0

    async def __call__(self, gradients: list[GradientEntry], running: str | None,
                       tools: Optimizing) -> tuple[str, str | None]:
        return gradients[-1].text, running


@dataclass(frozen=True)
class KListGradients:
    """This step's gradient and the k-1 earlier ones ``select`` picks by their improvement."""

    select: Selector
    k: int
    requests: ClassVar[int] = 0

    async def __call__(self, gradients: list[GradientEntry], running: str | None,
                       tools: Optimizing) -> tuple[str, str | None]:
        history = [(g.text, g.improvement if g.improvement is not None else 0.0) for g in gradients]
        return "\n\n".join(history[i][0] for i in await self.select(history, self.k)), running


@dataclass(frozen=True)
class RealTimeGradients:
    """A running list of problems the optimizer LLM merges each new gradient into."""

    requests: ClassVar[int] = 1

    async def __call__(self, gradients: list[GradientEntry], running: str | None,
                       tools: Optimizing) -> tuple[str, str | None]:
        new = gradients[-1].text
        merged = new if running is None else await tools.reply(integrate_gradients_prompt(running, new))
        return merged, merged


GradientMomentum = NewestGradient | KListGradients | RealTimeGradients


def gradient_momentum(cfg, embedder: Embedder | None = None) -> GradientMomentum:
    """Momentum over gradients, as a GPOConfig names it (``momentum_para_name='feedback'``)."""
    if cfg.momentum_para_name != "feedback":
        return NewestGradient()
    if cfg.momentum_update_name == "k-list":
        return KListGradients(selector(cfg.momentum_selection_name, embedder, keep_newest=True),
                              cfg.momentum_selection_num)
    return RealTimeGradients()
