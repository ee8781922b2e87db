"""The vocabulary every layer shares, defined once: a task's splits, a run's model roles, and
the token limit a scorer's or judge's reply gets unless a run says otherwise."""

from __future__ import annotations

SPLITS = ("train", "eval", "test", "format", "few_shot")
HOLDOUT = "holdout"  # the share of eval a run keeps out of its search (final_holdout; gpo.tasks.task.hold_out)
DATA_SPLITS = SPLITS[:3]  # the splits examples are scored on; format and few_shot are drawn from train
ROLES = ("optimizer", "scorer", "judge")  # the models a run pays for, in the order usage shows them
SCALED_ROLES = ("scorer", "optimizer")  # the roles with their own scale flags (a judge runs beside the optimizer)
DEFAULT_MAX_TOKENS = 256
