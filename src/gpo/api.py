"""The Python API, mirroring the CLI: describe a run, plan it, optimize, resume, evaluate.

    from gpo.api import RunSpec, TaskSpec, ModelSpec, optimize
    spec = RunSpec(tasks=TaskSpec(source="user", files="reviews.csv", input_col="text", target_col="label"),
                   scorer=ModelSpec("llama3.1:8b", base_url="http://localhost:11434/v1"))
    results = optimize(spec, "runs/reviews")

``RunSpec.method`` picks the optimizer: ``gpo`` or a baseline (``ape``, ``apo``,
``opro``, ``pe2``, ``evoprompt-ga``, ``evoprompt-de``, ``empty``, ``cot``), all on the
same scorer, extraction, budgets and run store.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from gpo.aio import first_failure
from gpo.engine.search import PromptSearch
from gpo.engine.state import TaskResult
from gpo.errors import RunDirError
from gpo.llm import LLM, Request, ResponseCache
from gpo.llm.embed import Embedder, OpenAIEmbedder, SentenceTransformerEmbedder
from gpo.llm.meter import Meter
from gpo.methods import method_class
from gpo.runs.store import RunStore, clear_run, existing_spec, read_spec
from gpo.scoring.evaluate import Evaluation, Evaluator, second_round_applies
from gpo.scoring.judge import Judge
from gpo.scoring.render import Position, PromptFormat, render
from gpo.spec import ModelSpec, RunSpec, ScoringSpec, TaskSpec  # noqa: F401 - what a run is, re-exported
from gpo.tasks import Task
from gpo.tasks.task import TaskError


@dataclass
class Runtime:
    """The live objects a run needs, built once from a RunSpec."""

    optimizer_llm: LLM
    scorer_llm: LLM
    evaluator: Evaluator
    embedder: Embedder | None
    cache: ResponseCache
    judge_llm: LLM | None = None  # metric "judge" only
    meter: Meter = field(default_factory=Meter)  # the run budgets, held on every backend call

    def roles(self) -> dict[str, LLM]:
        """Every model role of the run, by name."""
        judge = {"judge": self.judge_llm} if self.judge_llm else {}
        return {"optimizer": self.optimizer_llm, "scorer": self.scorer_llm, **judge}

    async def aclose(self) -> None:
        await self.evaluator.cancel_pending()  # their requests are counted before the clients close
        for llm in self.roles().values():
            await llm.aclose()
        self.cache.close()


def build_prompt_format(spec: RunSpec) -> PromptFormat:
    cfg = spec.config
    return PromptFormat(position=Position.parse(cfg.instruction_pos), include_qa=cfg.include_qa,
                        few_shot=cfg.few_shot_number if cfg.evaluate_generated_ins_on_few_shot else 0,
                        chat=spec.scoring.chat)


def build_evaluator(spec: RunSpec, scorer: LLM, judge: LLM | None = None) -> Evaluator:
    grader = Judge(judge, spec.tasks.judge_rubric or "", spec.scoring.judge_max_tokens) if judge is not None else None
    return Evaluator(scorer, build_prompt_format(spec), spec.scoring.second_round, spec.scoring.max_tokens,
                     spec.scoring.second_round_max_tokens, spec.config.extraction, grader)


def build_runtime(spec: RunSpec, run_dir: str | Path | None = None, need_embedder: bool = True) -> Runtime:
    """The run's models, evaluator and meter. ``need_embedder=False`` for commands that only
    score (``gpo evaluate``): no embedding model is loaded whatever the method would need."""
    cache_path = spec.cache or (Path(run_dir) / "cache.sqlite" if run_dir else Path(".gpo-cache.sqlite"))
    cache = ResponseCache(cache_path)
    optimizer_llm = spec.optimizer.build(cache)
    scorer_llm = spec.scorer.build(cache)
    cfg = spec.config
    judge_llm = spec.judge_model.build(cache) if spec.tasks.metric == "judge" else None
    evaluator = build_evaluator(spec, scorer_llm, judge_llm)
    embedder: Embedder | None = None
    if need_embedder and method_class(spec.method).needs_embedder(cfg):
        if spec.embedder.startswith("openai:"):
            embedder = OpenAIEmbedder(spec.embedder.split(":", 1)[1], base_url=spec.optimizer.base_url,
                                      api_key=os.environ.get(spec.optimizer.api_key_env or "") or None)
        else:
            embedder = SentenceTransformerEmbedder(None if spec.embedder == "all-MiniLM-L6-v2" else spec.embedder)
    b = spec.config.budget
    meter = Meter(b.max_scorer_calls, b.max_optimizer_calls, b.max_tokens, b.max_cost)
    rt = Runtime(optimizer_llm, scorer_llm, evaluator, embedder, cache, judge_llm, meter)
    for role, llm in rt.roles().items():
        llm.meter, llm.role = meter, role
    return rt


def build_search(spec: RunSpec, rt: Runtime | None = None, hooks=None, budget=None) -> PromptSearch:
    """The spec's method (the prompt optimizer) on the runtime's models (without a runtime:
    for planning only)."""
    cls = method_class(spec.method)
    if rt is None:
        return cls(spec.config, None, None, options=spec.method_options)  # type: ignore[arg-type]
    return cls(spec.config, rt.optimizer_llm, rt.evaluator, rt.embedder, hooks, budget, spec.method_options)


build_optimizer = build_search  # its name in 0.1 (it builds the search, not the optimizer model)


def usage_summary(rt: Runtime) -> dict:
    """Usage per role, and per endpoint or replica where a role has several; for a judge,
    how many of its replies had no score."""
    out = {}
    for role, llm in rt.roles().items():
        out[role] = llm.usage.as_dict() | {"cost": llm.cost}
        if llm.usage_by_member():
            out[role]["members"] = llm.usage_by_member()
    if rt.judge_llm is not None and rt.evaluator.judge is not None:
        out["judge"]["unparsed"] = sum(rt.evaluator.judge.unparsed.values())
    return out


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
    tasks: list[Task] | None = None, overwrite: bool = False,
) -> list[TaskResult]:
    """Optimize every task of the spec into ``run_dir`` (``tasks``: already loaded ones).

    A ``run_dir`` that already holds this run (the same settings) is resumed, as
    ``resume`` does; one holding a run with other settings is refused unless
    ``overwrite`` (see ``claim_run_dir``)."""
    tasks = tasks if tasks is not None else spec.tasks.load()
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
    search = build_search(spec, rt, store, rt.meter.exhausted)
    store.event("run_start", tasks=[t.id for t in tasks], resume=resume, method=spec.method, reused=reused)
    limit = asyncio.Semaphore(max(1, spec.concurrent_tasks))

    async def one(task: Task) -> TaskResult:
        async with limit:
            store.event("task_start", task=task.id)
            result = await search.optimize(task)
            store.event("task_usage", task=task.id, paid=rt.meter.task_spent(task.id))
            store.event("usage", **usage_summary(rt))
            return result

    try:
        planned = plan(spec, tasks)
        store.event("plan", scorer_calls=planned["scorer_calls"], optimizer_samples=planned["optimizer_samples"],
                    selection=spec.config.selection, resume=resume,
                    **await estimate_time(spec, planned, rt.scorer_llm, rt.optimizer_llm, tasks[0]))
        results = await first_failure(one(t) for t in tasks)  # a task that fails stops the others
        store.write_results([r.as_dict() for r in results])
        stopped = [r.stopped for r in results if r.stopped]
        store.event("usage", **usage_summary(rt))
        store.event("run_stopped" if stopped else "run_done", results=len(results))
        return results
    except (asyncio.CancelledError, KeyboardInterrupt):
        store.event("interrupted", **usage_summary(rt))
        raise
    except Exception as err:
        store.event("failed", error=str(err))
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
) -> list[tuple[Task, Evaluation]]:
    """Score prompts on the spec's tasks; write per-example records to out_dir.

    A plain prompt is scored on every task; a ``(task, prompt)`` pair only on tasks
    whose name or dataset is ``task`` (``None``: every task), as in prompt files."""
    jobs = [(None, p) if isinstance(p, str) else p for p in prompts]
    tasks = tasks if tasks is not None else spec.tasks.load()
    rt = build_runtime(spec, out_dir, need_embedder=False)
    try:
        results = []
        for task in tasks:
            wanted = list(dict.fromkeys(p for t, p in jobs if t in (None, task.name, task.dataset)))
            for ev in await rt.evaluator.evaluate_many(task, wanted, split):
                results.append((task, ev))
        if out_dir:
            for i, (task, ev) in enumerate(results):
                ev.write(Path(out_dir) / f"{task.id.replace('/', '__')}-{split}-{i:03d}.jsonl")
        return results
    finally:
        await rt.aclose()


def read_prompt_file(path: str | Path) -> list[dict]:
    """Prompt files: one JSON object per line with ``prompt`` (and ``dataset``/``task``,
    or gpo's own ``final_prompt``), as the paper published its prompts."""
    rows = []
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise TaskError(f"{path}, line {lineno}: not valid JSON ({err.msg})") from None
        prompt = row.get("prompt", row.get("final_prompt"))
        if prompt is None:
            raise TaskError(f"{path}, line {lineno}: no 'prompt' (or 'final_prompt') field; fields found: {', '.join(row)}")
        rows.append({"dataset": row.get("dataset"), "task": row.get("task") or row.get("dataset"), "prompt": prompt})
    return rows


# Token upper bounds. A token is at least one UTF-8 byte (byte-level tokenizers), so bytes
# bound tokens; a chat message adds at most MESSAGE_TOKENS of template. Instructions are
# bounded by max_prompt_words (longer candidates are rejected) of at most WORD_BYTES each.
MESSAGE_TOKENS = 16
WORD_BYTES = 16
META_PROMPT_BYTES = 4000  # the fixed text of the longest meta-prompt template


def _request_bytes(request: Request) -> int:
    if request.messages is None:
        return len((request.prompt or "").encode("utf-8")) + MESSAGE_TOKENS
    return sum(len(text.encode("utf-8")) + MESSAGE_TOKENS for _, text in request.messages)


def _bounds(spec: RunSpec, task: Task) -> dict:
    """Upper bounds on one call's tokens, by role: (prompt, completion)."""
    cfg, scoring = spec.config, spec.scoring
    instruction = " ".join(["w" * (WORD_BYTES - 1)] * cfg.max_prompt_words)
    fmt = build_prompt_format(spec)
    demos = task.splits.get("few_shot", [])
    examples = [e for s in ("train", "eval", "test") for e in task.split(s)] or task.split("eval")
    first = max((_request_bytes(render(instruction, e, fmt, demos, task.template)) for e in examples), default=0)
    longest = max((len((e.input + e.target).encode("utf-8")) for e in examples), default=0)
    second = first + scoring.max_tokens + len((task.second_round or "").encode("utf-8")) + 2 * MESSAGE_TOKENS
    shown = cfg.format_data_num + cfg.opt_batch_size + cfg.momentum_selection_num + 3
    optimizer_prompt = (META_PROMPT_BYTES + shown * (longest + scoring.max_tokens + len(instruction))
                        + cfg.optimizer_max_tokens)
    judge_prompt = len((spec.tasks.judge_rubric or "").encode("utf-8")) + longest + scoring.max_tokens + 4 * MESSAGE_TOKENS
    return {"first": (first, scoring.max_tokens), "second": (second, scoring.second_round_max_tokens),
            "optimizer": (optimizer_prompt, cfg.optimizer_max_tokens), "judge": (judge_prompt, scoring.judge_max_tokens)}


def plan(spec: RunSpec, tasks: list[Task] | None = None) -> dict:
    """Planned scorer and optimizer calls, and upper bounds on tokens and cost, for a run.

    Calls are upper bounds (cache hits, racing and early stops make runs cheaper); tokens
    are bounded from the configured maxima (the scorer's, second round's, optimizer's and
    judge's ``max_tokens``, resample rounds) and from the longest prompt each role can be
    sent (``_bounds``), so every figure a run spends is at most its planned figure."""
    cfg = spec.config
    method = build_search(spec)
    cap = cfg.budget.scorer_calls_per_task
    totals = {"scorer_calls": 0, "optimizer_calls": 0, "optimizer_samples": 0,
              "scorer_tokens": [0, 0], "optimizer_tokens": [0, 0]}
    per_task = []
    for task in tasks if tasks is not None else spec.tasks.load():
        second = 2 if second_round_applies(build_prompt_format(spec), spec.scoring.second_round, task) else 1
        judge = 1 if task.metric == "judge" else 0  # one grade per scored example
        n_eval, n_test, n_train = (len(task.split(s)) for s in ("eval", "test", "train"))
        steps = method.total_steps(task)
        per_step_examples, per_step_opt, per_step_samples = method.planned_step(min(cfg.opt_batch_size, n_train), n_eval)
        search = (n_eval + steps * per_step_examples) * (second + judge)
        if cap is not None:
            search = min(search, cap)
        test = method.planned_test_prompts(task) * n_test * (second + judge)
        judge_calls = (search + test) * judge // (second + judge)
        scorer_calls, opt_calls = search + test - judge_calls, steps * per_step_opt
        samples = steps * per_step_samples
        bound = _bounds(spec, task)
        worst = bound["second"] if second == 2 else bound["first"]  # the longer of a scorer call's two kinds
        totals["scorer_tokens"][0] += scorer_calls * max(bound["first"][0], worst[0])
        totals["scorer_tokens"][1] += scorer_calls * max(bound["first"][1], worst[1])
        totals["optimizer_tokens"][0] += opt_calls * bound["optimizer"][0]
        totals["optimizer_tokens"][1] += samples * bound["optimizer"][1]
        if judge_calls:
            totals["judge_calls"] = totals.get("judge_calls", 0) + judge_calls
            tokens = totals.setdefault("judge_tokens", [0, 0])
            tokens[0] += judge_calls * bound["judge"][0]
            tokens[1] += judge_calls * bound["judge"][1]
        totals["scorer_calls"] += scorer_calls
        totals["optimizer_calls"] += opt_calls
        totals["optimizer_samples"] += samples
        per_task.append({"task": task.id, "steps": steps, "scorer_calls": scorer_calls, "optimizer_calls": opt_calls})
    priced = [(spec.scorer, totals["scorer_tokens"]), (spec.optimizer, totals["optimizer_tokens"])]
    if "judge_tokens" in totals:
        priced.append((spec.judge_model, totals["judge_tokens"]))
    cost = sum((tok[0] * (role.price_prompt or 0) + tok[1] * (role.price_completion or 0)) / 1e6 for role, tok in priced)
    note = ("upper bounds: calls as if nothing were cached or stopped early, tokens from the configured maxima "
            "(tokens counted as bytes, at most); real runs spend less")
    if cfg.selection == "race":
        note += "; with selection=race candidates significantly worse than a step's leader stop early"
    return {"method": spec.method, "tasks": per_task, **totals, "estimated_cost_usd": round(cost, 4), "note": note}


LONG_RUN_S = 3600
PROBE_TOKENS = 32


async def estimate_time(spec: RunSpec, planned: dict, scorer_llm: LLM, optimizer_llm: LLM, task: Task) -> dict:
    """Wall time of a plan on this machine. Models that run in process are timed now on a
    few requests (outside the cache and the usage counts); an endpoint's speed is known
    only once the run is going (the progress view's ETA uses it)."""
    out: dict = {"estimated_wall_s": None}
    seconds, timed = 0.0, []
    if scorer_llm.in_process:
        evaluator = build_evaluator(spec, scorer_llm)
        n = min(2, len(task.split("eval")))
        requests = evaluator.first_requests(task, build_search(spec).initial_prompt(task), "eval", range(n))
        per_request = sum([await scorer_llm.time_request(r) for r in requests]) / max(1, n)
        seconds += per_request * planned["scorer_calls"]
        timed.append(f"scorer {per_request:.2f} s a request")
    if optimizer_llm.in_process:
        probe = Request.chat("Write one short instruction for a language model.", temperature=0.0,
                             max_tokens=PROBE_TOKENS)
        per_token = await optimizer_llm.time_request(probe) / PROBE_TOKENS
        seconds += per_token * planned["optimizer_tokens"][1]
        timed.append(f"optimizer {1 / per_token:.0f} tokens/s")
    if not timed:
        out["timing"] = "endpoints: timed once the run is going (see the progress view's ETA)"
        return out
    out["estimated_wall_s"] = round(seconds)
    out["timing"] = ", ".join(timed) + (" (timed on this machine; endpoints not included)"
                                        if not (scorer_llm.in_process and optimizer_llm.in_process) else " (timed on this machine)")
    if seconds > LONG_RUN_S:
        out["hint"] = (f"about {format_duration(seconds)}: to shorten it, race candidates (--selection race"
                       f"{', the default' if spec.config.selection == 'race' else ''}), cap each task's search "
                       "(--scorer-calls-per-task N), or score fewer examples (--max-examples eval=N --max-examples test=N)")
    return out


def format_duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


async def plan_with_time(spec: RunSpec, tasks: list[Task] | None = None) -> dict:
    """``plan`` plus the wall-time estimate (the dry run's answer)."""
    tasks = tasks if tasks is not None else spec.tasks.load()
    planned = plan(spec, tasks)
    scorer_llm, optimizer_llm = spec.scorer.build(None), spec.optimizer.build(None)
    try:
        return planned | await estimate_time(spec, planned, scorer_llm, optimizer_llm, tasks[0])
    finally:
        await scorer_llm.aclose()
        await optimizer_llm.aclose()
