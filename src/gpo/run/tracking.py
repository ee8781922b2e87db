"""A run in MLflow (``--mlflow [URI]``; ``pip install 'gpo[mlflow]'``): a listener of the run's
events (``gpo.engine.events``) that keeps one MLflow run per gpo run and a nested run per
task, and registers each task's final prompt in MLflow's prompt registry.

- the spec as params (flattened; it holds the names of API-key variables, never a key);
- per step, in the task's run: the chosen and the best eval score, the step size, the task's
  scorer requests and tokens and optimizer samples and tokens so far, candidates and usable
  proposals; the step's candidates as a table;
- usage (calls, tokens, cost per role), after every step, on the gpo run;
- the run directory's ``run.json``, ``optimized_prompts.jsonl``, ``events.jsonl`` and
  ``report.html`` (where written) as artifacts when the run ends or stops;
- each task's final prompt as a new version of a named prompt (``prompt_name``, default
  ``gpo-<dataset>-<task>``): the messages the scorer receives with the instruction, template
  and demonstrations in place and MLflow's ``{{field}}`` where each example's text goes, so an
  application can ``load_prompt(...).format(**row)``; tagged with the scores, their
  intervals and p-values, the method and the run; the instruction itself is the tag
  ``gpo.prompt`` (what ``gpo evaluate --prompt prompts:/NAME/V`` scores).

Which MLflow runs belong to a run directory is kept in its ``mlflow.json``, so ``gpo resume``
continues the same runs. The default store is ``sqlite:///mlflow.db`` in the working
directory, with artifacts in ``mlartifacts/`` beside it.
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

from gpo.engine.events import Event, task_result
from gpo.engine.outcome import outcome
from gpo.engine.state import TaskResult
from gpo.errors import ConfigError
from gpo.run.store import EVENTS_FILE, REPORT_FILE, RESULTS_FILE, SPEC_FILE, read_spec
from gpo.run.build import load_tasks
from gpo.run.show import scorer_request
from gpo.run.spec import RunSpec, flat

DEFAULT_URI = "sqlite:///mlflow.db"
STATE = "mlflow.json"
EXPERIMENT = "gpo"
PROMPT_TAG = "gpo.prompt"  # the instruction a registered prompt carries, for `gpo evaluate`
PARAM_CHARS = 6000  # MLflow's limit on a param's value
ARTIFACTS = (SPEC_FILE, RESULTS_FILE, EVENTS_FILE, REPORT_FILE)


def _mlflow():
    try:
        import mlflow
    except ImportError:
        raise ConfigError("--mlflow needs MLflow: pip install 'gpo[mlflow]'") from None
    return mlflow


def absolute(uri: str) -> str:
    """A SQLite store's URI with its file's absolute path, so a resume from another folder finds it."""
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return "sqlite:///" + str(Path(uri[len("sqlite:///"):]).resolve())
    return uri


def client(tracking_uri: str):
    return _mlflow().MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def prompt_name(dataset: str, task: str) -> str:
    """The registry name of a task's prompt: letters, digits, '-', '_' and '.' only."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", f"gpo-{dataset}-{task}").strip("-")


def flat_params(d: dict) -> dict[str, str]:
    """The spec as MLflow params: dotted keys (``spec._flat``), values as text within MLflow's limit."""
    out = {}
    for name, value in flat(d).items():
        text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
        out[name] = text if len(text) <= PARAM_CHARS else text[: PARAM_CHARS - 1] + "…"
    return out


def registry_template(result: TaskResult, spec: RunSpec, task) -> str | list[dict]:
    """The final prompt as the scorer receives it, with MLflow's ``{{field}}`` variables."""
    request = scorer_request(result.final_prompt, task, spec, slot="{{%s}}")
    return request.message_dicts() if request.messages is not None else request.prompt


class MlflowTracker:
    """Call with each event of a run (``RunStore.listeners``)."""

    def __init__(self, run_dir: str | Path, tracking_uri: str | None = None, prompt_name: str | None = None):
        self.run_dir = Path(run_dir)
        self.given_name = prompt_name
        self.uri = absolute(tracking_uri or self._saved().get("tracking_uri") or DEFAULT_URI)
        self.client = client(self.uri)
        self.client.search_experiments(max_results=1)  # an unreachable store fails here, before the run
        self.prompt_name, self.run_id, self.task_runs = prompt_name, None, {}
        self.candidates: dict[tuple[str, int], list[dict]] = {}
        self.usage_steps = 0
        self._spec: RunSpec | None = None
        self._tasks: dict | None = None
        self._warned: set[str] = set()
        self._experiment_id: str | None = None
        self._open: set[str] = set()  # task runs started (or continued) by this process and not yet ended

    def _load(self) -> None:
        """Which MLflow runs this run directory already has (read when the run starts, so a
        directory that ``--overwrite`` cleared starts new ones)."""
        saved = self._saved()
        if saved.get("tracking_uri") and saved["tracking_uri"] != self.uri:
            raise ConfigError(f"{self.run_dir} is tracked in MLflow at {saved['tracking_uri']}; resume it there "
                              f"(or remove {self.run_dir / STATE} to start a new MLflow run)")
        self.prompt_name = self.given_name or saved.get("prompt_name")
        self.run_id, self.task_runs = saved.get("run_id"), saved.get("task_runs", {})

    # ---------------------------------------------------------------- state
    def _saved(self) -> dict:
        path = self.run_dir / STATE
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}

    def _save(self) -> None:
        state = {"tracking_uri": self.uri, "run_id": self.run_id, "task_runs": self.task_runs,
                 "prompt_name": self.prompt_name}
        (self.run_dir / STATE).write_text(json.dumps(state, indent=1), encoding="utf-8")

    def _experiment(self) -> str:
        """The "gpo" experiment's id, looked up (or created) once."""
        if self._experiment_id is None:
            self._experiment_id = self._find_or_create_experiment()
        return self._experiment_id

    def _find_or_create_experiment(self) -> str:
        found = self.client.get_experiment_by_name(EXPERIMENT)
        if found is not None:
            return found.experiment_id
        location = None
        parsed = urlparse(self.uri)
        if parsed.scheme == "sqlite":  # artifacts beside the database, not in whatever folder runs it
            db = Path(self.uri[len("sqlite:///"):])
            location = (db.parent / "mlartifacts").as_uri()
        return self.client.create_experiment(EXPERIMENT, artifact_location=location)

    @property
    def spec(self) -> RunSpec:
        if self._spec is None:
            self._spec = RunSpec.from_dict(read_spec(self.run_dir))
        return self._spec

    def _task(self, dataset: str, name: str):
        if self._tasks is None:
            self._tasks = {(t.dataset, t.name): t for t in load_tasks(self.spec.tasks)}
        return self._tasks[(dataset, name)]

    # ---------------------------------------------------------------- events
    def __call__(self, event: dict) -> None:
        """Log one event. A tracking call that fails is reported once per kind of event and
        the run goes on: the run directory keeps everything, and ``gpo resume`` logs on."""
        kind = event.get("event")
        handler = {Event.RUN_START: self._run_start, Event.TASK_START: self._task_start, Event.CANDIDATE: self._candidate,
                   Event.STEP: self._step, Event.TASK_DONE: self._task_done, Event.USAGE: self._usage,
                   Event.RUN_DONE: self._end, Event.RUN_STOPPED: self._end, Event.INTERRUPTED: self._end,
                   Event.FAILED: self._end}.get(kind)
        if handler is None:
            return
        try:
            handler(event)
        except ConfigError:
            raise
        except Exception as err:  # noqa: BLE001 - MLflow's errors are many; the run must not die of them
            if kind not in self._warned:
                self._warned.add(kind)
                print(f"warning: MLflow ({self.uri}) could not log a {kind} event: {err}", file=sys.stderr)

    def _run_start(self, event: dict) -> None:
        self._load()
        if self.run_id is None:
            run = self.client.create_run(self._experiment(), run_name=self.run_dir.name,
                                         tags={"gpo.run_dir": str(self.run_dir.resolve()), "gpo.method": self.spec.method})
            self.run_id = run.info.run_id
            mlflow = _mlflow()
            params = [mlflow.entities.Param(k, v) for k, v in flat_params(self.spec.to_dict()).items()]
            for i in range(0, len(params), 100):  # MLflow takes at most 100 params a batch
                self.client.log_batch(self.run_id, params=params[i:i + 100])
        else:
            self.client.update_run(self.run_id, status="RUNNING")
        self._save()

    def _task_start(self, event: dict) -> None:
        task = event["task"]
        self._open.add(task)
        if task in self.task_runs:
            self.client.update_run(self.task_runs[task], status="RUNNING")
            return
        run = self.client.create_run(self._experiment(), run_name=task,
                                     tags={"mlflow.parentRunId": self.run_id, "gpo.task": task})
        self.task_runs[task] = run.info.run_id
        self._save()

    def _candidate(self, event: dict) -> None:  # a repaired one with the reply set aside and why
        self.candidates.setdefault((event["task"], event["global_step"]), []).append({k: event.get(k) for k in (
            "text", "score", "edit_distance", "rejected", "reused", "race_examples", "first_reply", "first_rejected")})

    def _step(self, event: dict) -> None:
        run_id, g = self.task_runs.get(event["task"]), event["global_step"]
        if run_id is None:
            return
        metrics = {"chosen_eval": event["score"], "best_eval": event["best"], "candidates": event["candidates"],
                   "usable_proposals": event["usable"]}
        metrics |= {k: event[k] for k in ("scorer_requests", "scorer_tokens", "optimizer_samples", "optimizer_tokens")}
        if event.get("step_size") is not None:
            metrics["step_size"] = event["step_size"]
        self._metrics(run_id, metrics, g)
        rows = self.candidates.pop((event["task"], g), [])
        if rows:
            table = {k: [r[k] if not isinstance(r[k], (dict, list)) else json.dumps(r[k]) for r in rows] for k in rows[0]}
            try:
                self.client.log_table(run_id, table, f"candidates/step_{g:03d}.json")
            except ImportError:  # log_table needs pandas: the same rows as JSON
                self.client.log_dict(run_id, {"rows": rows}, f"candidates/step_{g:03d}.json")

    def _usage(self, event: dict) -> None:
        if self.run_id is None:
            return
        metrics = {}
        for role, u in event.items():
            if isinstance(u, dict) and "calls" in u:
                metrics[f"{role}_calls"] = u["calls"]
                metrics[f"{role}_tokens"] = u.get("prompt_tokens", 0) + u.get("completion_tokens", 0)
                metrics[f"{role}_cost_usd"] = u.get("cost", 0.0)
        self._metrics(self.run_id, metrics, self.usage_steps)
        self.usage_steps += 1

    def _task_done(self, event: dict) -> None:
        result = task_result(event)
        run_id = self.task_runs.get(event["task"])
        scores = {f"{which}_{split}": getattr(result, f"{which}_{split}")
                  for which in ("initial", "final") for split in ("eval", "test")}
        if run_id is not None:
            self._metrics(run_id, {k: v for k, v in scores.items() if v is not None} | class_metrics(result),
                          result.steps_done)
            for point in result.curve or ():  # the gain per request: best eval so far, keyed by requests spent
                self._metrics(run_id, {"best_eval_by_requests": point["best"]}, point["requests"])
            if result.headroom:  # the headroom check before the search: its omnibus p
                self._metrics(run_id, {"headroom_p": result.headroom["omnibus"]["p"]}, 0)
        if result.stopped is None:
            self._register(result, scores)
        if run_id is not None:
            self.client.set_terminated(run_id, "FINISHED" if result.stopped is None else "KILLED")
            self._open.discard(event["task"])

    def _register(self, result: TaskResult, scores: dict) -> None:
        task = self._task(result.dataset, result.task)
        name = prompt_name(result.dataset, result.task)
        if self.prompt_name:  # the given name, and the task's beside it when the run has several
            name = self.prompt_name if len(self._tasks) == 1 else f"{self.prompt_name}-{name[len('gpo-'):]}"
        tags = {PROMPT_TAG: result.final_prompt, "gpo.method": result.method, "gpo.run_id": self.run_id or "",
                "gpo.task": f"{result.dataset}/{result.task}", "gpo.adopt": result.adopt}
        tags.update({f"gpo.{k}": f"{100 * v:.1f}" for k, v in scores.items() if v is not None})
        said = outcome(result)
        tags.update({"gpo.outcome": said.summary} | {f"gpo.{k}": v for k in ("headroom", "length") if (v := getattr(said, k))})
        for split, comparison in said.gains.items():  # the final prompt against the initial one: gain, interval, p
            tags[f"gpo.{split}_gain"] = comparison.describe()
        template = registry_template(result, self.spec, task)
        version = self.client.register_prompt(name, template, commit_message=f"gpo run {self.run_dir.name}", tags=tags)
        run_id = self.task_runs.get(task.id)
        if run_id is not None:
            self.client.set_tag(run_id, "gpo.registered_prompt", f"prompts:/{version.name}/{version.version}")

    def _end(self, event: dict) -> None:
        if self.run_id is None:
            return
        for name in ARTIFACTS:
            path = self.run_dir / name
            if path.is_file():
                self.client.log_artifact(self.run_id, str(path))
        status = {Event.RUN_DONE: "FINISHED", Event.RUN_STOPPED: "FINISHED", Event.INTERRUPTED: "KILLED"}.get(
            event["event"], "FAILED")
        for task in sorted(self._open):  # tasks that ended without a result here (finished before a resume)
            self.client.set_terminated(self.task_runs[task], status)
        self._open.clear()
        self.client.set_terminated(self.run_id, status)

    def _metrics(self, run_id: str, metrics: dict, step: int) -> None:
        mlflow = _mlflow()
        stamp = int(time.time() * 1000)
        self.client.log_batch(run_id, metrics=[mlflow.entities.Metric(k, float(v), stamp, step)
                                               for k, v in metrics.items()])


def registered_instruction(uri: str, tracking_uri: str | None = None) -> str:
    """The instruction a prompt registered by gpo carries (``prompts:/NAME/VERSION``)."""
    version = client(tracking_uri or DEFAULT_URI).load_prompt(uri)
    instruction = (version.tags or {}).get(PROMPT_TAG)
    if instruction is None:
        raise ConfigError(f"{uri} was not registered by gpo (it has no '{PROMPT_TAG}' tag), so its instruction "
                          f"is unknown; pass the instruction with --prompt instead")
    return instruction


def class_metrics(result: TaskResult) -> dict[str, float]:
    """The final prompt's per-class figures on each split scored (closed-answer tasks):
    ``final_test_macro_f1`` and ``final_test_recall.LABEL`` (the label as MLflow allows a name);
    and the human instruction's score (instruction induction): ``human_test``, ``human_test_with_demos``;
    and the final prompt's length: ``final_tokens``, ``cost_per_1000_calls`` (where the scorer has a price)."""
    metrics = {k: v for k in ("final_tokens", "cost_per_1000_calls") if (v := getattr(result, k)) is not None}
    human = result.human or {}
    for name in ("alone", "with_demos"):
        if name in human:
            metrics[f"human_{human['split']}" + ("_with_demos" if name == "with_demos" else "")] = human[name]["score"]
    for split, measured in (result.constant or {}).items():
        figures = (measured or {}).get("final", {}).get("classes")
        if figures:
            metrics[f"final_{split}_macro_f1"] = figures["macro_f1"]
            for c in figures["classes"]:
                metrics[f"final_{split}_recall.{_metric_name(c['label'])}"] = c["recall"]
    return metrics


def _metric_name(label: str) -> str:
    return re.sub(r"[^\w\-. /]", "_", label)[:200] or "_"
