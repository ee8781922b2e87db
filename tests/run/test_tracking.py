"""--mlflow: a real local MLflow store (SQLite, as MLflow itself recommends) holds the run, its
nested task run, params, a metric per step, the artifacts and the registered prompt; resume
continues the same run; no API key reaches the store. The scorer and optimizer are scripted
local HTTP endpoints (named as such)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fakes import ScriptedEndpoint, config
from gpo.api import ModelSpec, RunSpec, TaskSpec, load_tasks, optimize, resume

mlflow = pytest.importorskip("mlflow", reason="optional extra gpo[mlflow]")

from gpo.run.tracking import STATE, MlflowTracker, registered_instruction  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "data"
KEY = "sk-test-0123456789-never-stored"


def tickets(scorer, opt) -> RunSpec:
    return RunSpec(
        tasks=TaskSpec(source="user", tasks=["tickets"], files=str(DATA / "tickets.csv"), target_col="label",
                       metric="contains", template=(DATA / "ticket_template.txt").read_text(),
                       max_examples={"train": 8, "eval": 6, "test": 4}),
        config=config(opt_batch_size=4, num_generated_instructions_in_each_step=2, probe=True),
        scorer=ModelSpec("m", base_url=scorer.url, api_key_env="GPO_TEST_KEY"),
        optimizer=ModelSpec("m", base_url=opt.url, api_key_env="GPO_TEST_KEY"))


def test_a_run_in_mlflow_with_its_registered_prompt(tmp_path, monkeypatch):
    monkeypatch.setenv("GPO_TEST_KEY", KEY)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_dir = tmp_path / "run"
    with ScriptedEndpoint() as scorer, ScriptedEndpoint() as opt:
        spec = tickets(scorer, opt)
        (result,) = optimize(spec, run_dir, listeners=[MlflowTracker(run_dir, uri, prompt_name="ticket-router")])
    assert KEY in scorer.auth_headers[0]  # the key was used...
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("gpo").experiment_id])
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    (child,) = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert parent.info.status == "FINISHED" and child.data.tags["gpo.task"] == "user/tickets"
    assert parent.data.params["method"] == "gpo" and parent.data.params["config.opt_batch_size"] == "4"
    assert parent.data.params["scorer.api_key_env"] == "GPO_TEST_KEY"  # the variable's name, not its value
    steps = [m.step for m in client.get_metric_history(child.info.run_id, "best_eval")]
    assert steps == list(range(result.total_steps))  # one point per step
    assert client.get_metric_history(child.info.run_id, "final_test")[0].value == pytest.approx(result.final_test)
    by_requests = client.get_metric_history(child.info.run_id, "best_eval_by_requests")  # the gain per request
    assert [(m.step, m.value) for m in by_requests] == [(p["requests"], pytest.approx(p["best"])) for p in result.curve]
    (headroom_p,) = client.get_metric_history(child.info.run_id, "headroom_p")  # the check before the search
    assert headroom_p.value == pytest.approx(result.headroom["omnibus"]["p"])
    assert len(client.get_metric_history(parent.info.run_id, "scorer_cost_usd")) > result.total_steps  # usage each step
    assert {a.path for a in client.list_artifacts(parent.info.run_id)} >= {"optimized_prompts.jsonl", "events.jsonl",
                                                                            "run.json"}
    assert any(a.path == "candidates" for a in client.list_artifacts(child.info.run_id))

    # the registered prompt: loaded through MLflow and formatted with a row, it is what the Evaluator sent
    version = client.load_prompt("prompts:/ticket-router/1")
    assert version.tags["gpo.prompt"] == result.final_prompt and "gpo.eval_gain" in version.tags
    assert version.tags["gpo.final_test"] == f"{100 * result.final_test:.1f}"
    from gpo.engine.outcome import outcome

    assert version.tags["gpo.outcome"] == outcome(result).summary  # worded once, as the closing lines say it
    assert version.tags["gpo.headroom"] == outcome(result).headroom and result.headroom is not None
    assert version.tags["gpo.length"] == outcome(result).length and f"{result.final_tokens} tokens" in outcome(result).length
    (tokens,) = client.get_metric_history(child.info.run_id, "final_tokens")  # the final prompt's length
    assert tokens.value == result.final_tokens > 0
    sent = [b["messages"] for b in scorer.bodies]
    (task,) = load_tasks(spec.tasks)
    for example in task.split("test"):
        assert version.format(**dict(example.fields)) in sent
    assert registered_instruction("prompts:/ticket-router/1", uri) == result.final_prompt

    # resume continues the same MLflow run; no key anywhere in the store or its artifacts
    state = json.loads((run_dir / STATE).read_text())
    with ScriptedEndpoint() as scorer, ScriptedEndpoint() as opt:
        resume(run_dir, listeners=[MlflowTracker(run_dir)])
    assert json.loads((run_dir / STATE).read_text())["run_id"] == state["run_id"] == parent.info.run_id
    again = client.search_runs([parent.info.experiment_id])
    assert len(again) == 2 and {r.info.status for r in again} == {"FINISHED"}  # still one run and its task
    stored = [p for p in tmp_path.rglob("*") if p.is_file() and "run" not in p.relative_to(tmp_path).parts[:1]]
    assert stored and not any(KEY.encode() in p.read_bytes() for p in stored)


def test_a_run_tracked_elsewhere_is_refused_in_one_line(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / STATE).write_text(json.dumps({"tracking_uri": f"sqlite:///{tmp_path / 'a.db'}", "run_id": "x"}))
    tracker = MlflowTracker(run_dir, f"sqlite:///{tmp_path / 'b.db'}")
    from gpo.errors import ConfigError

    with pytest.raises(ConfigError, match="is tracked in MLflow at"):
        tracker({"event": "run_start", "tasks": [], "resume": True, "method": "gpo", "reused": True})


def test_the_command_line_tracks_with_mlflow_and_resume_continues(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from gpo.cli import main

    monkeypatch.chdir(tmp_path)  # --mlflow alone: MLflow's default, a SQLite store here
    with ScriptedEndpoint() as scorer, ScriptedEndpoint() as opt:
        args = ["--dataset", "user", "--data-file", str(DATA / "tickets.csv"), "--target-col", "label",
                "--template", str(DATA / "ticket_template.txt"), "--metric", "contains",
                "--scorer-model", "m", "--scorer-base-url", scorer.url, "--optimizer-model", "m",
                "--optimizer-base-url", opt.url, "--num-search-epochs", "1", "--max-examples", "test=4",
                "--progress", "quiet", "--run-dir", "run"]
        out = CliRunner().invoke(main, ["optimize", *args, "--mlflow"])
        assert out.exit_code == 0, out.output
        again = CliRunner().invoke(main, ["resume", "run", "--progress", "quiet"])
        assert again.exit_code == 0, again.output
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert json.loads(Path("run", STATE).read_text())["tracking_uri"] == uri  # absolute: resumable from anywhere
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    assert len(client.search_runs([client.get_experiment_by_name("gpo").experiment_id])) == 2
    final = json.loads(Path("run", "optimized_prompts.jsonl").read_text())["final_prompt"]
    assert registered_instruction("prompts:/gpo-user-user/1", uri) == final
