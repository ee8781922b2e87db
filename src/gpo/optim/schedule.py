"""Step-size (edit budget, in words) schedules: fixed, linear, cosine, with warmup.

The formulas of GPO_SPEC 7.3. ``t`` is the trajectory length at the step
(global step + 1). One deliberate deviation: without warmup, linear decay does
not subtract ``warmup_steps`` from the horizon (the original did, changing the
slope whenever warmup_steps was non-zero but warmup was off).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class StepSizeSchedule:
    strategy: str  # fixed | linear | cosine ("consine" accepted)
    initial: int
    final: int
    total_steps: int
    warmup: bool = False
    warmup_steps: int = 0

    def __post_init__(self) -> None:
        if self.strategy == "consine":
            object.__setattr__(self, "strategy", "cosine")
        if self.strategy not in ("fixed", "linear", "cosine"):
            raise ValueError(f"unknown decay strategy {self.strategy!r}")
        if self.strategy != "fixed" and self.warmup and self.total_steps <= self.warmup_steps:
            raise ValueError(
                f"{self.strategy} decay needs more total steps ({self.total_steps}) than warmup steps ({self.warmup_steps})"
            )

    def __call__(self, t: int) -> int:
        S0, Sf, T = self.initial, self.final, self.total_steps
        W = self.warmup_steps if self.warmup else 0
        if self.warmup and t < W:
            return int(S0 * t / W)
        if self.strategy == "fixed":
            return S0
        horizon = max(T - W, 1)
        if self.strategy == "linear":
            return int(S0 - (S0 - Sf) / horizon * (t - W))
        return int(Sf + (S0 - Sf) * 0.5 * (1 + math.cos(math.pi * (t - W) / horizon)))

    def values(self) -> list[int]:
        return [self(t) for t in range(1, self.total_steps + 1)]
