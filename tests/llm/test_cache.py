"""The durable SQLite response cache."""

import asyncio
import os
from pathlib import Path
import signal
import sqlite3
import subprocess
import sys

import pytest

from fakes import ScriptedLLM
from gpo.llm import CacheError, Request, ResponseCache


def test_second_identical_batch_makes_zero_backend_calls(tmp_path):
    cache = ResponseCache(tmp_path / "c.sqlite")
    llm = ScriptedLLM(script=lambda r, i: f"{r.messages[-1][1]}#{i}", cache=cache)
    batch = [Request.chat(f"q{i}", n=2, temperature=1.0, seed=3) for i in range(5)]
    first = asyncio.run(llm.generate(batch))
    calls = llm.usage.calls
    assert calls == 5
    again = ScriptedLLM(script=lambda r, i: "DIFFERENT", cache=ResponseCache(tmp_path / "c.sqlite"))
    second = asyncio.run(again.generate(batch))
    assert again.usage.calls == 0 and again.usage.cache_hits == 10
    assert [c.texts for c in first] == [c.texts for c in second]


def test_sample_index_and_params_are_part_of_the_key(tmp_path):
    cache = ResponseCache(tmp_path / "c.sqlite")
    llm = ScriptedLLM(script=lambda r, i: f"s{i}", cache=cache)
    asyncio.run(llm.generate([Request.chat("q", n=2, temperature=1.0, seed=1)]))
    # more samples of the same request: only the new indices are generated
    (out,) = asyncio.run(llm.generate([Request.chat("q", n=4, temperature=1.0, seed=1)]))
    assert out.texts == ["s0", "s1", "s2", "s3"] and out.cached == 2
    # another seed or temperature is another request
    asyncio.run(llm.generate([Request.chat("q", n=1, temperature=1.0, seed=2)]))
    asyncio.run(llm.generate([Request.chat("q", n=1, temperature=0.5, seed=1)]))
    assert llm.usage.calls == 4
    # greedy requests ignore the seed (same answer whatever the run's seed)
    asyncio.run(llm.generate([Request.chat("g", seed=1), Request.chat("g", seed=2)]))
    assert len(cache) == 4 + 1 + 1 + 1


def test_foreign_sqlite_file_is_refused_and_untouched(tmp_path):
    path = tmp_path / "other.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE precious (x)")
    db.execute("INSERT INTO precious VALUES (42)")
    db.commit()
    db.close()
    with pytest.raises(CacheError, match="not a gpo response cache"):
        ResponseCache(path)
    assert sqlite3.connect(path).execute("SELECT x FROM precious").fetchone() == (42,)


def test_corrupt_file_gives_a_clear_error(tmp_path):
    path = tmp_path / "broken.sqlite"
    path.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(CacheError, match="cannot open response cache"):
        ResponseCache(path)
    assert path.read_bytes().startswith(b"this is not")


WRITER = r"""
import asyncio, sys, time
from fakes import ScriptedLLM
from gpo.llm import Request, ResponseCache
cache = ResponseCache(sys.argv[1])
tag = sys.argv[2]
llm = ScriptedLLM(script=lambda r, i: "done " + r.messages[-1][1], cache=cache, delay=0.02, concurrency=1)
async def main():
    for i in range(1000):
        await llm.complete(Request.chat(f"{tag}-{i}"))
        print(i, flush=True)
asyncio.run(main())
"""


def test_process_killed_mid_batch_leaves_every_completed_response(tmp_path):
    path = tmp_path / "c.sqlite"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}  # where fakes.py is
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), tag], stdout=subprocess.PIPE, text=True, env=env)
             for tag in ("a", "b")]  # two concurrent writers
    done = {}
    for tag, p in zip("ab", procs):
        lines = [p.stdout.readline() for _ in range(15)]
        done[tag] = int(lines[-1])
    for p in procs:
        p.send_signal(signal.SIGKILL)
        p.wait()
    cache = ResponseCache(path)
    llm = ScriptedLLM(script=lambda r, i: "recomputed", cache=cache)
    for tag, last in done.items():
        outs = asyncio.run(llm.generate([Request.chat(f"{tag}-{i}") for i in range(last + 1)]))
        assert all(o.text == f"done {tag}-{i}" for i, o in enumerate(outs))
    assert llm.usage.calls == 0
