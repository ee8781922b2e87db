"""What a run is, as data: the models, the tasks, the scoring, the search (run.json).

Plain data: nothing here imports a model, a method or a metric. Reading a spec from a preset,
a config file and flags is ``gpo.run.sources``; checking and loading what it names (models,
methods, users' files) is ``gpo.run.sources`` and ``gpo.run.build``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

from gpo.config import GPOConfig
from gpo.names import DEFAULT_MAX_TOKENS, ROLES

# where and how fast a role's answers come, not what is asked: a rerun of a run may change them
PLACEMENT_FIELDS = ("concurrency", "parallel", "gpus", "replicas", "ray_address", "replica_cpus", "prefix_cache")


@dataclass
class ModelSpec:
    """One model role. The API key is never stored: name the environment variable that holds it."""

    model: str = "embedded"
    base_url: str | None = None
    api_key_env: str | None = None
    concurrency: int | None = None
    price_prompt: float | None = None  # USD per million prompt tokens
    price_completion: float | None = None
    price_cached_prompt: float | None = None  # USD per million prompt tokens an endpoint served from its cache
    parallel: int | None = None  # in-process llama.cpp: requests decoded together
    prefix_cache: int | None = None  # in-process llama.cpp: MiB of prompt-prefix KV states kept (0: off)
    gpus: list[int] | None = None  # in-process model on these GPUs
    replicas: int | None = None  # run the in-process model as this many Ray actors
    ray_address: str | None = None  # with replicas: "auto", "ray://host:10001", or None for a local Ray
    replica_cpus: float | None = None  # CPUs each replica reserves (and llama.cpp threads)


@dataclass
class TaskSpec:
    """Which tasks: ``synthetic`` (generated, default), ``gpo`` (the paper's data), ``user``
    files, or ``hf``: a Hugging Face dataset (``hf_name``: saved with ``save_to_disk``, or a
    hub name where the hub can be reached; ``hf_splits``: gpo split -> the dataset's split)."""

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
    hf_name: str | None = None  # hf: a dataset folder (save_to_disk) or a hub name
    hf_splits: dict[str, str] | None = None  # hf: gpo split -> dataset split (default: by name, or cut one)
    program: str | None = None  # user data: a pipeline MODULE:FUNCTION whose named prompts are optimized
    program_prompts: dict[str, str] | None = None  # its named initial prompts (read from --prompts)


@dataclass
class ScoringSpec:
    max_tokens: int = DEFAULT_MAX_TOKENS
    second_round: bool | None = None  # None: on for chat scorers where the task has one
    second_round_max_tokens: int = 100
    chat: bool = True
    judge_max_tokens: int = DEFAULT_MAX_TOKENS  # metric "judge": room for the judge's reasoning before its score line


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
    # the run's size as chosen (--budget): light, medium, heavy or full (gpo.config.SIZES), or the time
    # (15m) or money (2usd) it was fitted to (gpo.run.sizing); its caps are in tasks and config
    size: str | None = None

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
            size=d.get("size"),
        )

    def differences(self, other: dict) -> list[str]:
        """The settings (dotted, e.g. ``config.initial_instruction``) in which a spec as
        ``to_dict`` wrote it (a run directory's run.json) asks for another run than this
        one. Placement (concurrency, parallel decoding, GPUs, replicas, tasks at a time)
        changes how fast answers come, not which, and is not a difference."""
        mine, theirs = flat(self.to_dict()), flat(RunSpec.from_dict(other).to_dict())
        placement = {f"{role}.{k}" for role in ROLES for k in PLACEMENT_FIELDS}
        placement.add("concurrent_tasks")
        return sorted(k for k in mine.keys() | theirs.keys()
                      if k not in placement and mine.get(k) != theirs.get(k))

    @property
    def judge_model(self) -> ModelSpec:
        return self.judge or self.optimizer


def flat(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (lists and other values stay as they are)."""
    out: dict[str, Any] = {}
    for key, value in d.items():
        if isinstance(value, Mapping) and value:
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out
