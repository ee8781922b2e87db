"""Test doubles, named as such.

ScriptedLLM: a fake backend for unit tests of control flow. It answers from a
script function, counts calls, and goes through the real LLM base class (cache,
concurrency limit, usage), so only the model itself is fake.

Recorder: hooks that keep every checkpoint and event a search emits, in memory.

gpo, GPO, TINY: the `gpo` command run as a user runs it (a subprocess), and a tiny run's flags.

ScriptedEndpoint: a real HTTP server on 127.0.0.1 speaking the OpenAI chat
protocol with scripted statuses, for retry and concurrency tests.

plus_task, echo_scorer, replies, config: the scripted search of the optimizer tests. The
scorer echoes its prompt; the task gives an example credit when the instruction has at
least as many '+' as the example's target; the optimizer replies from a table.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

import numpy as np

from gpo.config import GPOConfig
from gpo.engine.hooks import NoHooks
from gpo.llm.base import LLM, Request, Sample
from gpo.tasks import AnswerKind, Example, Task


@dataclass
class ScriptedLLM(LLM):
    """Fake model: ``script(request, sample_index) -> text``."""

    model: str = "scripted"
    script: Callable[[Request, int], str] = lambda r, i: ""
    delay: float = 0.0
    requests: list = field(default_factory=list)

    @property
    def backend_id(self) -> str:
        return "scripted"

    async def _sample(self, request: Request, indices: list[int]) -> list[Sample]:
        import asyncio

        self.requests.append(request)
        if self.delay:
            await asyncio.sleep(self.delay)
        return [Sample(self.script(request, i), "stop", 10, 5) for i in indices]


def last_user(request: Request) -> str:
    return request.messages[-1][1] if request.messages else request.prompt


def parity_answer(request: Request, index: int) -> str:
    """Script whose answer depends on the question only: any replica gives the same one."""
    return "Yes" if len(last_user(request)) % 2 else "No"


class HashEmbedder:
    """Fake embedder: bag-of-words vectors, so similar texts are similar."""

    name = "hash-bow"

    async def embed(self, texts):
        vecs = np.zeros((len(texts), 64), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().split():
                vecs[i, hash(w) % 64] += 1
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        return vecs / np.maximum(norms, 1e-12)


class ScriptedEndpoint:
    """OpenAI-compatible HTTP server on 127.0.0.1 with scripted behaviour.

    ``statuses``: list of HTTP statuses to answer in turn (200 = success; 0 = drop the
    connection without an answer) then 200.
    Records every request body and the most requests in flight at once.
    """

    def __init__(self, statuses=(), latency: float = 0.0, retry_after: str | None = None, cached_tokens: int | None = None,
                 llama_server: bool = False, replies: list[str] | None = None):
        self.replies = replies  # answered in turn, one a request (default: "answer 0", "answer 1", ... a sample)
        self.cached_tokens = cached_tokens  # reported as OpenAI documents it: usage.prompt_tokens_details.cached_tokens
        # llama_server: answer GET /props and report cached tokens in ``timings.cache_n``, as llama.cpp's server does
        self.llama_server = llama_server
        self.statuses = list(statuses)
        self.latency = latency
        self.retry_after = retry_after
        self.bodies: list[dict] = []
        self.auth_headers: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                if self.path == "/props" and outer.llama_server:
                    data, status = json.dumps({"default_generation_settings": {"n_ctx": 4096}, "total_slots": 1}).encode(), 200
                else:
                    data, status = b'{"error": "not found"}', 404
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                with outer.lock:
                    outer.bodies.append(body)
                    outer.auth_headers.append(self.headers.get("authorization", ""))
                    status = outer.statuses.pop(0) if outer.statuses else 200
                    outer.in_flight += 1
                    outer.max_in_flight = max(outer.max_in_flight, outer.in_flight)
                try:
                    if outer.latency:
                        time.sleep(outer.latency)
                    if status == 0:
                        self.close_connection = True
                        self.connection.shutdown(2)
                        return
                    if status == 200:
                        n = body.get("n", 1)
                        with outer.lock:
                            texts = ([outer.replies[(len(outer.bodies) - 1) % len(outer.replies)]] * n if outer.replies
                                     else [f"answer {i}" for i in range(n)])
                        payload = {
                            "id": "x", "object": "chat.completion", "created": 0, "model": body.get("model"),
                            "choices": [{"index": i, "finish_reason": "stop",
                                         "message": {"role": "assistant", "content": texts[i]}} for i in range(n)],
                            "usage": {"prompt_tokens": 7, "completion_tokens": 3 * n, "total_tokens": 7 + 3 * n},
                        }
                        if outer.cached_tokens is not None and outer.llama_server:
                            payload["timings"] = {"cache_n": outer.cached_tokens, "prompt_n": 7 - outer.cached_tokens}
                        elif outer.cached_tokens is not None:
                            payload["usage"]["prompt_tokens_details"] = {"cached_tokens": outer.cached_tokens}
                    else:
                        key = (self.headers.get("authorization") or "").replace("Bearer ", "")
                        payload = {"error": {"message": f"Incorrect API key provided: {key}", "type": "error"}}
                    data = json.dumps(payload).encode()
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    if status != 200 and outer.retry_after:
                        self.send_header("retry-after", outer.retry_after)
                    self.end_headers()
                    self.wfile.write(data)
                finally:
                    with outer.lock:
                        outer.in_flight -= 1

        class Server(ThreadingHTTPServer):
            request_queue_size = 256  # socketserver's default backlog of 5 resets bursts of connections

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------- the scripted search

def plus_task(n_train=16, n_eval=10):
    metric = lambda pred, ex: float(pred.count("+") >= int(ex.target))
    ex = lambda n: [Example(f"item {i}", str(i % 10 + 1)) for i in range(n)]
    return Task("plus", "test", AnswerKind.EXACT, metric=metric,
                splits={"train": ex(n_train), "eval": ex(n_eval), "test": ex(n_eval), "format": ex(3), "few_shot": ex(2)})


def echo_scorer(cache=None):
    return ScriptedLLM(model="echo", script=lambda r, i: last_user(r), cache=cache)


def replies(table):
    """Scripted optimizer: the k-th update call answers table[k] (one text per sample)."""
    calls = {"n": 0}

    def script(request, i):
        text = last_user(request)
        if "Put the new prompt between" not in text:
            return "<START>summary ++<END>" if "summarises" in text else "<START>It is too short.<END>"
        k = calls["n"] if i == 0 else calls["n"] - 1
        if i == 0:
            calls["n"] += 1
        return table[min(k, len(table) - 1)][i]

    return script


def config(**kw):
    """selection='full', adopt='best', repair=0: these tests pin the paper's choices and request
    counts exactly (a repair round asks the scripted optimizer again; tests of it set repair)."""
    base = dict(selection="full", adopt="best", repair=0, num_search_epochs=1, opt_batch_size=8, num_generated_instructions_in_each_step=4,
                initial_instruction="start", momentum_para_name="-", momentum_selection_name="-",
                momentum_update_name="-", learning_rate_name="wo_lr", decay_strategy="-")
    return GPOConfig(**{**base, **kw})


class Recorder(NoHooks):
    def __init__(self):
        self.states, self.events = [], []

    def save_state(self, task, state):
        self.states.append(state)

    def event(self, kind, **data):
        self.events.append((kind, data))


GPO = [sys.executable, "-m", "gpo.cli"]
TINY = ["--task", "navigate", "--max-examples", "train=4", "--max-examples", "eval=3", "--max-examples", "test=3",
        "--opt-batch-size", "4", "--num-search-epochs", "2", "--num-generated-instructions-in-each-step", "2",
        "--scorer-max-tokens", "16", "--optimizer-max-tokens", "64", "--no-probe",  # (--probe after it turns it on)
        "--no-constrained-replies"]  # grammar decoding slows the embedded optimizer; these runs test the machinery


def gpo(*args, cwd=None, check=True, timeout=600):
    proc = subprocess.run(GPO + list(args), capture_output=True, text=True, cwd=cwd, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc
