"""A run's final prompts as the scorer receives them, ready to paste into an application
(``gpo show``): the system and user messages (or the raw prompt of a completion scorer)
with the instruction in place, its demonstrations, and ``{field}`` where each example's
own text goes, with the scores the run measured."""

from __future__ import annotations

import json
from pathlib import Path

from gpo.engine.events import Event, of, task_result
from gpo.engine.state import TaskResult
from gpo.errors import RunDirError, TaskError, suggest
from gpo.run.store import RESULTS_FILE, read_events, read_spec
from gpo.run.build import build_prompt_format, load_tasks
from gpo.scoring.render import render
from gpo.run.spec import RunSpec
from gpo.tasks import Example, Task

def results_of(run_dir: str | Path) -> list[TaskResult]:
    """The run's task results: its optimized_prompts.jsonl, or, for a run still going or
    stopped, the tasks it finished (their ``task_done`` events)."""
    path = Path(run_dir) / RESULTS_FILE
    if path.is_file():
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        results = [TaskResult.from_dict(r) for r in rows]
    else:
        results = [task_result(r) for r in of(read_events(run_dir), Event.TASK_DONE)]
    if not results:
        raise RunDirError(f"{run_dir}: no task has finished yet, so there is no final prompt to show")
    return results


def placeholder(task: Task, slot: str = "{%s}") -> Example:
    """An example whose every field shows where the application's own text goes (``slot``:
    how a field is written; MLflow's templates take ``{{%s}}``)."""
    template = task.template
    if template is not None and template.fields:
        return Example(input=slot % "input", target="", fields=tuple((f, slot % f) for f in template.fields))
    return Example(input=slot % "input", target="")


def scorer_request(prompt: str, task: Task, spec: RunSpec, slot: str = "{%s}"):
    """The first-round request the scorer receives with ``prompt``, with slots for an example's text."""
    return render(prompt, placeholder(task, slot), build_prompt_format(spec), task.splits.get("few_shot", []),
                  task.template)


def shown(run_dir: str | Path, task: str | None = None) -> list[dict]:
    """For each task of the run (or the one named): the final prompt, the messages the scorer
    receives with it (``{"role", "content"}``; one user message holding the whole text for a
    completion scorer), and the result with its comparisons."""
    spec = RunSpec.from_dict(read_spec(run_dir))
    results = results_of(run_dir)
    if task is not None:
        names = {f"{r.dataset}/{r.task}": r for r in results} | {r.task: r for r in results}
        if task not in names:
            raise TaskError(f"{run_dir} has no finished task {task!r}{suggest(task, names)}; "
                            f"tasks: {', '.join(f'{r.dataset}/{r.task}' for r in results)}")
        results = [names[task]]
    tasks = {(t.dataset, t.name): t for t in load_tasks(spec.tasks)}
    out = []
    for r in results:
        request = scorer_request(r.final_prompt, tasks[(r.dataset, r.task)], spec)
        messages = request.message_dicts() if request.messages is not None else [{"role": "user", "content": request.prompt}]
        out.append({"task": f"{r.dataset}/{r.task}", "method": r.method, "prompt": r.final_prompt,
                    "chat": request.messages is not None, "messages": messages, "result": r})
    return out
