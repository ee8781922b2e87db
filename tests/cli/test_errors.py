"""Bad input gets one clear line: every error class gpo raises on purpose, through the
command line; the data and URL mistakes users make, named; and the meter counts as spent
only what may be billed. Scripted local endpoints are named as such."""

from __future__ import annotations

import asyncio
import inspect
import json
import re
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


ROWS = [("Is 2 even?", "yes"), ("Is 3 even?", "no"), ("Is 4 even?", "yes"), ("Is 5 even?", "no")] * 3


def _csv(sep=",", rows=ROWS):
    return "text" + sep + "label\n" + "".join(f"{t}{sep}{label}\n" for t, label in rows)


FILES = {  # name: (bytes, what the one line must say)
    "latin1.csv": (_csv().replace("Is 2", "Café 2").encode("latin-1"),
                   r"latin1.csv, line 2, column 4: not UTF-8 \(byte 0xe9: perhaps Latin-1 or Windows-1252\); "
                   r"re-save it as UTF-8"),
    "open_quote.csv": (_csv().replace("Is 3 even?", '"Is 3 even?', 1).encode(),
                       r"open_quote.csv, line 3: a quoted field starts on this line and its closing quote never comes"),
    "commas.csv": (_csv().replace("Is 4 even?", "Is 4, or 5, even?", 1).encode(),
                   r"commas.csv, line 4: 4 fields where the header has 2 \(comma-separated\); a field holding a "
                   r"comma needs double quotes around it"),
    "empty.csv": (b"", r"empty.csv: the file is empty \(no rows\)"),
    "header.csv": (b"text,label\n", r"header.csv: a header \(text, label\) and no rows"),
    "no_labels.csv": (_csv(rows=[(t, "") for t, _ in ROWS]).encode(),
                      r"no_labels.csv: the 'label' column is empty on every row"),
    "utf16_nomark.csv": (_csv().encode("utf-16-le"), r"looks like UTF-16 without its byte-order mark"),
}


@pytest.mark.parametrize("name", FILES)
def test_a_data_file_as_users_have_it_is_refused_in_one_line_naming_it(tmp_path, name):
    data, said = FILES[name]
    (tmp_path / name).write_bytes(data)
    line = one_line(gpo_cmd("optimize", "--dry-run", "--data-file", str(tmp_path / name), "--input-col", "text",
                            "--target-col", "label"))
    assert re.search(said, line), line


@pytest.mark.parametrize("name, data", [
    ("semicolons.csv", _csv(";").encode()),  # as spreadsheets save CSV in many locales
    ("tabs.csv", _csv("\t").encode()),
    ("tabs.tsv", _csv("\t").encode()),
    ("utf16.csv", _csv().encode("utf-16")),  # with its byte-order mark, as Excel's "Unicode text" saves
    ("bom.jsonl", "".join(json.dumps({"text": t, "label": label}) + "\n" for t, label in ROWS).encode("utf-8-sig")),
])
def test_other_delimiters_and_encodings_users_save_are_read(tmp_path, name, data):
    from gpo.tasks import load_user_task

    (tmp_path / name).write_bytes(data)
    task = load_user_task("t", tmp_path / name, input_col="text", target_col="label")
    examples = [e for s in ("train", "eval", "test") for e in task.split(s)]
    assert sorted((e.input, e.target) for e in examples) == sorted(ROWS)


def test_a_directory_given_as_a_data_file_is_called_a_directory(tmp_path):
    line = one_line(gpo_cmd("optimize", "--dry-run", "--data-file", str(tmp_path)))
    assert f"{tmp_path} is a directory, not a data file" in line
