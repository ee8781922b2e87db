"""One writer per run directory, and every way a run is stopped is a clean stop (issue 34)."""

import json
import os
import signal
import socket
import subprocess
import threading

import pytest

from fakes import ScriptedEndpoint
from fakes import GPO, TINY, gpo

from gpo.errors import RunDirError
from gpo.run.lock import LOCK_FILE, RunLock, holder


def test_a_second_holder_is_refused_naming_the_first_and_a_released_lock_is_free(tmp_path):
    first = RunLock.acquire(tmp_path)
    assert holder(tmp_path)["pid"] == os.getpid()
    with pytest.raises(RunDirError, match=rf"is in use by pid {os.getpid()} on {socket.gethostname()} since "):
        RunLock.acquire(tmp_path)
    first.release()
    assert holder(tmp_path) is None and (tmp_path / LOCK_FILE).read_text() == ""  # a clean end leaves no name
    second = RunLock.acquire(tmp_path)
    assert second.taken_over is None  # released cleanly before: nothing taken over
    second.release()


def test_a_lock_left_by_a_process_that_is_gone_is_taken_over_and_named(tmp_path):
    (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": 999999, "host": "elsewhere", "started": 0}))
    lock = RunLock.acquire(tmp_path)  # the file names a holder, but nobody holds the lock
    assert lock.taken_over == {"pid": 999999, "host": "elsewhere", "started": 0}
    assert holder(tmp_path)["pid"] == os.getpid()
    lock.release()


def _start(run, url, *extra):
    cmd = GPO + ["optimize", *TINY, "--run-dir", str(run), "--progress", "json", "--optimizer-model", "m",
                 "--scorer-model", "m", "--optimizer-base-url", url, "--scorer-base-url", url, *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if line.startswith("{") and json.loads(line)["event"] == "initial":  # work is under way
            break
    threading.Thread(target=proc.stdout.read, daemon=True).start()  # keep the pipe drained
    return proc, cmd


def test_two_processes_on_one_run_directory_the_second_is_refused_and_a_killed_ones_lock_does_not_block(tmp_path):
    run = tmp_path / "run"
    with ScriptedEndpoint(latency=0.3) as server:  # slow answers: the first run is still going
        first, cmd = _start(run, server.url)
        second = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert second.returncode == 2 and "Traceback" not in second.stderr  # a refusal, as any bad input
        refusal = [line for line in second.stderr.splitlines() if line.strip()]
        assert len(refusal) == 1 and f"is in use by pid {first.pid} on {socket.gethostname()}" in refusal[0]
        assert f"kill {first.pid}" in refusal[0]
        assert "running" in gpo("runs", str(tmp_path)).stdout and f"pid {first.pid}" in gpo("runs", str(tmp_path)).stdout
        events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
        assert sum(e["event"] == "run_start" for e in events) == 1  # the second wrote nothing into the run
        first.send_signal(signal.SIGKILL)
        first.wait()
        resumed = gpo("resume", str(run), "--progress", "quiet", "--scorer-base-url", server.url,
                      "--optimizer-base-url", server.url)
    assert f"last held by pid {first.pid}" in resumed.stderr and "taking it over" in resumed.stderr
    assert "finished" in gpo("runs", str(tmp_path)).stdout
    assert (run / "optimized_prompts.jsonl").is_file()


@pytest.fixture(scope="module")
def clean_run_meter(tmp_path_factory):
    """What an uninterrupted run of TINY on the embedded model pays (meter.json)."""
    run = tmp_path_factory.mktemp("clean") / "run"
    gpo("optimize", *TINY, "--run-dir", str(run), "--progress", "quiet")
    return json.loads((run / "meter.json").read_text())


def _paid(meter: dict) -> dict:
    return {role: (m["calls"], m["samples"]) for role, m in meter["run"].items()}


@pytest.mark.model  # runs the embedded model in gpo processes
@pytest.mark.parametrize("signum, code, name", [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGHUP, 129, "SIGHUP")])
def test_sigterm_and_sighup_stop_like_ctrl_c_and_the_resume_pays_what_a_clean_run_pays(
        tmp_path, clean_run_meter, signum, code, name):
    run = tmp_path / "run"
    proc = subprocess.Popen(GPO + ["optimize", *TINY, "--run-dir", str(run), "--progress", "json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if line.startswith("{") and json.loads(line)["event"] == "step":  # step 0 is done; more is to come
            proc.send_signal(signum)
            break
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == code
    assert f"{name}: stopping after the requests under way and saving" in err and f"Resume with: gpo resume {run}" in err
    assert "Traceback" not in err
    assert json.loads((run / "events.jsonl").read_text().splitlines()[-1])["event"] == "interrupted"
    listing = gpo("runs", str(tmp_path)).stdout
    assert "stopped" in listing and "tasks done 0" in listing  # cut short: not counted as done
    gpo("resume", str(run), "--progress", "quiet")
    assert "finished" in gpo("runs", str(tmp_path)).stdout and "tasks done 1" in gpo("runs", str(tmp_path)).stdout
    assert _paid(json.loads((run / "meter.json").read_text())) == _paid(clean_run_meter)
