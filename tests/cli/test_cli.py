"""The `gpo` command through its real entry point."""

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from fakes import GPO, TINY, gpo

def test_help_texts():
    out = gpo("--help").stdout
    for cmd in ("optimize", "resume", "evaluate", "report", "runs", "tasks"):
        assert cmd in out
    opt = gpo("optimize", "--help").stdout
    assert "--momentum-selection-name" in opt and "--momentum_selection_name" in opt and "--dry-run" in opt


@pytest.mark.model  # runs the embedded model in a gpo process
def test_dry_run_plans_calls_and_cost():
    plan = json.loads(gpo("optimize", "--dry-run", *TINY).stdout)
    # eval 3 + 2 steps x (train 4 + 2 candidates x 3) + test 2 x 3 = 29 examples, two rounds each; 2 requests
    # of 2 samples, each sample may be asked for again once (--repair 1): 4 more requests of one sample
    assert plan["scorer_calls"] == 58 and plan["optimizer_calls"] == 2 + 4 and plan["optimizer_samples"] == 4 + 4
    unrepaired = json.loads(gpo("optimize", "--dry-run", *TINY, "--repair", "0").stdout)
    assert unrepaired["optimizer_calls"] == 2 and unrepaired["optimizer_samples"] == 4
    # the headroom check: 5 probe prompts on the 3 eval examples, and the one it starts from on all 3, two rounds each
    probed = json.loads(gpo("optimize", "--dry-run", *TINY, "--probe").stdout)
    assert probed["scorer_calls"] == 58 + (5 * 3 + 3) * 2
    assert plan["estimated_cost_usd"] == 0
    priced = json.loads(gpo("optimize", "--dry-run", *TINY, "--scorer-price", "1,2", "--optimizer-price", "10,30").stdout)
    s_in, s_out = priced["scorer_tokens"]
    o_in, o_out = priced["optimizer_tokens"]
    expected = (s_in * 1 + s_out * 2 + o_in * 10 + o_out * 30) / 1e6
    assert priced["estimated_cost_usd"] == round(expected, 4) > 0
    bad = gpo("optimize", "--dry-run", "--scorer-price", "cheap", check=False)
    assert bad.returncode == 2 and "expects IN,OUT" in bad.stderr


@pytest.mark.model  # runs the embedded model in a gpo process
def test_dry_run_for_a_baseline_and_a_search_budget():
    plan = json.loads(gpo("optimize", "--dry-run", *TINY, "--method", "opro").stdout)
    # eval 3 + 2 steps x 2 candidates x 3 + test 2 x 3 = 21 examples, two rounds each; 1 request a step, and
    # each of its 2 samples may be asked for again once
    assert plan["method"] == "opro" and plan["scorer_calls"] == 42 and plan["optimizer_calls"] == 2 + 4
    capped = json.loads(gpo("optimize", "--dry-run", *TINY, "--method", "opro", "--scorer-calls-per-task", "24").stdout)
    assert capped["scorer_calls"] == 24 + 12  # the search budget, then the test split
    # 10 requests: the initial prompt takes 6 (3 examples, two rounds), so they buy no 3 proposals of 6 each
    refused = gpo("optimize", "--dry-run", *TINY, "--method", "opro", "--scorer-calls-per-task", "10", check=False)
    assert refused.returncode == 2 and "it buys 0 scored proposals" in refused.stderr and "give at least 24" in refused.stderr
    fixed = json.loads(gpo("optimize", "--dry-run", *TINY, "--method", "cot").stdout)
    assert fixed["optimizer_calls"] == 0 and fixed["scorer_calls"] == (3 + 6) * 2


@pytest.mark.model  # runs the embedded model in a gpo process
def test_dry_run_times_the_embedded_model_and_says_racing_is_an_upper_bound():
    plan = json.loads(gpo("optimize", "--dry-run", *TINY).stdout)
    assert plan["estimated_wall_s"] > 0 and "timed on this machine" in plan["timing"]
    assert "upper bound" in plan["note"] and "stop early" in plan["note"]
    full = json.loads(gpo("optimize", "--dry-run", *TINY, "--selection", "full").stdout)
    assert "stop early" not in full["note"] and full["scorer_calls"] == plan["scorer_calls"]


@pytest.mark.model  # runs the embedded model in a gpo process
def test_a_long_plan_names_the_options_that_shorten_it(tmp_path):
    rows = tmp_path / "rows.csv"  # a user's 300-row yes/no CSV with the default recipe
    rows.write_text("text,label\n" + "".join(f"Is {i} even?,{'yes' if i % 2 == 0 else 'no'}\n" for i in range(300)))
    proc = gpo("optimize", "--dry-run", "--dataset", "user", "--data-file", str(rows), "--input-col", "text",
               "--target-col", "label", "--budget", "full")  # nothing capped
    plan = json.loads(proc.stdout)
    assert plan["scorer_calls"] > 10_000 and plan["upper_wall_s"] >= plan["estimated_wall_s"] > 3600
    assert len(proc.stderr.strip().splitlines()) == 1
    for option in ("--budget light", "--scorer-calls-per-task", "--max-examples"):
        assert option in proc.stderr
    url = "http://127.0.0.1:9/v1"  # nothing listens: an endpoint's speed is not probed before the run
    endpoint = json.loads(gpo("optimize", "--dry-run", *TINY, "--scorer-model", "m", "--scorer-base-url", url,
                              "--optimizer-model", "m", "--optimizer-base-url", url).stdout)
    assert endpoint["estimated_wall_s"] is None and "once the run is going" in endpoint["timing"]


def test_closing_lines_carry_intervals_and_significance(capsys):
    from gpo.cli import _print_results
    from gpo.engine.state import TaskResult
    from gpo.scoring.stats import compare

    eval_gain = compare([0] * 14 + [1] * 6, [0] * 8 + [1] * 12)  # six examples won, none lost
    test_gain = compare([1, 0, 1, 0], [1, 1, 1, 0])
    r = TaskResult("bbh", "navigate", "start", 0.3, "better", 0.6, 0.5, 0.75,
                   eval_comparison=eval_gain.as_dict(), test_comparison=test_gain.as_dict())
    _print_results([r])
    out = capsys.readouterr().out
    assert "bbh/navigate: eval 30.0 -> 60.0 (+30.0, 95% CI +" in out and "p = 0.03)" in out
    assert "test 50.0 -> 75.0 (+25.0, 95% CI " in out and "p = 1.00, not significant)" in out


@pytest.mark.parametrize("args,message", [
    (["optimize", "--bogus-flag"], "No such option"),
    (["optimize", "--preset", "gpp"], "did you mean gpo"),
    (["optimize", "--task", "navigat"], "did you mean navigate"),
    (["optimize", "--decay-strategy", "-"], "needs a decay_strategy"),
    (["optimize", "--dataset", "bbh", "--data-dir", "/nonexistent/data"], "data directory not found"),
    (["optimize", "--config", "/nonexistent.yaml"], "cannot read config file"),
    (["report", "/nonexistent/run"], "not a gpo run directory"),
    (["optimize", "--method", "oprp"], "unknown method 'oprp' (did you mean opro"),
    (["optimize", "--method", "apo", "--method-option", "bem=2"], "has no option 'bem' (did you mean beam"),
    (["optimize", "--method", "apo", "--method-option", "beam"], "expects KEY=VALUE"),
    (["optimize", "--gpus", "first"], "--gpus expects GPU numbers like 0,1"),
    (["optimize", "--scorer-model", __file__], "is a file but not a GGUF model"),
    (["optimize", "--optimizer-model", "/nonexistent/model.gguf"], "--optimizer-model: GGUF model file not found"),
    (["optimize", "--scorer-model", "gpt-4o-mini", "--scorer-base-url", "https://api.example.com/v1",
      "--scorer-api-key-env", "GPO_TEST_UNSET_KEY"], "needs an API key: set GPO_TEST_UNSET_KEY"),
    (["optimize", "--scorer-replicas", "2", "--scorer-model", "m", "--scorer-base-url", "http://127.0.0.1:9/v1"],
     "replicas run copies of an in-process model"),
])
def test_bad_input_is_one_clear_line(args, message):
    proc = gpo(*args, check=False)
    assert proc.returncode != 0
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.model  # runs the embedded model in a gpo process
def test_unreadable_config_and_unreachable_endpoint(tmp_path):
    bad = tmp_path / "run.yaml"
    bad.write_text("num_search_epochs: [unclosed\n")
    proc = gpo("optimize", "--config", str(bad), check=False)
    assert proc.returncode == 2 and "cannot parse config file" in proc.stderr and "Traceback" not in proc.stderr
    proc = gpo("optimize", *TINY, "--scorer-model", "m", "--scorer-base-url", "http://127.0.0.1:9/v1",
               "--run-dir", str(tmp_path / "r"), "--progress", "quiet", check=False, timeout=300)
    assert proc.returncode == 2 and "cannot connect" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.model  # runs the embedded model in a gpo process
def test_config_file_and_flags_override(tmp_path):
    cfg = tmp_path / "run.toml"
    cfg.write_text('num_search_epochs = 5\nmomentum_selection_name = "recency"\n')
    plan = json.loads(gpo("optimize", "--dry-run", "--config", str(cfg), *TINY[:10]).stdout)
    assert plan["tasks"][0]["steps"] == 5
    plan = json.loads(gpo("optimize", "--dry-run", "--config", str(cfg), *TINY[:10], "--num-search-epochs", "1").stdout)
    assert plan["tasks"][0]["steps"] == 1


def test_tasks_lists_answer_kinds():
    out = gpo("tasks").stdout
    assert "bbh (27 tasks)" in out and "mmlu (57 tasks)" in out and "webnlg" in out
    assert "word_sorting" in out and "generation (rouge_l)" in out


@pytest.mark.model  # runs the embedded model in a gpo process
def test_presets_name_their_cells_and_sgdm_runs_on_the_embedded_model(tmp_path):
    out = gpo("presets").stdout
    assert "table3-edit-cosine-warmup" in out and "Table 3, Editing, cosine decay" in out
    assert "table2-feedback-importance" in out and "gpo-paper" in out
    one_step = [a if a != "2" else "1" for a in TINY]  # --num-search-epochs 1
    # the paper's meta-prompt (the embedded optimizer gets the short one unless told otherwise)
    proc = gpo("optimize", *one_step, "--method", "sgdm", "--optimizer-size", "large", "--run-dir", str(tmp_path / "run"),
               "--progress", "json")
    steps = [e for e in _events(proc.stdout) if e["event"] == "step"]
    assert [(e["method"], e["step_size"]) for e in steps] == [("sgdm", None)]  # editing with no word limit
    state = json.loads((tmp_path / "run/tasks/synthetic__navigate/state.json").read_text())
    (step,) = state["trajectory"]["steps"]
    assert step["meta_prompt"].startswith("Your job is to revise the current prompt")
    assert step["gradient"]  # the feedback gradient (or the all-correct note) went into the update
    assert "Change at most" not in step["meta_prompt"]


def until(condition, what: str, deadline: float = 300.0) -> None:
    """Poll until ``condition`` holds; fail naming ``what`` after ``deadline`` seconds."""
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {deadline:.0f} s waiting for {what}")
        time.sleep(0.01)


def cached_rows(path) -> int:
    """Rows in a response cache, read-only while another process writes it."""
    import sqlite3

    if not path.is_file():
        return 0
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as db:
        return db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]


def _events(stdout):
    return [json.loads(l) for l in stdout.splitlines() if l.startswith("{")]


@pytest.mark.model  # runs the embedded model in a gpo process
def test_optimize_kill_resume_report_runs_evaluate(tmp_path):
    """A tiny real run on the embedded model, killed mid-step, resumed to the same
    result as an uninterrupted run with zero repeated model calls."""
    ref = tmp_path / "ref"
    closing = gpo("optimize", *TINY, "--run-dir", str(ref), "--progress", "quiet").stdout
    assert "95% CI" in closing and "p = " in closing  # every gain is stated with its uncertainty
    ref_rows = (ref / "optimized_prompts.jsonl").read_text()

    run = tmp_path / "run"
    state = run / "tasks/synthetic__navigate/state.json"
    proc = subprocess.Popen(GPO + ["optimize", *TINY, "--run-dir", str(run), "--progress", "json"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in proc.stdout:
        if json.loads(line)["event"] == "step":  # step 0 is done; it is saved next
            break
    import threading

    threading.Thread(target=proc.stdout.read, daemon=True).start()  # keep the pipe drained
    # Kill mid-step, by events and not by timing: once step 0's checkpoint is on disk and a
    # response of step 1 has been paid for (it is in the cache), but before step 1 is saved.
    until(lambda: state.is_file() and json.loads(state.read_text())["next_step"] == 1, "step 0's checkpoint")
    at_save = cached_rows(run / "cache.sqlite")
    until(lambda: cached_rows(run / "cache.sqlite") > at_save, "a paid response of step 1")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert json.loads(state.read_text())["next_step"] == 1  # killed before step 1 was saved: mid-step
    from gpo.llm import ResponseCache

    rows_before = len(ResponseCache(run / "cache.sqlite"))
    out = gpo("resume", str(run), "--progress", "json").stdout
    rows_after = len(ResponseCache(run / "cache.sqlite"))
    usage = [e for e in _events(out) if e["event"] == "usage"][-1]
    fresh = usage["scorer"]["samples"] + usage["optimizer"]["samples"]
    assert usage["scorer"]["cache_hits"] > 0
    assert fresh == rows_after - rows_before  # nothing generated twice
    ref_cache = len(ResponseCache(ref / "cache.sqlite"))
    assert rows_after == ref_cache  # the same set of calls as the uninterrupted run
    assert (run / "optimized_prompts.jsonl").read_text() == ref_rows

    # report
    out = gpo("report", str(run)).stdout
    assert "report.html" in out
    html = (run / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 2 and "Prompt evolution" in html
    assert list((run / "charts").glob("*.png"))

    # runs
    listing = gpo("runs", str(tmp_path)).stdout
    assert "finished" in listing and str(run) in listing

    # evaluate reads back optimized_prompts.jsonl
    out = gpo("evaluate", "--prompts-file", str(run / "optimized_prompts.jsonl"), "--prompt", "Answer yes or no.",
              "--task", "navigate",
              "--max-examples", "test=3", "--scorer-max-tokens", "16", "--out", str(tmp_path / "ev")).stdout
    assert "synthetic/navigate [test, n=3]" in out
    assert out.count("vs the first: ") == 1 and "95% CI" in out  # the second prompt against the first
    records = list((tmp_path / "ev").glob("*.jsonl"))
    assert records and json.loads(records[0].read_text().splitlines()[0])["summary"]["n"] == 3
    final_test = json.loads(ref_rows.splitlines()[0])["final_test"]
    assert f"{100 * final_test:.1f}" in out  # same score as the run reported


@pytest.mark.model  # runs the embedded model in a gpo process
def test_ctrl_c_stops_cleanly_and_prints_the_resume_command(tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen(GPO + ["optimize", *TINY, "--run-dir", str(run), "--progress", "json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if json.loads(line)["event"] == "initial":  # the initial prompt is scored: work is under way
            proc.send_signal(signal.SIGINT)
            break
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert f"Resume with: gpo resume {run}" in err and "Traceback" not in err
    events = [json.loads(l) for l in (run / "events.jsonl").read_text().splitlines()]
    assert events[-1]["event"] == "interrupted"
    assert (run / "tasks" / "synthetic__navigate" / "state.json").is_file()  # saved before stopping
    listing = gpo("runs", str(tmp_path)).stdout
    assert "stopped" in listing


def test_a_run_resumes_on_other_servers_of_a_fleet(tmp_path):
    """The scale options of `gpo resume` change where answers come from: the rest of the
    run goes to the new fleet, and nothing answered before is asked again."""
    from fakes import ScriptedEndpoint

    run = str(tmp_path / "run")
    common = ["--progress", "quiet", "--method", "cot", "--optimizer-model", "m", "--scorer-model", "m"]
    failing = [200] * 3 + [404] * 100  # three answers each, then an error that stops the run
    with ScriptedEndpoint(failing) as a, ScriptedEndpoint(failing) as b, ScriptedEndpoint() as opt:
        first = gpo("optimize", *TINY, *common, "--optimizer-base-url", opt.url, "--scorer-base-url", f"{a.url},{b.url}",
                    "--scorer-concurrency", "1", "--run-dir", run, check=False)
        asked_first = len(a.bodies) + len(b.bodies)
        answered_first = [json.dumps(body["messages"]) for body in a.bodies[:3] + b.bodies[:3]]
    assert first.returncode != 0 and "HTTP 404" in first.stderr and "gpo resume" in first.stderr
    with ScriptedEndpoint() as c, ScriptedEndpoint() as d, ScriptedEndpoint() as opt:
        gpo("resume", run, "--progress", "quiet", "--scorer-base-url", f"{c.url},{d.url}",
            "--optimizer-base-url", opt.url)
        asked_again = [json.dumps(body["messages"]) for body in c.bodies + d.bodies]
    assert asked_first > 6 and len(asked_again) > 0
    assert not set(answered_first) & set(asked_again)  # the first run's answers came from the cache
    assert len(c.bodies) > 0 and len(d.bodies) > 0
    events = [json.loads(line) for line in Path(run, "events.jsonl").read_text().splitlines()]
    members = [e for e in events if e["event"] == "usage"][-1]["scorer"]["members"]
    assert set(members) == {f"m (openai:{c.url})", f"m (openai:{d.url})"}


@pytest.mark.model  # the README's program example, end to end on the embedded model (small splits)
def test_the_readme_program_example_runs_and_reports_each_prompt(tmp_path):
    from gpo.tasks.program import decode

    data = Path(__file__).resolve().parents[1] / "data"
    run_dir = tmp_path / "ticket-program"
    args = ["--dataset", "user", "--data-file", str(data / "tickets.csv"), "--input-col", "body",
            "--target-col", "label", "--program", f"{data / 'ticket_program.py'}:run",
            "--prompts", str(data / "ticket_prompts.yaml"),
            "--metric", f"python:{data / 'ticket_metric.py'}:category_with_feedback",
            "--max-examples", "train=4", "--max-examples", "eval=3", "--max-examples", "test=3",
            "--opt-batch-size", "4", "--num-search-epochs", "2", "--num-generated-instructions-in-each-step", "2",
            "--optimizer-max-tokens", "64", "--no-constrained-replies", "--repair", "0", "--run-dir", str(run_dir)]
    # free replies, none asked again: the grammar and the repair round make the embedded optimizer's steps slower,
    # and this test is about a program's steps and report
    out = gpo("optimize", *args)
    assert "test" in out.stdout
    state = json.loads(next((run_dir / "tasks").glob("*/state.json")).read_text())
    assert [s["component"] for s in state["trajectory"]["steps"]] == ["extract", "classify"]
    assert set(state["parts"]) == {"extract", "classify"}
    final = json.loads((run_dir / "optimized_prompts.jsonl").read_text().splitlines()[0])["final_prompt"]
    assert set(decode(final, ["extract", "classify"])) == {"extract", "classify"}
    gpo("report", str(run_dir))
    page = (run_dir / "report.html").read_text()
    assert "Prompt extract: its steps" in page and "Prompt classify: its steps" in page
    # a prompts file naming a prompt the program never reads: reported at the first scoring
    extra = tmp_path / "prompts.yaml"
    extra.write_text((data / "ticket_prompts.yaml").read_text() + "summary: Summarise the ticket.\n")
    bad = gpo("optimize", *args[:-2], "--prompts", str(extra), "--run-dir", str(tmp_path / "bad"), check=False)
    assert bad.returncode != 0 and "never read 'summary'" in bad.stderr
