"""Step-size (edit budget, in words) schedules: fixed, linear, cosine, with warmup.

The formulas of docs/BEHAVIOUR.md, "The update", computed in the original's arithmetic order, so the
values are the original's word for word (the int() truncation makes the order
matter: one step of T = 39 would otherwise give 19 words instead of 20). ``t`` is
the trajectory length at the step (global step + 1). One deliberate deviation:
without warmup, linear decay does not subtract ``warmup_steps`` from the horizon
(the original did, changing the slope whenever warmup_steps was non-zero but
warmup was off).

Warmup lasts ``warmup_steps`` steps, or a share of each task's steps
(``warmup_fraction``; the paper warms up over the first 5%): ceil(share x T),
kept below T.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class StepSizeSchedule:
    strategy: str  # fixed | linear | cosine (the original's "consine" is normalised by gpo.config)
    initial: int
    final: int
    total_steps: int
    warmup: bool = False
    warmup_steps: int = 0

    def __post_init__(self) -> None:
        if self.strategy not in ("fixed", "linear", "cosine"):
            raise ValueError(f"unknown decay strategy {self.strategy!r}")
        if self.strategy != "fixed" and self.warmup and self.total_steps <= self.warmup_steps:
            raise ValueError(
                f"{self.strategy} decay needs more total steps ({self.total_steps}) than warmup steps ({self.warmup_steps})"
            )

    @classmethod
    def from_config(cls, cfg, total_steps: int) -> "StepSizeSchedule | None":
        """The schedule a GPOConfig asks for over ``total_steps`` (None: no word budget)."""
        if cfg.decay_strategy == "-" or total_steps == 0:
            return None
        warmup_steps = cfg.warmup_steps
        if cfg.use_warmup_strategy and cfg.warmup_fraction:
            warmup_steps = min(math.ceil(cfg.warmup_fraction * total_steps), total_steps - 1)
        warmup = cfg.use_warmup_strategy and warmup_steps > 0
        return cls(cfg.decay_strategy, cfg.initial_step_size, cfg.final_step_size, total_steps, warmup, warmup_steps)

    def __call__(self, t: int) -> int:
        S0, Sf, T = self.initial, self.final, self.total_steps
        t = min(t, T)  # past the schedule's end (more steps than it was built for): the final size
        W = self.warmup_steps if self.warmup else 0
        if self.warmup and t < W:
            return int(S0 * t / W)
        if self.strategy == "fixed":
            return S0
        if self.strategy == "linear":
            rate = (S0 - Sf) / max(T - W, 1)
            return int(S0 - rate * (t - W))
        decayed = (t - W) / (T - W)
        cosine_decay = 0.5 * (1 + math.cos(math.pi * decayed))
        return int(Sf + (S0 - Sf) * cosine_decay)

    def values(self) -> list[int]:
        return [self(t) for t in range(1, self.total_steps + 1)]
