"""From a RunSpec (what a run is, as data) to the live objects that run it: the model roles,
the tasks (with a user's metric, template and program), the Evaluator, the embedder, the meter,
and the method's search. Everything a spec names is built here and nowhere else."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from gpo.config import GPOConfig
from gpo.engine.search import PromptSearch
from gpo.llm import LLM, Pricing, ResponseCache, build_llm
from gpo.llm.embed import Embedder, OpenAIEmbedder, SentenceTransformerEmbedder
from gpo.llm.meter import Meter
from gpo.llm.resolve import resolve_model
from gpo.methods import method_class
from gpo.scoring.evaluate import Evaluator
from gpo.scoring.judge import Judge
from gpo.scoring.metrics import build_metric, needs_target
from gpo.scoring.objective import Objective
from gpo.scoring.render import Position, PromptFormat
from gpo.run.spec import ModelSpec, RunSpec, TaskSpec
from gpo.run.store import CACHE_FILE
from gpo.tasks import Task, load_gpo_task, load_hf_task, load_user_task, resolve_tasks, synthetic_task
from gpo.tasks.program import Program, load_program
from gpo.tasks.task import TaskError
from gpo.tasks.template import Template


def build_model(role: ModelSpec, cache: ResponseCache | None) -> LLM:
    """One model role of a spec, built (the API key read from the variable it names)."""
    key = os.environ.get(role.api_key_env) if role.api_key_env else None
    pricing = None
    if role.price_prompt is not None or role.price_completion is not None:
        pricing = Pricing(role.price_prompt or 0.0, role.price_completion or 0.0, role.price_cached_prompt)
    return build_llm(role.model, base_url=role.base_url, api_key=key, cache=cache,
                     concurrency=role.concurrency, pricing=pricing, parallel=role.parallel or 1,
                     prefix_cache=role.prefix_cache,
                     gpus=role.gpus or (), replicas=role.replicas or 0, ray_address=role.ray_address,
                     replica_cpus=role.replica_cpus or 1.0)


def user_template(spec: TaskSpec) -> Template | None:
    """A user task's rendering (None: the default one)."""
    if spec.template is None and spec.system_template is None and spec.optimize == "instruction":
        return None
    return Template(spec.template, spec.system_template, spec.optimize)


def user_program(spec: TaskSpec) -> Program | None:
    """A user's pipeline and its named prompts (None: a single prompt)."""
    return load_program(spec.program, spec.program_prompts) if spec.program else None


def user_metric(spec: TaskSpec) -> object | None:
    """A user task's metric (None: the answer kind's)."""
    if not spec.metric:
        return None
    metric = build_metric(spec.metric)
    if metric == "judge" and not spec.judge_rubric:
        raise TaskError("--metric judge needs --judge-rubric FILE (what a good output is)")
    return metric


def load_tasks(spec: TaskSpec) -> list[Task]:
    """The tasks a spec names, loaded (or generated), each split capped as it asks."""
    if spec.source != "user" and (spec.template or spec.system_template or spec.metric or spec.optimize != "instruction"):
        raise TaskError("templates, --optimize and --metric are for your own data (--dataset user); "
                        "the paper's tasks keep their own rendering and metrics")
    if spec.source == "synthetic":
        tasks = [synthetic_task(t, seed=spec.seed, sizes=spec.sizes) for t in spec.tasks]
    elif spec.source == "gpo":
        if not spec.dataset:
            raise TaskError("source 'gpo' needs a dataset (bbh, mmlu, gsm8k, webnlg, wsc)")
        if not spec.data_dir and spec.dataset != "instruction_induction":  # that one has a shipped sample
            raise TaskError("source 'gpo' needs --data-dir (the folder holding bbh/, mmlu/, ...)")
        tasks = [load_gpo_task(spec.data_dir, spec.dataset, t) for t in resolve_tasks(spec.dataset, spec.tasks)]
    elif spec.source == "user":
        if not spec.files:
            raise TaskError("source 'user' needs files (one file, or split -> file)")
        name = spec.tasks[0] if spec.tasks and spec.tasks != ["all"] else "user"
        metric, template = user_metric(spec), user_template(spec)
        tasks = [load_user_task(name, spec.files, input_col=spec.input_col, target_col=spec.target_col,
                                kind=spec.kind, seed=spec.seed, metric=metric, template=template,
                                target_optional=metric is not None and not needs_target(metric))]
        if template is not None and template.optimize == "system":
            tasks[0].initial_instruction = spec.system_template
        tasks[0].program = user_program(spec)
    elif spec.source == "hf":
        if not spec.hf_name:
            raise TaskError("source 'hf' needs hf_name (--hf-name: a dataset folder saved with datasets, or a hub name)")
        name = spec.tasks[0] if spec.tasks and spec.tasks != ["all"] else Path(spec.hf_name).name
        tasks = [load_hf_task(name, spec.hf_name, input_col=spec.input_col, target_col=spec.target_col,
                              split_map=spec.hf_splits, kind=spec.kind, seed=spec.seed)]
    else:
        raise TaskError(f"unknown task source {spec.source!r}; use synthetic, gpo, user or hf")
    if spec.max_examples:
        for t in tasks:
            for split, cap in spec.max_examples.items():
                if len(t.splits.get(split, ())) > cap:
                    t.left_out[split] = len(t.splits[split]) - cap
                    t.splits[split] = t.splits[split][:cap]
    return tasks


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
                     spec.scoring.second_round_max_tokens, spec.config.extraction, grader,
                     Objective(spec.config.objective))


def build_runtime(spec: RunSpec, run_dir: str | Path | None = None, need_embedder: bool = True) -> Runtime:
    """The run's models, evaluator and meter. ``need_embedder=False`` for commands that only
    score (``gpo evaluate``): no embedding model is loaded whatever the method would need."""
    cache_path = spec.cache or (Path(run_dir) / CACHE_FILE if run_dir else Path(".gpo-cache.sqlite"))
    cache = ResponseCache(cache_path)
    optimizer_llm = build_model(spec.optimizer, cache)
    scorer_llm = build_model(spec.scorer, cache)
    cfg = spec.config
    judge_llm = build_model(spec.judge_model, cache) if spec.tasks.metric == "judge" else None
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


def run_config(spec: RunSpec) -> GPOConfig:
    """The spec's options with what it leaves to the models decided: ``optimizer_size`` small for a
    model known to be small (``ModelRef.known_small``), and ``constrained_replies`` where the optimizer
    is measured to gain from them with the large meta-prompt (``ModelRef.constrains_well``)."""
    cfg = spec.config
    if cfg.constrained_replies is not None and cfg.optimizer_size is not None:
        return cfg
    ref = resolve_model(spec.optimizer.model, spec.optimizer.base_url)
    size = cfg.optimizer_size or ("small" if ref.known_small else "large")
    shaped = cfg.constrained_replies if cfg.constrained_replies is not None else (
        ref.constrains_well and size == "large")
    return cfg.replace(optimizer_size=size, constrained_replies=shaped)


def build_search(spec: RunSpec, rt: Runtime, hooks=None, budget=None) -> PromptSearch:
    """The spec's method (the prompt optimizer) on the runtime's models."""
    cls = method_class(spec.method)
    return cls(run_config(spec), rt.optimizer_llm, rt.evaluator, rt.embedder, hooks, budget, spec.method_options)


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
