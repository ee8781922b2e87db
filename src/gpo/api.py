"""The Python API, mirroring the CLI: describe a run, plan it, optimize, resume, evaluate.

    from gpo.api import RunSpec, TaskSpec, ModelSpec, optimize
    spec = RunSpec(tasks=TaskSpec(source="user", files="reviews.csv", input_col="text", target_col="label"),
                   scorer=ModelSpec("llama3.1:8b", base_url="http://localhost:11434/v1"))
    results = optimize(spec, "runs/reviews")

``RunSpec.method`` picks the optimizer: ``gpo`` or any name of ``gpo.methods.METHODS``
(``gpo optimize --help`` lists them), all on the same scorer, extraction, budgets and run store.
Running lives here; building a run's objects from its spec in ``gpo.run.build``, and its
plan in ``gpo.run.plan`` (both re-exported).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Callable, Iterable

from gpo.aio import first_failure
from gpo.engine.events import Event
from gpo.engine.state import TaskResult
from gpo.llm.meter import BudgetSpent, StopSwitch
from gpo.errors import RunDirError
from gpo.run.plan import estimate_time, format_duration, plan  # noqa: F401 - re-exported
from gpo.run.sizing import fit, plan_with_time  # noqa: F401 - re-exported
from gpo.run.lock import RunLock, describe as describe_holder
from gpo.run.store import RunStore, clear_run, existing_spec, read_spec
from gpo.run.build import (build_evaluator, build_model, build_runtime, build_search,  # noqa: F401 - re-exported
                         load_tasks, usage_summary)
from gpo.methods import method_class
from gpo.scoring.evaluate import Evaluation
from gpo.scoring.headroom import SAMPLE, Headroom, probe
from gpo.scoring.reference import human_reference
from gpo.run.sources import check_method, from_sources  # noqa: F401 - re-exported: a spec from a preset, a file, flags
from gpo.run.spec import ModelSpec, RunSpec, ScoringSpec, TaskSpec  # noqa: F401 - what a run is, re-exported
from gpo.tasks import Task
from gpo.tasks.loaders import read_jsonl
from gpo.tasks.task import TaskError


def claim_run_dir(spec: RunSpec, run_dir: str | Path, overwrite: bool = False) -> bool:
    """Whether ``run_dir`` already holds this very run (then it is resumed, never redone).
    A directory holding a run with other settings is refused (``RunDirError`` naming the
    settings that differ) unless ``overwrite``, which removes the old run whole."""
    old = existing_spec(run_dir)
    if old is None:
        return False
    if overwrite:
        clear_run(run_dir)
        return False
    differ = spec.differences(old)
    if differ:
        shown = ", ".join(differ[:6]) + (f" and {len(differ) - 6} more" if len(differ) > 6 else "")
        raise RunDirError(f"{run_dir} holds a run with other settings ({shown} differ): start afresh there with "
                          f"--overwrite (overwrite=True; nothing of the old run is kept), or choose another run "
                          f"directory; to continue the old run, gpo resume {run_dir}")
    return True


async def optimize_async(
    spec: RunSpec, run_dir: str | Path, listeners: Iterable[Callable[[dict], None]] = (), resume: bool = False,
    tasks: list[Task] | None = None, overwrite: bool = False, stop: StopSwitch | None = None,
) -> list[TaskResult]:
    """Optimize every task of the spec into ``run_dir`` (``tasks``: already loaded ones; ``stop``:
    pulled, the run stops cleanly, as at a run cap, and its log ends 'interrupted').

    A ``run_dir`` that already holds this run (the same settings) is resumed, as
    ``resume`` does; one holding a run with other settings is refused unless
    ``overwrite`` (see ``claim_run_dir``)."""
    check_method(spec)  # an unknown method or option fails before anything is written
    sized = None
    if not resume:  # a time or money budget is sized now (a resumed run keeps the sizes it was given)
        spec, sized = await fit(spec)
    tasks = tasks if tasks is not None and not sized else load_tasks(spec.tasks)
    lock = RunLock.acquire(run_dir)  # one writer per run directory, released however this ends
    try:
        return await _optimize_locked(spec, run_dir, listeners, resume, tasks, overwrite, lock, stop or StopSwitch(),
                                      sized)
    finally:
        lock.release()


async def _optimize_locked(spec: RunSpec, run_dir: str | Path, listeners, resume: bool, tasks: list[Task],
                           overwrite: bool, lock: RunLock, stop: StopSwitch, sized: str | None) -> list[TaskResult]:
    reused = not resume and claim_run_dir(spec, run_dir, overwrite)
    resume = resume or reused
    store = RunStore(run_dir)
    store.listeners.extend(listeners)
    if not resume:
        store.write_spec(spec.to_dict())
    rt = build_runtime(spec, run_dir)
    if resume:
        rt.meter.restore(store.load_meter())  # budgets count what earlier processes of the run spent
    rt.meter.on_change = store.save_meter
    stop.attach(rt.meter)

    def usage_after_each_step(event: dict) -> None:  # what the run has paid so far, for the live view and trackers
        if event["event"] == Event.STEP:
            store.event(Event.USAGE, **usage_summary(rt))

    store.listeners.insert(0, usage_after_each_step)
    search = build_search(spec, rt, store, rt.meter.exhausted)
    store.event(Event.RUN_START, tasks=[t.id for t in tasks], resume=resume, method=spec.method, reused=reused,
                took_over=describe_holder(lock.taken_over) if lock.taken_over else None)
    limit = asyncio.Semaphore(max(1, spec.concurrent_tasks))

    async def one(task: Task) -> TaskResult:
        async with limit:
            store.event(Event.TASK_START, task=task.id)
            result = await search.optimize(task)
            store.event(Event.TASK_USAGE, task=task.id, paid=rt.meter.task_spent(task.id))
            store.event(Event.USAGE, **usage_summary(rt))
            return result

    try:
        planned = plan(spec, tasks)
        store.event(Event.PLAN, scorer_calls=planned["scorer_calls"], optimizer_samples=planned["optimizer_samples"],
                    selection=spec.config.selection, resume=resume, size=spec.size,
                    **{k: planned[k] for k in ("unused", "replies") if k in planned}, **({"sized": sized} if sized else {}),
                    **await estimate_time(spec, planned, rt.evaluator, rt.optimizer_llm, tasks[0]))
        results = await first_failure(one(t) for t in tasks)  # a task that fails stops the others
        store.write_results([r.as_dict() for r in results])
        stopped = [r.stopped for r in results if r.stopped]
        store.event(Event.USAGE, **usage_summary(rt))
        if stop.reason and stopped:  # stopped from outside: resumable, as after Ctrl-C
            store.event(Event.INTERRUPTED, **usage_summary(rt))
        else:
            store.event(Event.RUN_STOPPED if stopped else Event.RUN_DONE, results=len(results))
        return results
    except (asyncio.CancelledError, KeyboardInterrupt):
        store.event(Event.INTERRUPTED, **usage_summary(rt))
        raise
    except Exception as err:
        if stop.reason and isinstance(err, BudgetSpent):  # stopped from outside before a prompt was scored
            store.event(Event.INTERRUPTED, **usage_summary(rt))
        else:
            store.event(Event.FAILED, error=str(err))
        raise
    finally:
        await rt.aclose()
        store.close()


def optimize(spec: RunSpec, run_dir: str | Path, listeners=(), overwrite: bool = False) -> list[TaskResult]:
    return asyncio.run(optimize_async(spec, run_dir, listeners, overwrite=overwrite))


def resume(run_dir: str | Path, listeners=()) -> list[TaskResult]:
    spec = RunSpec.from_dict(read_spec(run_dir))
    return asyncio.run(optimize_async(spec, run_dir, listeners, resume=True))


async def evaluate_async(
    spec: RunSpec, prompts: list[str | tuple[str | None, str]], split: str = "test",
    out_dir: str | Path | None = None, tasks: list[Task] | None = None,
) -> list[tuple[Task, Evaluation, dict | None]]:
    """Score prompts on the spec's tasks; write per-example records to out_dir. Each result
    carries the task's human reference for that prompt (``gpo.scoring.reference``; None where
    the task has no human instruction).

    A plain prompt is scored on every task; a ``(task, prompt)`` pair only on tasks
    whose name or dataset is ``task`` (``None``: every task), as in prompt files."""
    jobs = [(None, p) if isinstance(p, str) else p for p in prompts]
    tasks = tasks if tasks is not None else load_tasks(spec.tasks)
    rt = build_runtime(spec, out_dir, need_embedder=False)
    try:
        results = []
        for task in tasks:
            wanted = list(dict.fromkeys(p for t, p in jobs if t in (None, task.name, task.dataset)))
            for ev in await rt.evaluator.evaluate_many(task, wanted, split):
                reference = await human_reference(rt.evaluator, task, ev.instruction, split, spec.config.race_alpha)
                results.append((task, ev, reference))
        if out_dir:
            for i, (task, ev, _) in enumerate(results):
                ev.write(Path(out_dir) / f"{task.id.replace('/', '__')}-{split}-{i:03d}.jsonl")
        return results
    finally:
        await rt.aclose()


async def probe_async(spec: RunSpec, tasks: list[Task] | None = None, sample: int = SAMPLE) -> list[Headroom]:
    """The headroom check on each of the spec's tasks (``gpo.scoring.headroom``): whether the
    prompt moves the scorer at all there, before any search pays for finding out."""
    check_method(spec)
    tasks = tasks if tasks is not None else load_tasks(spec.tasks)
    method, cfg = method_class(spec.method), spec.config
    rt = build_runtime(spec, None, need_embedder=False)
    try:
        return [await probe(rt.evaluator, task, method.initial_prompt_for(method.configured(cfg), task),
                            sample=sample, seed=cfg.seed, alpha=cfg.race_alpha, extraction=cfg.extraction)
                for task in tasks]
    finally:
        await rt.aclose()


def read_prompt_file(path: str | Path) -> list[dict]:
    """Prompt files: one JSON object per line with ``prompt`` (and ``dataset``/``task``,
    or gpo's own ``final_prompt``), as the paper published its prompts."""
    rows = []
    for row in read_jsonl(Path(path)):
        prompt = row.get("prompt", row.get("final_prompt"))
        if prompt is None:
            fields = ", ".join(k for k in row if k != "__line__")
            raise TaskError(f"{path}, line {row['__line__']}: no 'prompt' (or 'final_prompt') field; fields found: "
                            f"{fields}")
        rows.append({"dataset": row.get("dataset"), "task": row.get("task") or row.get("dataset"), "prompt": prompt})
    return rows
