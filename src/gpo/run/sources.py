"""A RunSpec from what a user gives (a preset, a config file, flags), every source checked here.

``from_sources(preset, config_file, overrides)`` builds one as the command line does, so Python
users get presets and config files too: the preset's options, then the config file's (YAML or
TOML; a top-level ``gpo:`` section is allowed), then the overrides. Overrides and file keys are
flat option names, as the flags spell them: ``{"dataset": "bbh", "task": ["navigate"],
"scorer_model": "...", "num_search_epochs": 3}``. With nothing given (no task, no option), the
run is the quickstart. Bad values fail here, in one line naming the option (``ConfigError``,
``TaskError``, or ``LLMError`` from the model checks); the user's metric, template and program
are loaded once here (``gpo.run.build`` keeps them).
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any, Mapping

from gpo.config import DEFAULT_SIZE, PRESETS, QUICKSTART, QUICKSTART_BUDGET, RENAMED, SIZED_PRESETS, SIZES, GPOConfig
from gpo.engine.options import option_names
from gpo.errors import ConfigError, suggest
from gpo.llm import preflight
from gpo.methods import method_class
from gpo.names import DEFAULT_MAX_TOKENS, ROLES, SCALED_ROLES
from gpo.run.build import user_metric, user_program, user_template
from gpo.run.spec import ModelSpec, RunSpec, ScoringSpec, TaskSpec
from gpo.tasks import induction
from gpo.tasks.program import read_prompts
from gpo.tasks.template import read_template

DEFAULT_SYNTHETIC = "navigate"
SMALL_SIZES = {"train": 8, "eval": 10, "test": 20, "format": 5, "few_shot": 5}  # `--dataset synthetic` with no task
BUDGET_FIELDS = ("max_scorer_calls", "max_optimizer_calls", "max_tokens", "max_cost", "scorer_calls_per_task")
# scale options (flags of `gpo optimize` and `gpo resume`): per in-process role, and shared by them
ROLE_SCALE, SHARED_SCALE = ("parallel", "replicas", "prefix_cache"), ("ray_address", "replica_cpus", "gpus")
SCALE_KEYS = (*(f"{role}_{key}" for key in ROLE_SCALE for role in SCALED_ROLES), *SHARED_SCALE)
USER_TASK_KEYS = ("template", "system_template", "optimize_target", "metric", "judge_rubric", "program",
                  "program_prompts")
RUN_KEYS = {"dataset", "task", "tasks", "data_dir", "scorer_model", "optimizer_model", "scorer_base_url",
            "optimizer_base_url", "seed", "run_dir", "method", "method_options", "demos", *SCALE_KEYS}
ROLE_KEYS = {f"{role}_{key}" for role in ROLES
             for key in ("model", "base_url", "api_key_env", "concurrency", "price", "parallel", "replicas",
                         "prefix_cache")}
# the run settings a config file may hold beside GPO's options (the flags' names)
SPEC_KEYS = RUN_KEYS | ROLE_KEYS | {
    "preset", "data_files", "hf_name", "hf_split", "input_col", "target_col", "answer_kind", "max_examples", "scorer_max_tokens",
    "second_round", "base_scorer", "judge_max_tokens", "concurrent_tasks", "method_option", "size",
    *USER_TASK_KEYS, *BUDGET_FIELDS}
# keys that leave a run the quickstart: where and how it runs, not what it optimizes
NOT_A_CHOICE = {"run_dir", "progress", "preset", "dry_run", "concurrent_tasks", "method", "config_file", "seed",
                "patience", "size", "probe", *SCALE_KEYS, *BUDGET_FIELDS}




def read_config_file(path: str | Path) -> dict:
    """A YAML or TOML file of options (a top-level ``gpo:`` section is allowed)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"cannot read config file {path}: {err.strerror}") from None
    try:
        if p.suffix.lower() == ".toml":
            import tomllib

            data = tomllib.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text) or {}
    except Exception as err:  # noqa: BLE001 - any parse error becomes one clear line
        raise ConfigError(f"cannot parse config file {path}: {str(err).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: expected a mapping of option names to values")
    section = data.get("gpo", data)
    if not isinstance(section, dict):
        raise ConfigError(f"config file {path}: expected a mapping of option names to values")
    return dict(section)


def split_list(values) -> list[str]:
    """``["a,b", "c"]`` (or one string) -> ``["a", "b", "c"]``."""
    values = [values] if isinstance(values, str) else values or ()
    return [x.strip() for v in values for x in str(v).split(",") if x.strip()]


def parse_gpus(value) -> list[int] | None:
    """``0,1`` (or a list) -> [0, 1]."""
    if value in (None, "", ()):
        return None
    items = value if isinstance(value, (list, tuple)) else str(value).split(",")
    try:
        gpus = [int(str(g).strip()) for g in items]
    except ValueError:
        raise ConfigError(f"--gpus expects GPU numbers like 0,1, got {value!r}") from None
    if any(g < 0 for g in gpus) or len(set(gpus)) != len(gpus):
        raise ConfigError(f"--gpus expects distinct GPU numbers like 0,1, got {value!r}")
    return gpus


def place(spec: RunSpec, scale: Mapping[str, Any]) -> None:
    """Apply scale options given again (``gpo resume --scorer-replicas 2``, other servers):
    they change where answers come from, not what is asked; None leaves a setting as it was."""
    for name in SCALED_ROLES:
        role = getattr(spec, name)
        given = {**{k: scale.get(f"{name}_{k}") for k in (*ROLE_SCALE, "base_url")},
                 **{k: scale.get(k) for k in SHARED_SCALE}}
        given["gpus"] = parse_gpus(given["gpus"])
        for key, value in given.items():
            if value is not None:
                setattr(role, key, value)


def _pairs(items, flag: str, number: bool = False) -> dict:
    """``["a=1", "b=2"]`` -> ``{"a": "1", "b": "2"}`` (``number``: values are counts)."""
    out = {}
    for item in items or ():
        key, eq, value = str(item).partition("=")
        if not eq or not key or (number and not value.isdigit()):
            raise ConfigError(f"{flag} expects {'SPLIT=N' if number else 'KEY=VALUE'}, got {item!r}")
        out[key] = int(value) if number else value
    return out


def _prices(name: str, value) -> tuple[float | None, float | None, float | None]:
    """``IN,OUT`` or ``IN,OUT,CACHED_IN`` (USD per million tokens; CACHED_IN: a prompt token the
    endpoint served from its prompt cache)."""
    if not value:
        return None, None, None
    try:
        prices = tuple(float(x) for x in str(value).split(","))
    except ValueError:
        prices = ()
    if len(prices) not in (2, 3) or any(p < 0 for p in prices):
        raise ConfigError(f"--{name}-price expects IN,OUT or IN,OUT,CACHED_IN (USD per million tokens), got {value!r}")
    return (*prices, None) if len(prices) == 2 else prices


def _model(o: Mapping[str, Any], name: str) -> ModelSpec:
    base_url = o.get(f"{name}_base_url")
    prices = _prices(name, o.get(f"{name}_price"))
    return ModelSpec(
        model=o.get(f"{name}_model") or "embedded", base_url=base_url,
        api_key_env=o.get(f"{name}_api_key_env") or ("OPENAI_API_KEY" if base_url else None),
        concurrency=o.get(f"{name}_concurrency"), price_prompt=prices[0], price_completion=prices[1],
        price_cached_prompt=prices[2],
        parallel=o.get(f"{name}_parallel"), prefix_cache=o.get(f"{name}_prefix_cache"),
        replicas=o.get(f"{name}_replicas"), ray_address=o.get("ray_address"),
        replica_cpus=o.get("replica_cpus"), gpus=parse_gpus(o.get("gpus")),
    )


def _user_task_fields(o: Mapping[str, Any]) -> dict:
    """A user task's templates and rubric read from their files, checked now."""
    fields = dict(template=read_template(o.get("template")),
                  system_template=read_template(o.get("system_template"), "--system-template"),
                  optimize=o.get("optimize_target") or "instruction", metric=o.get("metric"),
                  judge_rubric=read_template(o.get("judge_rubric"), "--judge-rubric"))
    if bool(o.get("program")) != bool(o.get("program_prompts")):
        raise ConfigError("--program MODULE:FUNCTION and --prompts FILE go together (the pipeline, and the named "
                          "prompts it reads)")
    if o.get("program"):
        if fields["template"] or fields["system_template"] or fields["optimize"] != "instruction":
            raise ConfigError("--program: the program renders its own prompts; --template, --system-template and "
                              "--optimize are for a single prompt")
        fields.update(program=str(o["program"]), program_prompts=read_prompts(o["program_prompts"]))
    spec = TaskSpec(source="user", **fields)
    user_metric(spec), user_template(spec), user_program(spec)  # a bad metric, template or program fails now
    return fields


def _task_spec(o: Mapping[str, Any], dataset: str, small: bool, seed: int) -> TaskSpec:
    tasks = split_list(o.get("tasks") or o.get("task"))
    if dataset != "user" and any(o.get(k) for k in USER_TASK_KEYS):
        flag = lambda k: "--" + k.replace("_", "-").replace("-target", "").replace("program-prompts", "prompts")  # noqa: E731
        used = ", ".join(flag(k) for k in USER_TASK_KEYS if o.get(k))
        raise ConfigError(f"{used}: for your own data (--dataset user); the paper's tasks keep their own rendering")
    if dataset != "user" and o.get("data_files"):
        raise ConfigError(f"--data-file is your own data (--dataset user, the default with it); --dataset {dataset} "
                          f"reads its own files")
    if dataset == "synthetic":
        spec = TaskSpec(source="synthetic", tasks=tasks or [DEFAULT_SYNTHETIC], seed=seed,
                        sizes=SMALL_SIZES if small else None)
    elif dataset == "user":
        files: dict | str = {}
        items = o.get("data_files") or ()
        for item in [items] if isinstance(items, str) else items:  # FILE, or SPLIT=FILE per split
            split, eq, path = str(item).partition("=")
            files = {**(files if isinstance(files, dict) else {}), split: path} if eq else str(item)
        if not files:
            raise ConfigError("--dataset user needs --data-file FILE (or SPLIT=FILE, repeated)")
        spec = TaskSpec(source="user", files=files, tasks=tasks or ["user"], input_col=o.get("input_col") or "input",
                        target_col=o.get("target_col") or "target", kind=o.get("answer_kind"), seed=seed,
                        **_user_task_fields(o))
    elif dataset == "hf":
        if not o.get("hf_name"):
            raise ConfigError("--dataset hf needs --hf-name (a folder saved with datasets' save_to_disk, or a hub name)")
        hf_name = str(o["hf_name"])
        if Path(hf_name).exists():
            hf_name = str(Path(hf_name).resolve())
        spec = TaskSpec(source="hf", hf_name=hf_name, hf_splits=_pairs(o.get("hf_split"), "--hf-split") or None,
                        tasks=tasks or ["all"], input_col=o.get("input_col") or "input",
                        target_col=o.get("target_col") or "target", kind=o.get("answer_kind"), seed=seed)
    else:
        data_dir = o.get("data_dir")
        if not data_dir and dataset != induction.DATASET:  # instruction induction: the package's sample
            raise ConfigError(f"--dataset {dataset} needs --data-dir (the folder holding bbh/, mmlu/, gsm8k/, ...)")
        if data_dir and not Path(data_dir).is_dir():
            raise ConfigError(f"data directory not found: {data_dir}")
        spec = TaskSpec(source="gpo", dataset=dataset, tasks=tasks or ["all"],
                        data_dir=str(Path(data_dir).resolve()) if data_dir else None)
    spec.max_examples = _pairs(o.get("max_examples"), "--max-examples", number=True) or None
    return spec


def parse_size(text: str) -> tuple[str, float | str]:
    """``--budget``: a size (light, medium, heavy, full), a time (90s, 15m, 2h) or money (2usd, $2),
    as (``"level"``, name), (``"seconds"``, s) or (``"usd"``, amount); anything else is refused."""
    t = str(text).strip().lower()
    if t in SIZES:
        return "level", t
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|hours?)", t)
    if match:
        unit = {"s": 1, "sec": 1, "m": 60, "min": 60}.get(match[2], 3600)
        return "seconds", float(match[1]) * unit
    match = re.fullmatch(r"\$?(\d+(?:\.\d+)?)\s*(usd|\$)?", t)
    if match and (t.startswith("$") or match[2]):
        return "usd", float(match[1])
    raise ConfigError(f"--budget {text!r}: give a size ({', '.join(SIZES)}), a time (e.g. 15m, 2h) or money "
                      f"(e.g. 2usd)")


def run_size(o: Mapping[str, Any], preset: str, quickstart: bool) -> str | None:
    """The run's size as given (``--budget``), or the default size where the preset takes one."""
    if o.get("size"):
        parse_size(o["size"])
        return str(o["size"]).strip().lower()
    return None if quickstart or preset not in SIZED_PRESETS else DEFAULT_SIZE


def apply_level(level: str, spec: RunSpec, chosen: set[str]) -> None:
    """A size's caps and counts on ``spec``, except where the user chose them (``chosen``: the
    names of the options given, a config file's and its budget's included): an explicit split
    cap, candidates a step or search budget wins."""
    size = SIZES[level]
    caps = {**size["max_examples"], **(spec.tasks.max_examples or {})}
    spec.tasks.max_examples = caps or None
    changes: dict[str, Any] = {}
    if size["candidates"] and "num_generated_instructions_in_each_step" not in chosen:
        changes["num_generated_instructions_in_each_step"] = size["candidates"]
    if size["search_requests"] and "scorer_calls_per_task" not in chosen:
        changes["budget"] = dataclasses.replace(spec.config.budget, scorer_calls_per_task=size["search_requests"])
    spec.config = dataclasses.replace(spec.config, **changes)


def _split_file(data: Mapping[str, Any], where: str) -> tuple[dict, dict]:
    """A config file's keys: (GPO options, run settings); anything else is refused, named."""
    options = {f.name for f in dataclasses.fields(GPOConfig)} | {"budget", *RENAMED}
    config, settings = {}, {}
    for key, value in data.items():
        name = key.replace("-", "_")
        if name in SPEC_KEYS:
            settings[name] = value
        elif name in options:
            config[name] = value
        else:
            raise ConfigError(f"{where}: unknown option {key!r}{suggest(name, options | SPEC_KEYS)}")
    return config, settings


def _config(o: Mapping[str, Any], given: Mapping[str, Any], file_config: Mapping[str, Any], preset: str,
            quickstart: bool, where: str) -> GPOConfig:
    """The preset (with the quickstart's settings on top when it applies), the file's
    options, the given ones; budgets from a ``budget`` mapping or as flat keys."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}{suggest(preset, PRESETS)}; `gpo presets` lists them")
    names = {f.name for f in dataclasses.fields(GPOConfig)}
    probe = {"probe": True} if preset in SIZED_PRESETS else {}  # gpo optimize checks headroom unless --no-probe
    merged = {**PRESETS[preset], **probe, **(PRESETS["quickstart"] if quickstart else {}), **file_config,
              **{k: v for k, v in given.items() if k in names}}
    merged["budget"] = {**(merged.get("budget") or {}), **{k: o[k] for k in BUDGET_FIELDS if o.get(k) is not None}}
    return GPOConfig.from_dict(merged, where=where)


# --optimize values that search demonstrations, and the methods that do (the first is the default)
DEMO_TARGETS = {"demos": ("demos", "bootstrap"), "instruction+demos": ("gpo+demos",)}


def _demo_method(o: Mapping[str, Any]) -> tuple[str, dict]:
    """The method and its options for ``--optimize demos|instruction+demos`` and ``--demos K``."""
    target, method = o.get("optimize_target"), o.get("method") or None
    options = {} if o.get("demos") is None else {"k": o["demos"]}
    if target in DEMO_TARGETS:
        allowed = DEMO_TARGETS[target]
        if method is not None and method_class(method).name not in allowed:
            raise ConfigError(f"--optimize {target} is searched by --method {' or '.join(allowed)}, not "
                              f"{method!r}; leave --method out, or drop --optimize {target}")
        method = method or allowed[0]
    method = method or "gpo"
    if options and "k" not in option_names(method_class(method).Options):
        raise ConfigError(f"--demos is for the demonstration searches (--optimize demos or instruction+demos); "
                          f"method {method!r} writes instructions only")
    return method, options


def check_model(model: ModelSpec, role: str = "model") -> None:
    """Cheap checks before a run: the GGUF file, the API key's variable, GPU support, Ray."""
    preflight(model.model, base_url=model.base_url, gpus=model.gpus or (), replicas=model.replicas or 0,
              api_key_env=model.api_key_env, role=role)


def check_method(spec: RunSpec) -> RunSpec:
    """The spec's method named as the registry names it, its options parsed: an unknown name
    or option fails here, in one line, not mid-run."""
    spec.method = method_class(spec.method).name
    method_class(spec.method).parse_options(spec.method_options)
    return spec


def unpriced_cap(max_cost: float | None, models: Mapping[str, "ModelSpec | None"]) -> bool:
    """Whether a cost cap is set and no model has a price, so every cost counts as $0."""
    return max_cost is not None and not any(
        m is not None and (m.price_prompt or m.price_completion) for m in models.values())


def _check_cost_cap(max_cost: float | None, models: Mapping[str, "ModelSpec | None"]) -> None:
    """A cost cap with no price for a model behind an endpoint could never stop the run: refused.
    (With in-process models only, it is free: the plan says the cap is ignored.)"""
    served = [role for role, m in models.items() if m is not None and m.base_url]
    if unpriced_cap(max_cost, models) and served:
        raise ConfigError(f"--max-cost {max_cost:g}: no price is set for the {' or '.join(served)} "
                          f"(--{served[0]}-price IN,OUT in USD per million tokens), so every call counts as $0 and "
                          f"the cap could never stop the run")


def from_sources(preset: str | None = None, config_file: str | Path | None = None,
                 overrides: Mapping[str, Any] | None = None, check_models: bool = True) -> RunSpec:
    """See the module docstring: preset, then config file, then overrides."""
    given = {k.replace("-", "_"): v for k, v in (overrides or {}).items() if v not in (None, (), [])}
    file_config, file_settings = _split_file(read_config_file(config_file), str(config_file)) if config_file else ({}, {})
    o = {**file_settings, **given}  # one flat view of the run settings: the overrides win
    quickstart = not config_file and not any(v is not False for k, v in given.items() if k not in NOT_A_CHOICE)
    if quickstart:  # nothing chosen about what to optimize: the quickstart's task and search, small
        o = {**QUICKSTART, **QUICKSTART_BUDGET, **o}
    method, demo_options = _demo_method(o)
    if o.get("optimize_target") in DEMO_TARGETS:  # a method's choice, not a template's slot
        o["optimize_target"] = None
    dataset = o.get("dataset") or ("user" if o.get("data_files") else "synthetic")  # a data file is the user's data
    small = dataset == "synthetic" and not (o.get("tasks") or o.get("task"))
    preset = preset or file_settings.get("preset") or "gpo"
    config = _config(o, given, file_config, preset, quickstart, str(config_file or "options"))
    scoring = ScoringSpec(max_tokens=o.get("scorer_max_tokens") or (64 if small else DEFAULT_MAX_TOKENS),
                          second_round=o.get("second_round"), chat=not o.get("base_scorer"),
                          judge_max_tokens=o.get("judge_max_tokens") or DEFAULT_MAX_TOKENS)
    optimizer, scorer = _model(o, "optimizer"), _model(o, "scorer")
    judge = _model(o, "judge") if o.get("judge_model") or o.get("judge_base_url") else None
    if check_models:
        for name, model in (("optimizer", optimizer), ("scorer", scorer), ("judge", judge)):
            if model is not None and (name != "judge" or o.get("metric") == "judge"):
                check_model(model, name)
    _check_cost_cap(config.budget.max_cost, {"optimizer": optimizer, "scorer": scorer, "judge": judge})
    method_options = {**dict(o.get("method_options") or {}), **demo_options,
                      **_pairs(given.get("method_option"), "--method-option")}
    spec = RunSpec(tasks=_task_spec(o, dataset, small, config.seed), config=config, optimizer=optimizer,
                   scorer=scorer, scoring=scoring, judge=judge, concurrent_tasks=o.get("concurrent_tasks") or 4,
                   method=method, method_options=method_options,
                   size=run_size(o, preset, quickstart))
    if spec.size in SIZES:  # a time or money budget is fitted once the models can be timed (gpo.run.sizing)
        apply_level(spec.size, spec, {*file_config, *o, *(file_config.get("budget") or {})})
    return check_method(spec)
