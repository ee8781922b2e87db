"""A run directory is never silently reused: the same run resumes, another run is refused
(naming the settings that differ) unless --overwrite, and a damaged file is named.

Real runs on real files, with the scorer and optimizer behind scripted local HTTP
endpoints (named as such), through the Python API and the `gpo` command."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from fakes import ScriptedEndpoint, config
from gpo.api import ModelSpec, RunSpec, TaskSpec, optimize
from gpo.errors import RunDirError

GPO = [sys.executable, "-m", "gpo.cli"]


def spec_for(scorer, opt, **cfg):
    return RunSpec(
        tasks=TaskSpec(source="synthetic", tasks=["navigate"], sizes={"train": 4, "eval": 6, "test": 6}),
        config=config(opt_batch_size=4, num_generated_instructions_in_each_step=2, **cfg),
        scorer=ModelSpec("m", base_url=scorer.url), optimizer=ModelSpec("m", base_url=opt.url),
    )


def test_the_same_run_resumes_another_is_refused_and_overwrite_starts_clean(tmp_path):
    run = tmp_path / "run"
    with ScriptedEndpoint() as scorer, ScriptedEndpoint() as opt:
        (first,) = optimize(spec_for(scorer, opt, initial_instruction="Think."), run)
        sent = len(scorer.bodies)
        # the same settings: resumed from the finished checkpoint, nothing is asked again
        events = []
        (again,) = optimize(spec_for(scorer, opt, initial_instruction="Think."), run, listeners=[events.append])
        assert again.as_dict() == first.as_dict() and len(scorer.bodies) == sent
        assert any(e["event"] == "run_start" and e["reused"] and e["resume"] for e in events)
        # other settings: refused, naming what differs, and nothing in the directory changes
        before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
        with pytest.raises(RunDirError) as err:
            optimize(spec_for(scorer, opt, initial_instruction="Answer Yes or No."), run)
        assert "config.initial_instruction" in str(err.value) and "--overwrite" in str(err.value)
        assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
        assert len(scorer.bodies) == sent
        # --overwrite: a clean start, keeping nothing of the old run (its cache included)
        (fresh,) = optimize(spec_for(scorer, opt, initial_instruction="Answer Yes or No."), run, overwrite=True)
        assert fresh.initial_prompt == "Answer Yes or No." and len(scorer.bodies) > sent
        assert json.loads((run / "run.json").read_text())["config"]["initial_instruction"] == "Answer Yes or No."
        starts = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
        assert [e["event"] for e in starts].count("run_start") == 1  # the old run's log went with it


def test_a_reused_run_directory_restores_its_budget(tmp_path):
    """A run stopped by its budget, rerun with the same command: the budget holds, as with
    gpo resume (the meter is restored), and nothing more is sent."""
    run = tmp_path / "run"
    with ScriptedEndpoint() as scorer, ScriptedEndpoint() as opt:
        spec = spec_for(scorer, opt, initial_instruction="Think.", num_search_epochs=3, budget={"max_scorer_calls": 20})
        (first,) = optimize(spec, run)
        sent = len(scorer.bodies)
        (again,) = optimize(spec, run)
        assert len(scorer.bodies) == sent <= 20
    assert first.stopped and again.stopped
    assert json.loads((run / "meter.json").read_text())["run"]["scorer"]["calls"] == 20


def test_the_command_line_says_what_happened_in_one_line(tmp_path):
    run = str(tmp_path / "run")
    with ScriptedEndpoint() as scorer, ScriptedEndpoint() as opt:
        common = ["optimize", "--method", "cot", "--task", "navigate", "--max-examples", "eval=4", "--max-examples",
                  "test=4", "--scorer-model", "m", "--scorer-base-url", scorer.url, "--optimizer-model", "m",
                  "--optimizer-base-url", opt.url, "--run-dir", run, "--progress", "quiet"]
        subprocess.run(GPO + common, capture_output=True, text=True, timeout=300, check=True)
        same = subprocess.run(GPO + common, capture_output=True, text=True, timeout=300)
        assert same.returncode == 0 and "holds this same run" in same.stderr and "gpo resume" in same.stderr
        other = subprocess.run(GPO + common + ["--initial-instruction", "Answer Yes or No."], capture_output=True,
                               text=True, timeout=300)
        assert other.returncode == 2 and "Traceback" not in other.stderr
        assert len(other.stderr.strip().splitlines()) == 1
        assert "config.initial_instruction" in other.stderr and "--overwrite" in other.stderr
        clean = subprocess.run(GPO + common + ["--initial-instruction", "Answer Yes or No.", "--overwrite"],
                               capture_output=True, text=True, timeout=300)
        assert clean.returncode == 0 and "holds this same run" not in clean.stderr
    assert json.loads((tmp_path / "run" / "run.json").read_text())["config"]["initial_instruction"] == "Answer Yes or No."


@pytest.mark.parametrize("name", ["run.json", "tasks/synthetic__navigate/state.json", "meter.json"])
def test_a_damaged_file_is_named_in_one_line_and_nothing_is_overwritten(tmp_path, name):
    run = tmp_path / "run"
    with ScriptedEndpoint() as scorer, ScriptedEndpoint() as opt:
        optimize(spec_for(scorer, opt, initial_instruction="Think."), run)
        damaged = run / name
        damaged.write_text('{"next_step": 1, "trun')  # cut short, as a full disk leaves it
        before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
        proc = subprocess.run(GPO + ["resume", str(run), "--progress", "quiet"], capture_output=True, text=True,
                              timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert str(damaged) in proc.stderr and "damaged" in proc.stderr and "nothing was changed" in proc.stderr
    after = {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != "events.jsonl"}
    assert after == {p: b for p, b in before.items() if p.name != "events.jsonl"}
