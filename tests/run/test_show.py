"""`gpo show`: the final prompt exactly as the scorer received it, with {field} where each
example's own text goes. Real runs on real files, the scorer and optimizer behind scripted
local HTTP endpoints (named as such); the shown messages, filled with a test example,
must be the very messages the run sent the scorer for that example."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
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


def test_a_run_with_the_pareto_pool_lcb_a_holdout_and_a_length_cap_says_how_it_chose(tmp_path, data_dir):
    """Every new setting through the real command-line path's API, with scripted endpoints (named as such):
    the closing lines, `gpo show`, the report and optimized_prompts.jsonl say how the prompt was chosen and
    its length."""
    from gpo.run.report import write_report

    tasks = TaskSpec(source="gpo", dataset="bbh", tasks=["navigate"], data_dir=str(data_dir),
                     max_examples={"train": 4, "eval": 8, "test": 3, "format": 3})
    with ScriptedEndpoint() as scorer, ScriptedEndpoint() as opt:
        cfg = config(opt_batch_size=4, num_generated_instructions_in_each_step=2, pool="pareto", merge=1,
                     adopt="lcb", final_holdout=0.25, length_penalty=0.05, max_prompt_tokens=200)
        spec = RunSpec(tasks=tasks, config=cfg, scorer=ModelSpec("m", base_url=scorer.url, price_prompt=1.0),
                       optimizer=ModelSpec("m", base_url=opt.url))
        (result,) = optimize(spec, tmp_path / "run")
    assert result.chosen_on == "holdout" and result.adoption["rule"] == "lcb"
    assert result.final_tokens > 0 and result.cost_per_1000_calls == pytest.approx(result.final_tokens / 1000)
    (row,) = [json.loads(line) for line in (tmp_path / "run" / "optimized_prompts.jsonl").open()]
    assert row["final_tokens"] == result.final_tokens and row["chosen_on"] == "holdout"
    text = show(tmp_path / "run")
    assert f"the final prompt: about {result.final_tokens} tokens" in text and "per 1,000 calls" in text
    assert "held-out share of eval" in text
    html = write_report(tmp_path / "run").read_text()
    assert "lcb: the highest lower bound" in html and "chosen on a held-out 25% of eval" in html
    assert "pareto: a step updates a prompt drawn" in html and "penalty 0.05, cap 200 tokens" in html
