"""`gpo show`: the final prompt exactly as the scorer received it, with {field} where each
example's own text goes. Real runs on real files, the scorer and optimizer behind scripted
local HTTP endpoints (named as such); the shown messages, filled with a test example,
must be the very messages the run sent the scorer for that example."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from fakes import ScriptedEndpoint, config
from gpo.api import ModelSpec, RunSpec, TaskSpec, load_tasks, optimize
from gpo.cli import main
from gpo.tasks.template import fill

DATA = Path(__file__).resolve().parents[1] / "data"
TICKETS = str(DATA / "tickets.csv")


def run(tmp_path, tasks: TaskSpec) -> tuple[Path, ScriptedEndpoint]:
    with ScriptedEndpoint() as scorer, ScriptedEndpoint() as opt:
        spec = RunSpec(tasks=tasks, config=config(opt_batch_size=4, num_generated_instructions_in_each_step=2),
                       scorer=ModelSpec("m", base_url=scorer.url), optimizer=ModelSpec("m", base_url=opt.url))
        optimize(spec, tmp_path / "run")
    return tmp_path / "run", scorer, spec


def show(run_dir, *args) -> str:
    result = CliRunner().invoke(main, ["show", str(run_dir), *args])
    assert result.exit_code == 0, result.output
    return result.output


def check_sent(run_dir: Path, scorer: ScriptedEndpoint, spec: RunSpec, values_of) -> list[dict]:
    """The shown messages, filled with each test example's values, were sent to the scorer."""
    shown = json.loads(show(run_dir, "--format", "messages"))
    (final,) = [json.loads(line)["final_prompt"] for line in (run_dir / "optimized_prompts.jsonl").open()]
    assert any(final in m["content"] for m in shown)  # the instruction is in place
    sent = [[{"role": m["role"], "content": m["content"]} for m in b["messages"]] for b in scorer.bodies]
    (task,) = load_tasks(spec.tasks)
    for example in task.split("test"):
        filled = [{**m, "content": fill(m["content"], values_of(example))} for m in shown]
        assert filled in sent
    return shown


def test_a_paper_task_shows_its_rendering_with_the_question_as_input(tmp_path, data_dir):
    tasks = TaskSpec(source="gpo", dataset="bbh", tasks=["navigate"], data_dir=str(data_dir),
                     max_examples={"train": 4, "eval": 4, "test": 3, "format": 3})
    run_dir, scorer, spec = run(tmp_path, tasks)
    shown = check_sent(run_dir, scorer, spec, lambda ex: {"input": ex.input})
    assert shown[-1]["role"] == "user" and "{input}" in shown[-1]["content"]
    text = show(run_dir, "--task", "navigate")
    assert "== bbh/navigate (gpo) ==" in text and "eval " in text and "test " in text


def test_a_templated_user_task_shows_its_fields_as_slots(tmp_path):
    tasks = TaskSpec(source="user", tasks=["tickets"], files=TICKETS, target_col="label", metric="contains",
                     template=(DATA / "ticket_template.txt").read_text(), max_examples={"test": 4})
    run_dir, scorer, spec = run(tmp_path, tasks)
    shown = check_sent(run_dir, scorer, spec, lambda ex: dict(ex.fields))
    assert [m["role"] for m in shown] == ["user"]
    assert shown[0]["content"].startswith("Product: {product}\nSubject: {subject}\nMessage: {body}")
    (item,) = json.loads(show(run_dir, "--format", "json"))
    assert item["task"] == "user/tickets" and item["result"]["final_prompt"] == item["prompt"]


def test_a_system_prompt_task_shows_the_optimized_system_message(tmp_path):
    tasks = TaskSpec(source="user", files=TICKETS, target_col="label", metric="contains", optimize="system",
                     template="Subject: {subject}\nMessage: {body}",
                     system_template="Sort support tickets into billing, technical, account or shipping.",
                     max_examples={"test": 4})
    run_dir, scorer, spec = run(tmp_path, tasks)
    shown = check_sent(run_dir, scorer, spec, lambda ex: dict(ex.fields))
    final = json.loads((run_dir / "optimized_prompts.jsonl").read_text())["final_prompt"]
    assert shown[0] == {"role": "system", "content": final}
    assert shown[1] == {"role": "user", "content": "Subject: {subject}\nMessage: {body}"}


def test_a_run_with_no_finished_task_or_an_unknown_task_is_one_clear_line(tmp_path):
    tasks = TaskSpec(source="synthetic", tasks=["navigate"], sizes={"train": 4, "eval": 4, "test": 4})
    run_dir, _, _ = run(tmp_path, tasks)
    result = CliRunner().invoke(main, ["show", str(run_dir), "--task", "navigat"])
    assert result.exit_code == 2 and "did you mean" in result.output and "navigate" in result.output
    (run_dir / "optimized_prompts.jsonl").unlink()
    (run_dir / "events.jsonl").write_text("")
    result = CliRunner().invoke(main, ["show", str(run_dir)])
    assert result.exit_code == 2 and "no task has finished yet" in result.output
