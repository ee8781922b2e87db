"""Scoring a user's program (``gpo.tasks.program``): run it on examples with named prompts.

Each example runs in a thread of this module's own pool (a user's pipeline is ordinary
blocking Python; in asyncio's default pool, programs waiting for answers could take every
thread the model layer needs to give them);
its ``lm`` sends requests to the scorer model on the run's event loop, so they pass
through the response cache, retries, the meter and budgets. A program that raises is
named with the example; a prompt the program never reads is reported by the first
scoring (the Evaluator checks what the runs read); a failure of the model layer inside the program (a budget refusal, an endpoint
that gave up) stops the scoring as itself, even if the program caught it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Mapping
from dataclasses import dataclass, field

from gpo.llm.base import LLM, Request
from gpo.tasks.program import Program
from gpo.tasks.task import Example, Task, TaskError

_THREADS = concurrent.futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="gpo-program")


@dataclass
class ProgramLM:
    """What a program calls models with: ``lm(text, max_tokens=None, system=None) -> str``
    (greedy, the scorer model), from the program's own thread."""

    scorer: LLM
    loop: asyncio.AbstractEventLoop
    max_tokens: int
    calls: int = 0
    tokens: int = 0
    error: BaseException | None = None  # the model layer's failure (budget, endpoint), which the program may have caught
    _pending: set = field(default_factory=set)
    _closed: bool = False

    def __call__(self, text: str, max_tokens: int | None = None, system: str | None = None) -> str:
        if self._closed:
            raise asyncio.CancelledError("the scoring this program ran for was stopped")
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": text}]
        request = Request.chat(messages, temperature=0.0, max_tokens=max_tokens or self.max_tokens)
        future = asyncio.run_coroutine_threadsafe(self.scorer.generate([request]), self.loop)
        self._pending.add(future)
        try:
            (completion,) = future.result()
        except (concurrent.futures.CancelledError, asyncio.CancelledError) as err:
            self.error = self.error or asyncio.CancelledError()
            raise asyncio.CancelledError() from err
        except BaseException as err:  # the model layer's failure (a budget refusal, a dead endpoint): not the program's
            self.error = self.error or err
            raise
        finally:
            self._pending.discard(future)
        self.calls += 1
        self.tokens += sum(s.prompt_tokens + s.completion_tokens for s in completion.samples)
        return completion.text

    def close(self) -> None:
        """Stop the program's model calls (its scoring was cancelled)."""
        self._closed = True
        for future in list(self._pending):
            future.cancel()


class _Reads(Mapping):
    """The named prompts, remembering which ones the program read."""

    def __init__(self, prompts: dict[str, str]):
        self._prompts, self.read = prompts, set()

    def __getitem__(self, name: str) -> str:
        self.read.add(name)
        return self._prompts[name]

    def __iter__(self):
        return iter(self._prompts)

    def __len__(self) -> int:
        return len(self._prompts)


@dataclass
class ProgramRun:
    """One example's run: the output, its trace as text, and the model calls it made."""

    output: str
    trace: str | None
    calls: int
    tokens: int
    read: set[str]


async def run_program(program: Program, task: Task, text: str, split: str, index: int, example: Example,
                      scorer: LLM, max_tokens: int) -> ProgramRun:
    """Run the program on one example with the prompts ``text`` encodes."""
    prompts = _Reads(program.decode(text))
    lm = ProgramLM(scorer, asyncio.get_running_loop(), max_tokens)
    try:
        result = await asyncio.get_running_loop().run_in_executor(_THREADS, program.run, example, prompts, lm)
    except asyncio.CancelledError:
        lm.close()
        raise
    except Exception as err:  # noqa: BLE001 - a user's program: one line naming it and the example
        if lm.error is not None:
            raise lm.error from None
        raise TaskError(f"task {task.id}: program {program.source} raised {type(err).__name__}: {err} on {split} "
                        f"example {index} (input: {example.input[:60]!r})") from None
    if lm.error is not None:  # the program caught the model layer's failure: the scoring stops all the same
        raise lm.error
    output, trace = result if isinstance(result, tuple) and len(result) == 2 else (result, None)
    return ProgramRun(str(output if output is not None else ""), _trace_text(trace), lm.calls, lm.tokens, prompts.read)


def _trace_text(trace) -> str | None:
    """A program's trace as the optimizer reads it: ``name: text`` lines for a mapping."""
    if trace is None:
        return None
    if isinstance(trace, Mapping):
        return "\n".join(f"{k}: {str(v).strip()}" for k, v in trace.items())
    return str(trace).strip()

