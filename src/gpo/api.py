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
import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from gpo.config import GPOConfig
from gpo.llm import LLM, Pricing, Request, ResponseCache, build_llm, preflight
from gpo.llm.meter import Meter
from gpo.llm.embed import Embedder, OpenAIEmbedder, SentenceTransformerEmbedder
from gpo.optim.baselines import method_class
from gpo.optim.search import PromptSearch, TaskResult
from gpo.runs.store import RunStore, read_spec
from gpo.scoring.evaluate import Evaluation, Evaluator, second_round_applies
from gpo.scoring.judge import Judge
from gpo.scoring.metrics import build_metric, needs_target
from gpo.scoring.render import Position, PromptFormat
from gpo.tasks import Task, load_gpo_task, load_user_task, resolve_tasks, synthetic_task
from gpo.tasks.task import TaskError
from gpo.tasks.template import Template


@dataclass
class ModelSpec:
    """One model role. The API key is never stored: name the environment variable that holds it."""

    model: str = "embedded"
    base_url: str | None = None
    api_key_env: str | None = None
    concurrency: int | None = None
    price_prompt: float | None = None  # USD per million prompt tokens
    price_completion: float | None = None
    parallel: int | None = None  # in-process llama.cpp: requests decoded together
    gpus: list[int] | None = None  # in-process model on these GPUs
    replicas: int | None = None  # run the in-process model as this many Ray actors
    ray_address: str | None = None  # with replicas: "auto", "ray://host:10001", or None for a local Ray
    replica_cpus: float | None = None  # CPUs each replica reserves (and llama.cpp threads)

    def check(self, role: str = "model") -> None:
        """Cheap checks before a run: the GGUF file, the API key's variable, GPU support, Ray."""
        preflight(self.model, base_url=self.base_url, gpus=self.gpus or (), replicas=self.replicas or 0,
                  api_key_env=self.api_key_env, role=role)

    def build(self, cache: ResponseCache | None) -> LLM:
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        pricing = None
        if self.price_prompt is not None or self.price_completion is not None:
            pricing = Pricing(self.price_prompt or 0.0, self.price_completion or 0.0)
        return build_llm(self.model, base_url=self.base_url, api_key=key, cache=cache,
                         concurrency=self.concurrency, pricing=pricing, parallel=self.parallel or 1,
                         gpus=self.gpus or (), replicas=self.replicas or 0, ray_address=self.ray_address,
                         replica_cpus=self.replica_cpus or 1.0)


@dataclass
class TaskSpec:
    """Which tasks: ``synthetic`` (generated, default), ``gpo`` (the paper's data) or ``user`` files."""

    source: str = "synthetic"
    dataset: str | None = None  # gpo: bbh | mmlu | gsm8k | webnlg | wsc
    tasks: list[str] = field(default_factory=lambda: ["navigate"])
    data_dir: str | None = None
    sizes: dict[str, int] | None = None  # synthetic split sizes
    max_examples: dict[str, int] | None = None  # cap split sizes (subsampling, in file order)
    files: dict[str, str] | str | None = None  # user: split -> file, or one file to split
    input_col: str = "input"
    target_col: str = "target"
    kind: str | None = None
    seed: int = 0
    template: str | None = None  # user data: the prompt's text with {column} fields and an {instruction} slot
    system_template: str | None = None  # a chat scorer's system message (the starting one with optimize="system")
    optimize: str = "instruction"  # or "system": the system prompt is the parameter
    metric: str | None = None  # exact, contains, rouge_l, regex:P, json[:SCHEMA], python:MOD:FN, judge
    judge_rubric: str | None = None  # metric "judge": the rubric's text

    def load(self) -> list[Task]:
        if self.source != "user" and (self.template or self.system_template or self.metric or self.optimize != "instruction"):
            raise TaskError("templates, --optimize and --metric are for your own data (--dataset user); "
                            "the paper's tasks keep their own rendering and metrics")
        if self.source == "synthetic":
            tasks = [synthetic_task(t, seed=self.seed, sizes=self.sizes) for t in self.tasks]
        elif self.source == "gpo":
            if not self.dataset:
                raise TaskError("source 'gpo' needs a dataset (bbh, mmlu, gsm8k, webnlg, wsc)")
            if not self.data_dir:
                raise TaskError("source 'gpo' needs --data-dir (the folder holding bbh/, mmlu/, ...)")
            tasks = [load_gpo_task(self.data_dir, self.dataset, t) for t in resolve_tasks(self.dataset, self.tasks)]
        elif self.source == "user":
            if not self.files:
                raise TaskError("source 'user' needs files (one file, or split -> file)")
            name = self.tasks[0] if self.tasks and self.tasks != ["all"] else "user"
            metric, template = self.user_metric(), self.user_template()
            tasks = [load_user_task(name, self.files, input_col=self.input_col, target_col=self.target_col,
                                    kind=self.kind, seed=self.seed, metric=metric, template=template,
                                    target_optional=metric is not None and not needs_target(metric))]
            if template is not None and template.optimize == "system":
                tasks[0].initial_instruction = self.system_template
        else:
            raise TaskError(f"unknown task source {self.source!r}; use synthetic, gpo or user")
        if self.max_examples:
            for t in tasks:
                for split, cap in self.max_examples.items():
                    if split in t.splits:
                        t.splits[split] = t.splits[split][:cap]
        return tasks


    def user_template(self) -> Template | None:
        if self.template is None and self.system_template is None and self.optimize == "instruction":
            return None
        return Template(self.template, self.system_template, self.optimize)

    def user_metric(self) -> object | None:
        if not self.metric:
            return None
        metric = build_metric(self.metric)
        if metric == "judge" and not self.judge_rubric:
            raise TaskError("--metric judge needs --judge-rubric FILE (what a good output is)")
        return metric


@dataclass
class ScoringSpec:
    max_tokens: int = 256
    second_round: bool | None = None  # None: on for chat scorers where the task has one
    second_round_max_tokens: int = 100
    chat: bool = True
    judge_max_tokens: int = 256  # metric "judge": room for the judge's reasoning before its score line


@dataclass
class RunSpec:
    tasks: TaskSpec = field(default_factory=TaskSpec)
    config: GPOConfig = field(default_factory=GPOConfig)
    optimizer: ModelSpec = field(default_factory=ModelSpec)
    scorer: ModelSpec = field(default_factory=ModelSpec)
    scoring: ScoringSpec = field(default_factory=ScoringSpec)
    embedder: str = "all-MiniLM-L6-v2"  # or "openai:<model>" (uses the optimizer's base URL)
    cache: str | None = None  # response cache file; default: <run_dir>/cache.sqlite
    concurrent_tasks: int = 4
    method: str = "gpo"  # gpo, or a baseline: ape, apo, opro, pe2, evoprompt-ga, evoprompt-de, empty, cot
    method_options: dict = field(default_factory=dict)  # the method's own knobs, e.g. {"beam": 4}
    judge: ModelSpec | None = None  # metric "judge": the grading model (None: the optimizer's)

    def __post_init__(self) -> None:
        self.method = method_class(self.method).name  # unknown names and options fail here, not mid-run
        method_class(self.method).parse_options(self.method_options)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RunSpec":
        """A spec as ``to_dict`` wrote it into run.json. A run written before racing existed
        has no ``selection``: it resumes with ``full``, the rule it started with."""
        config = {"selection": "full", **d.get("config", {})}
        return cls(
            tasks=TaskSpec(**d.get("tasks", {})),
            config=GPOConfig.from_dict(config),
            optimizer=ModelSpec(**d.get("optimizer", {})),
            scorer=ModelSpec(**d.get("scorer", {})),
            scoring=ScoringSpec(**d.get("scoring", {})),
            embedder=d.get("embedder", "all-MiniLM-L6-v2"),
            cache=d.get("cache"),
            concurrent_tasks=d.get("concurrent_tasks", 4),
            method=d.get("method", "gpo"),
            method_options=d.get("method_options") or {},
            judge=ModelSpec(**d["judge"]) if d.get("judge") else None,
        )

    @property
    def judge_model(self) -> ModelSpec:
        return self.judge or self.optimizer


@dataclass
class Runtime:
    """The live objects a run needs, built once from a RunSpec."""

    optimizer: LLM
    scorer: LLM
    evaluator: Evaluator
    embedder: Embedder | None
    cache: ResponseCache
    judge: LLM | None = None  # metric "judge" only
    meter: Meter = field(default_factory=Meter)  # the run budgets, held on every backend call

    def roles(self) -> dict[str, LLM]:
        """Every model role of the run, by name."""
        return {"optimizer": self.optimizer, "scorer": self.scorer, **({"judge": self.judge} if self.judge else {})}

    async def aclose(self) -> None:
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
    optimizer = spec.optimizer.build(cache)
    scorer = spec.scorer.build(cache)
    cfg = spec.config
    judge = spec.judge_model.build(cache) if spec.tasks.metric == "judge" else None
    evaluator = build_evaluator(spec, scorer, judge)
    embedder: Embedder | None = None
    if need_embedder and method_class(spec.method).needs_embedder(cfg):
        if spec.embedder.startswith("openai:"):
            embedder = OpenAIEmbedder(spec.embedder.split(":", 1)[1], base_url=spec.optimizer.base_url,
                                      api_key=os.environ.get(spec.optimizer.api_key_env or "") or None)
        else:
            embedder = SentenceTransformerEmbedder(None if spec.embedder == "all-MiniLM-L6-v2" else spec.embedder)
    b = spec.config.budget
    meter = Meter(b.max_scorer_calls, b.max_optimizer_calls, b.max_tokens, b.max_cost)
    rt = Runtime(optimizer, scorer, evaluator, embedder, cache, judge, meter)
    for role, llm in rt.roles().items():
        llm.meter, llm.role = meter, role
    return rt


def build_optimizer(spec: RunSpec, rt: Runtime | None = None, hooks=None, budget=None) -> PromptSearch:
    """The spec's method on the runtime's models (without a runtime: for planning only)."""
    cls = method_class(spec.method)
    if rt is None:
        return cls(spec.config, None, None, options=spec.method_options)  # type: ignore[arg-type]
    return cls(spec.config, rt.optimizer, rt.evaluator, rt.embedder, hooks, budget, spec.method_options)


def usage_summary(rt: Runtime) -> dict:
    """Usage per role, and per endpoint or replica where a role has several; for a judge,
    how many of its replies had no score."""
    out = {}
    for role, llm in rt.roles().items():
        out[role] = llm.usage.as_dict() | {"cost": llm.cost}
        if llm.usage_by_member():
            out[role]["members"] = llm.usage_by_member()
    if rt.judge is not None and rt.evaluator.judge is not None:
        out["judge"]["unparsed"] = sum(rt.evaluator.judge.unparsed.values())
    return out


async def optimize_async(
    spec: RunSpec, run_dir: str | Path, listeners: Iterable[Callable[[dict], None]] = (), resume: bool = False
) -> list[TaskResult]:
    tasks = spec.tasks.load()
    store = RunStore(run_dir)
    store.listeners.extend(listeners)
    if not resume:
        store.write_spec(spec.to_dict())
    rt = build_runtime(spec, run_dir)
    if resume:
        rt.meter.restore(store.load_meter())  # budgets count what earlier processes of the run spent
    rt.meter.on_change = store.save_meter
    optimizer = build_optimizer(spec, rt, store, rt.meter.exhausted)
    store.event("run_start", tasks=[t.id for t in tasks], resume=resume, method=spec.method)
    limit = asyncio.Semaphore(max(1, spec.concurrent_tasks))

    async def one(task: Task) -> TaskResult:
        async with limit:
            store.event("task_start", task=task.id)
            result = await optimizer.optimize(task)
            store.event("usage", **usage_summary(rt))
            return result

    try:
        planned = plan(spec, tasks)
        store.event("plan", scorer_calls=planned["scorer_calls"], optimizer_samples=planned["optimizer_samples"],
                    selection=spec.config.selection, resume=resume,
                    **await estimate_time(spec, planned, rt.scorer, rt.optimizer, tasks[0]))
        results = list(await asyncio.gather(*(one(t) for t in tasks)))
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


def optimize(spec: RunSpec, run_dir: str | Path, listeners=()) -> list[TaskResult]:
    return asyncio.run(optimize_async(spec, run_dir, listeners))


def resume(run_dir: str | Path, listeners=()) -> list[TaskResult]:
    spec = RunSpec.from_dict(read_spec(run_dir))
    return asyncio.run(optimize_async(spec, run_dir, listeners, resume=True))


async def evaluate_async(
    spec: RunSpec, prompts: list[str | tuple[str | None, str]], split: str = "test",
    out_dir: str | Path | None = None,
) -> list[tuple[Task, Evaluation]]:
    """Score prompts on the spec's tasks; write per-example records to out_dir.

    A plain prompt is scored on every task; a ``(task, prompt)`` pair only on tasks
    whose name or dataset is ``task`` (``None``: every task), as in prompt files."""
    jobs = [(None, p) if isinstance(p, str) else p for p in prompts]
    tasks = spec.tasks.load()
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


def plan(spec: RunSpec, tasks: list[Task] | None = None) -> dict:
    """Planned scorer and optimizer calls and an upper estimate of tokens (and cost) for a run."""
    cfg = spec.config
    method = build_optimizer(spec)
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
        if judge_calls:
            totals["judge_calls"] = totals.get("judge_calls", 0) + judge_calls
        avg_in = sum(len(e.input) for e in task.split("eval")) / max(n_eval, 1) / 4 + 40  # ~4 chars a token
        totals["scorer_tokens"][0] += int(scorer_calls * avg_in)
        totals["scorer_tokens"][1] += scorer_calls * spec.scoring.max_tokens
        totals["optimizer_tokens"][0] += opt_calls * int(600 + cfg.format_data_num * avg_in)
        totals["optimizer_tokens"][1] += steps * per_step_samples * 100
        totals["scorer_calls"] += scorer_calls
        totals["optimizer_calls"] += opt_calls
        totals["optimizer_samples"] += steps * per_step_samples
        per_task.append({"task": task.id, "steps": steps, "scorer_calls": scorer_calls, "optimizer_calls": opt_calls})
    cost = sum(
        (tok[0] * (role.price_prompt or 0) + tok[1] * (role.price_completion or 0)) / 1e6
        for role, tok in ((spec.scorer, totals["scorer_tokens"]), (spec.optimizer, totals["optimizer_tokens"]))
    )
    note = "upper estimate: cache hits, early stops and duplicate candidates make real runs cheaper"
    if cfg.selection == "race":
        note += "; with selection=race it is an upper bound: candidates significantly worse than a step's leader stop early"
    return {"method": spec.method, "tasks": per_task, **totals, "estimated_cost_usd": round(cost, 4), "note": note}


LONG_RUN_S = 3600
PROBE_TOKENS = 32


async def estimate_time(spec: RunSpec, planned: dict, scorer: LLM, optimizer: LLM, task: Task) -> dict:
    """Wall time of a plan on this machine. Models that run in process are timed now on a
    few requests (outside the cache and the usage counts); an endpoint's speed is known
    only once the run is going (the progress view's ETA uses it)."""
    out: dict = {"estimated_wall_s": None}
    seconds, timed = 0.0, []
    if scorer.in_process:
        evaluator = build_evaluator(spec, scorer)
        n = min(2, len(task.split("eval")))
        requests = evaluator.first_requests(task, build_optimizer(spec).initial_prompt(task), "eval", range(n))
        per_request = sum([await scorer.time_request(r) for r in requests]) / max(1, n)
        seconds += per_request * planned["scorer_calls"]
        timed.append(f"scorer {per_request:.2f} s a request")
    if optimizer.in_process:
        probe = Request.chat("Write one short instruction for a language model.", temperature=0.0,
                             max_tokens=PROBE_TOKENS)
        per_token = await optimizer.time_request(probe) / PROBE_TOKENS
        seconds += per_token * planned["optimizer_tokens"][1]
        timed.append(f"optimizer {1 / per_token:.0f} tokens/s")
    if not timed:
        out["timing"] = "endpoints: timed once the run is going (see the progress view's ETA)"
        return out
    out["estimated_wall_s"] = round(seconds)
    out["timing"] = ", ".join(timed) + (" (timed on this machine; endpoints not included)"
                                        if not (scorer.in_process and optimizer.in_process) else " (timed on this machine)")
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


async def plan_with_time(spec: RunSpec) -> dict:
    """``plan`` plus the wall-time estimate (the dry run's answer)."""
    tasks = spec.tasks.load()
    planned = plan(spec, tasks)
    scorer, optimizer = spec.scorer.build(None), spec.optimizer.build(None)
    try:
        return planned | await estimate_time(spec, planned, scorer, optimizer, tasks[0])
    finally:
        await scorer.aclose()
        await optimizer.aclose()
