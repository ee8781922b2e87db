"""Bad input gets one clear line: every error class gpo raises on purpose, through the
command line; the data and URL mistakes users make, named; and the meter counts as spent
only what may be billed. Scripted local endpoints are named as such."""

from __future__ import annotations

import asyncio
import inspect
import subprocess
import sys

import pytest
from click.testing import CliRunner

import gpo.errors
from fakes import ScriptedEndpoint
from gpo.errors import USER_ERRORS

GPO = [sys.executable, "-m", "gpo.cli"]

ERROR_CLASSES = [c for _, c in inspect.getmembers(gpo.errors, inspect.isclass)
                 if issubclass(c, Exception) and c.__module__ == "gpo.errors"]


def gpo_cmd(*args, timeout=300):
    return subprocess.run(GPO + list(args), capture_output=True, text=True, timeout=timeout)


def one_line(proc) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda c: c.__name__)
def test_every_error_class_reaches_the_user_as_one_line(cls, monkeypatch):
    """Raised from inside any command (here `gpo tasks`), each becomes one line, exit 2."""
    import gpo.tasks.catalog as catalog
    from gpo.cli import main

    assert issubclass(cls, USER_ERRORS)

    def fail(dataset):
        raise cls("the thing at fault, named\nand what to do")

    monkeypatch.setattr(catalog, "task_names", fail)
    result = CliRunner().invoke(main, ["tasks", "--dataset", "bbh"])
    assert result.exit_code == 2 and result.exception is not None and isinstance(result.exception, SystemExit)
    assert result.output.strip() == "Error: the thing at fault, named and what to do"


def test_data_mistakes_are_named(tmp_path):
    from gpo.tasks import TaskError, load_user_task

    bom = tmp_path / "bom.csv"  # as spreadsheet programs save it
    bom.write_text("text,label\n" + "".join(f"Is {i} even?,{'yes' if i % 2 == 0 else 'no'}\n" for i in range(10)),
                   encoding="utf-8-sig")
    task = load_user_task("bom", bom, input_col="text", target_col="label")
    assert sum(task.sizes()[s] for s in ("train", "eval", "test")) == 10 and task.split("test")[0].input.startswith("Is")
    empty = tmp_path / "empty.csv"
    empty.write_text("text,label\nIs 1 even?,no\nIs 2 even?,\nIs 3 even?,no\n")
    with pytest.raises(TaskError, match=r"empty\.csv, line 3: the 'label' column is empty"):
        load_user_task("e", empty, input_col="text", target_col="label")
    two = tmp_path / "two.csv"
    two.write_text("text,label\nIs 1 even?,no\nIs 2 even?,yes\n")
    with pytest.raises(TaskError, match=r"2 rows are too few to split by train 0.3/eval 0.3/test 0.4 .*test would be empty"):
        load_user_task("t", two, input_col="text", target_col="label")


@pytest.mark.parametrize("args,message", [
    (["--scorer-calls-per-task", "0"], "--scorer-calls-per-task must be more than 0"),
    (["--max-cost", "0"], "--max-cost must be more than 0"),
    (["--scorer-model", "m", "--scorer-base-url", "notaurl"], "--scorer-base-url: 'notaurl' is not a URL"),
    (["--optimizer-model", "m", "--optimizer-base-url", "http://127.0.0.1:1/v1,ftp://x"], "'ftp://x' is not a URL"),
])
def test_misleading_messages_now_say_what_is_wrong(args, message):
    assert message in one_line(gpo_cmd("optimize", *args, timeout=120))


def test_a_budget_spent_on_calls_that_never_connected_is_one_line(tmp_path):
    line = one_line(gpo_cmd("optimize", "--method", "cot", "--scorer-base-url", "http://127.0.0.1:9/v1",
                            "--scorer-model", "x", "--optimizer-model", "x", "--optimizer-base-url",
                            "http://127.0.0.1:9/v1", "--max-scorer-calls", "1", "--run-dir", str(tmp_path / "r"),
                            "--progress", "quiet"))
    # the request let through is waited for (its siblings are refused by the budget): the
    # line names what really went wrong, not the budget
    assert "cannot connect" in line and "resume with" in line


def test_a_corrupt_cache_is_one_line(tmp_path):
    run = tmp_path / "run"
    with ScriptedEndpoint() as ep:
        common = ["--method", "cot", "--max-examples", "eval=2", "--max-examples", "test=2", "--scorer-model", "m",
                  "--scorer-base-url", ep.url, "--optimizer-model", "m", "--optimizer-base-url", ep.url,
                  "--run-dir", str(run), "--progress", "quiet"]
        assert gpo_cmd("optimize", *common).returncode == 0
        (run / "cache.sqlite").write_bytes(b"not a database at all" * 100)
        for name in ("cache.sqlite-wal", "cache.sqlite-shm"):
            (run / name).unlink(missing_ok=True)
        assert "cache" in one_line(gpo_cmd("resume", str(run), "--progress", "quiet")).lower()


# ---------------------------------------------------------------- what the meter counts as spent

def _metered(url, retry):
    from gpo.llm import OpenAILLM
    from gpo.llm.meter import Meter

    meter = Meter(max_scorer_calls=5)
    llm = OpenAILLM(model="m", base_url=url, retry=retry)
    llm.meter, llm.role = meter, "scorer"
    return llm, meter


async def _until(condition, what, deadline=60.0):
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while not condition():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def test_refused_connections_and_rate_limits_are_not_spent_but_a_call_on_the_wire_is():
    from gpo.llm import LLMError, Request
    from gpo.llm.retry import RetryPolicy

    # every attempt refused: the call fails for good, nothing counted
    llm, meter = _metered("http://127.0.0.1:9/v1", RetryPolicy(max_attempts=2, base_delay=0.01))
    with pytest.raises(LLMError, match="cannot connect"):
        asyncio.run(llm.complete(Request.chat("x")))
    assert "scorer" not in meter.spent and meter.exhausted("scorer") is None

    async def cancel_when(llm, condition, what):
        call = asyncio.ensure_future(llm.complete(Request.chat("x")))
        await _until(condition, what)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call

    # cancelled while backing off after a 429: nothing was answered, nothing counted
    with ScriptedEndpoint(statuses=[429] * 10, retry_after="60") as limited:
        llm, meter = _metered(limited.url, RetryPolicy(max_attempts=5))
        asyncio.run(cancel_when(llm, lambda: len(limited.bodies) == 1 and limited.in_flight == 0, "the 429"))
    assert "scorer" not in meter.spent and meter.exhausted("scorer") is None
    # cancelled while the request is on the wire: it may be billed, so it counts
    with ScriptedEndpoint(latency=2.0) as slow:
        llm, meter = _metered(slow.url, RetryPolicy(max_attempts=1))
        asyncio.run(cancel_when(llm, lambda: slow.in_flight == 1, "the request on the wire"))
    assert meter.spent["scorer"].calls == 1
