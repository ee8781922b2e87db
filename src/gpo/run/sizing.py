"""A run sized to the time or money it must fit (``--budget 15m``, ``--budget 2usd``).

The sizes of ``gpo.config.SIZES`` are tried from the largest (heavy, medium, light), then light
with its search budget and test examples halved until the run buys only ``MIN_PROPOSALS``
proposals; the first whose planned *upper bound* fits is taken: its wall time on this machine
(the models timed once, ``gpo.run.plan.time_model``) or its cost at the models' prices. A budget
that not even the smallest run fits is refused, saying what that run needs."""

from __future__ import annotations

import copy
import dataclasses

from gpo.config import SIZES
from gpo.errors import ConfigError
from gpo.run.build import build_evaluator, build_model, load_tasks
from gpo.run.plan import estimate_time, format_duration, measure, plan, wall
from gpo.run.sources import apply_level, parse_size
from gpo.run.spec import RunSpec
from gpo.tasks import Task

LADDER = ("heavy", "medium", "light")
SHRINKS = 6  # halvings of light's search budget and test examples tried before giving up


def chosen(spec: RunSpec) -> set[str]:
    """What the user fixed that a size must not change: a search budget they set (sizes set one
    only through ``apply_level``, which a time or money budget skips in ``from_sources``)."""
    return {"scorer_calls_per_task"} if spec.config.budget.scorer_calls_per_task else set()


def candidates(spec: RunSpec):
    """(label, spec) from the largest size to the smallest run worth making."""
    fixed = chosen(spec)
    for level in LADDER:
        sized = copy.deepcopy(spec)
        apply_level(level, sized, fixed)
        yield level, sized
    for i in range(1, SHRINKS + 1):
        sized = copy.deepcopy(spec)
        apply_level("light", sized, fixed)
        caps = dict(sized.tasks.max_examples or {})
        caps["test"] = max(10, caps.get("test", SIZES["light"]["max_examples"]["test"]) >> i)
        sized.tasks.max_examples = caps
        budget = sized.config.budget
        if "scorer_calls_per_task" not in fixed:
            budget = dataclasses.replace(budget, scorer_calls_per_task=max(1, budget.scorer_calls_per_task >> i))
        sized.config = dataclasses.replace(sized.config, budget=budget)
        yield f"light, {budget.scorer_calls_per_task} search requests a task and at most {caps['test']} test examples", sized


async def fit(spec: RunSpec) -> tuple[RunSpec, str | None]:
    """``spec`` sized to its time or money budget, and a line saying what was chosen (a size
    by name: the spec as it is, and None)."""
    kind, amount = parse_size(spec.size) if spec.size else ("level", None)
    if kind == "level":
        return spec, None
    scorer_llm = build_model(spec.scorer, None)
    optimizer_llm = scorer_llm if spec.optimizer == spec.scorer else build_model(spec.optimizer, None)
    try:
        timing, smallest = None, None
        for label, sized in candidates(spec):
            tasks = load_tasks(sized.tasks)
            try:
                planned = plan(sized, tasks)
            except ConfigError:  # it buys too few proposals: nothing smaller is worth running
                break
            if kind == "seconds":
                timing = timing or await measure(sized, build_evaluator(sized, scorer_llm), optimizer_llm, tasks[0])
                if not (timing.scorer and timing.optimizer):
                    raise ConfigError(f"--budget {spec.size}: a model is an endpoint, whose speed is known only once "
                                      f"the run is going; give a size (light, medium, heavy) or money (2usd)")
                need = wall(sized, planned, tasks[0], timing)[1]
                shown = format_duration(need)
            else:
                need, shown = planned["estimated_cost_usd"], f"${planned['estimated_cost_usd']:.2f}"
                if not need:
                    raise ConfigError(f"--budget {spec.size}: no model has a price (--scorer-price, "
                                      f"--optimizer-price IN,OUT in USD per million tokens), so every run costs $0 "
                                      f"by the plan; give prices, a size (light, medium, heavy) or a time (15m)")
            smallest = (label, shown)
            if need <= amount:
                return sized, f"sized to --budget {spec.size}: {label} (planned upper bound {shown})"
        what = f"the smallest run ({smallest[0]}) needs up to {smallest[1]}" if smallest else "no run buys a search"
        raise ConfigError(f"--budget {spec.size}: {what} on this machine; give more, or fewer tasks")
    finally:
        await scorer_llm.aclose()
        if optimizer_llm is not scorer_llm:
            await optimizer_llm.aclose()


async def plan_with_time(spec: RunSpec, tasks: list[Task] | None = None) -> dict:
    """The dry run's answer: the spec sized (``fit``), its ``plan`` and its time on this machine."""
    spec, sized = await fit(spec)
    tasks = tasks if tasks is not None and not sized else load_tasks(spec.tasks)
    planned = plan(spec, tasks) | ({"sized": sized} if sized else {})
    scorer_llm, optimizer_llm = build_model(spec.scorer, None), build_model(spec.optimizer, None)
    try:
        return planned | await estimate_time(spec, planned, build_evaluator(spec, scorer_llm), optimizer_llm, tasks[0])
    finally:
        await scorer_llm.aclose()
        await optimizer_llm.aclose()
