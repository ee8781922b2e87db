"""Batched decoding for the embedded model: many sequences in one llama.cpp context.

``--scorer-parallel N`` sends up to N requests to one loaded model at once. They are
decoded together through llama.cpp's multi-sequence batch API: every step is one
``llama_decode`` call whose batch holds the next token of every live sequence and as
much of newly admitted prompts as fits (chunked prefill), so the weights are read once
per step for all of them. It is continuous batching: a finished sequence frees its slot
and its KV cells at once, and a waiting request takes the slot on the next step. Each
slot is a KV stream of its own (``CTX_PER_SEQUENCE`` tokens); a request longer than a
slot raises ``TooLong`` and is answered on the one-at-a-time path. The context copies
the loaded model's own settings: with a different attention kernel the logits differ.

Each sequence keeps what ``Llama.create_chat_completion`` / ``create_completion`` do
on the one-at-a-time path (``--scorer-parallel 1``, left unchanged): the GGUF's own
chat template and stop strings, the same sampler chain (greedy at temperature 0;
top-k 40, typical 1, top-p 0.95, min-p 0.05, temperature, seeded draw otherwise),
EOS / end-of-generation tokens, stop strings and ``max_tokens``. llama.cpp's batched
kernels may round differently from the single-sequence ones, so a greedy text can
differ from the one-at-a-time text now and then; the response cache keeps reruns and
resumes identical either way (docs/SCALE.md gives the share measured).

The decoder runs on the loaded model's own worker thread (see ``gpo.llm.local``), so
llama.cpp still runs on one OS thread and one-at-a-time requests for the same model
simply wait their turn.
"""

from __future__ import annotations

import collections
import ctypes
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field

from gpo.llm.base import FatalLLMError, Request, Sample
from gpo.llm.prefix import PrefixCache, plan

TOP_K, TYPICAL_P, TOP_P, MIN_P = 40, 1.0, 0.95, 0.05  # create_chat_completion's defaults
CTX_PER_SEQUENCE = 4096  # KV cells of each parallel slot (at most the model's n_ctx)


class TooLong(ValueError):
    """The request does not fit one slot's KV cells; answer it one at a time instead."""


@dataclass
class _Job:
    tokens: list[int]
    max_tokens: int
    stop: list[str]
    temperature: float
    seed: int
    future: Future
    ones: tuple[tuple[int, int], ...] = ()  # with prefix reuse: a continued answer (read one token at a time)
    marks: tuple[int, ...] = ()  # with prefix reuse: where the chat's messages start


@dataclass
class _Sequence:
    job: _Job
    seq_id: int
    to_feed: list[int]
    pos: int = 0
    reused: int = 0  # prompt tokens restored from the prefix cache
    plan: list[int] = field(default_factory=list)  # with prefix reuse: where the prompt's chunks end
    ends: list[int] = field(default_factory=list)  # where the chunks read so far ended
    sampler: object = None
    out: list[int] = field(default_factory=list)
    data: bytearray = field(default_factory=bytearray)  # the output so far, for stop strings


class BatchDecoder:
    """Decodes up to ``parallel`` sequences at a time in a context of its own.

    ``submit`` is thread-safe and returns a ``concurrent.futures.Future`` of a ``Sample``.
    ``run_pending`` is the decode loop; it is scheduled on the model's worker thread
    whenever work arrives and returns once nothing is left.
    """

    def __init__(self, model, worker, *, parallel: int, n_ctx: int, prefix: PrefixCache | None = None):
        import llama_cpp

        self.model, self.worker, self.parallel, self.n_ctx = model, worker, parallel, n_ctx
        self.prefix = prefix  # None: today's path, prompts fed in whatever chunks fit a step
        self._lock = threading.Lock()
        self._pending: collections.deque[_Job] = collections.deque()
        self._scheduled = False
        self.dropped = 0  # requests given up because their caller cancelled them
        self.live = 0  # sequences in the batch now (read by tests and progress; written by the loop)
        self.n_batch = max(512, min(2048, n_ctx))
        self.slot = min(n_ctx, CTX_PER_SEQUENCE)
        self._ctx = _context(model, parallel, self.slot, self.n_batch)
        self._memory = llama_cpp.llama_get_memory(self._ctx)
        self._vocab = llama_cpp.llama_model_get_vocab(model._model.model)
        self._batch = llama_cpp.llama_batch_init(self.n_batch, 0, 1)
        self.reader = PromptTokens(model, continued=parallel == 1)

    def close(self) -> None:
        import llama_cpp

        if self._ctx:
            llama_cpp.llama_batch_free(self._batch)
            llama_cpp.llama_free(self._ctx)
            self._ctx = None

    # ------------------------------------------------------------ submitting

    def submit(self, request: Request, seed: int) -> Future:
        """Queue one sample of ``request`` (sample seed ``seed``)."""
        future: Future = Future()
        tokens, template_stops = self.reader.tokens_of(request)
        stop_strings = list(request.stop) + template_stops
        max_tokens = request.max_tokens if request.max_tokens > 0 else self.n_ctx
        if len(tokens) + max_tokens > self.slot:
            raise TooLong(f"{len(tokens)} prompt + {max_tokens} new tokens exceed a slot of {self.slot}")
        job = _Job(tokens, max_tokens, stop_strings, request.temperature, seed, future)
        if self.prefix is not None and request.messages is not None:
            job.marks, job.ones = self.reader.structure(request, tokens)
        with self._lock:
            self._pending.append(job)
            start = not self._scheduled
            self._scheduled = True
        if start:
            self.worker.submit(self.run_pending)
        return future

    # ------------------------------------------------------------ decoding

    def run_pending(self) -> None:
        live: dict[int, _Sequence] = {}
        try:
            while True:
                self._admit(live)
                if not live:
                    with self._lock:
                        if not self._pending:
                            self._scheduled = False
                            return
                    continue
                self._step(live)
        except BaseException as err:  # noqa: BLE001 - every waiting caller hears of it
            for seq in list(live.values()):
                self._finish(seq, live, error=err)
            with self._lock:
                jobs, self._scheduled = list(self._pending), False
                self._pending.clear()
            for job in jobs:
                job.future.set_exception(err)
            if not isinstance(err, Exception):
                raise

    def _admit(self, live: dict[int, _Sequence]) -> None:
        with self._lock:
            while self._pending and len(live) < self.parallel:
                job = self._pending.popleft()
                if job.future.cancelled():  # its caller went away (Ctrl-C, a stopped run)
                    self.dropped += 1
                    continue
                seq_id = next(i for i in range(self.parallel) if i not in live)
                seq = live[seq_id] = _Sequence(job, seq_id, list(job.tokens), sampler=_sampler(job))
                if self.prefix is not None:
                    seq.plan = plan(len(job.tokens), job.ones, job.marks)
                    seq.pos = seq.reused = self.prefix.restore(self._ctx, self._memory, seq_id, job.tokens, seq.plan)
                    seq.ends = [e for e in seq.plan if e <= seq.pos]
                    del seq.to_feed[: seq.pos]
            self.live = len(live)

    def _step(self, live: dict[int, _Sequence]) -> None:
        """One decode call: the next token of every sequence that is generating, and as
        much of the newly admitted prompts as the batch still holds (chunked prefill)."""
        for seq in [s for s in live.values() if s.job.future.cancelled()]:
            self._finish(seq, live)
            self.dropped += 1
        if not live:
            return
        if self.prefix is not None:
            self._canonical_step(live)
            return
        decoding = [s for s in live.values() if len(s.to_feed) == 1]
        room = self.n_batch - len(decoding)
        items = [(s, 1) for s in decoding]
        for seq in [s for s in live.values() if len(s.to_feed) > 1]:
            if room <= 0:
                break
            items.append((seq, min(room, len(seq.to_feed))))
            room -= items[-1][1]
        self._decode(items, live=live)

    def _canonical_step(self, live: dict[int, _Sequence]) -> None:
        """With prefix reuse: one decode call for the next token of every sequence that is
        generating, then one call for the next chunk of each prompt being read, as its plan
        says (so a prompt's chunks are the same whatever else runs; ``gpo.llm.prefix``).

        One at a time, a sequence's state is kept when it finishes (its prompt and answer:
        the next round continues it); batched, when its prompt is read (the generated
        tokens shared their decode calls with other sequences, which is not reproducible)."""
        generating = [s for s in live.values() if s.pos >= len(s.job.tokens)]
        if generating:
            self._decode([(s, 1) for s in generating], live=live)
        for seq in [s for s in live.values() if s.pos < len(s.job.tokens)]:
            end = next(e for e in seq.plan if e > seq.pos)
            self.prefix.evaluated += end - seq.pos
            self._decode([(seq, end - seq.pos)], live=live)

    def _decode(self, items: list[tuple[_Sequence, int]], *, live) -> None:
        """Feed each sequence its next ``take`` tokens; sample one token for each sequence
        that has then fed everything it had."""
        import llama_cpp

        n, wants = _fill(self._batch, items)
        code = llama_cpp.llama_decode(self._ctx, self._batch)
        if code != 0:
            raise FatalLLMError(f"llama_decode failed with code {code} ({len(items)} sequences, {n} tokens)")
        if self.prefix is not None and self.parallel > 1:  # batched, a prompt's state is kept once it is read
            for seq, _ in wants:
                if seq.pos == len(seq.job.tokens) and seq.pos > seq.reused:
                    self.prefix.keep(self._ctx, seq.seq_id, seq.job.tokens, seq.ends)
        for seq, index in wants:
            token = llama_cpp.llama_sampler_sample(seq.sampler, self._ctx, index)
            if llama_cpp.llama_vocab_is_eog(self._vocab, token):
                self._finish(seq, live, reason="stop")
                continue
            seq.out.append(token)
            cut = self._stopped_at(seq, token)
            if cut is not None:
                self._finish(seq, live, reason="stop", text=cut)
                continue
            if len(seq.out) >= seq.job.max_tokens:
                self._finish(seq, live, reason="length")
            else:
                seq.to_feed.append(token)

    def _stopped_at(self, seq: _Sequence, token: int) -> str | None:
        """The text up to the stop string the new token completed, or None."""
        if not seq.job.stop:
            return None
        seq.data += self.model.detokenize([token])  # one token's piece at a time; the final text is detokenized whole
        if not any(stop and stop in seq.data.decode("utf-8", errors="ignore") for stop in seq.job.stop):
            return None
        text = self._text(seq)
        cut = min((text.find(s) for s in seq.job.stop if s and s in text), default=-1)
        return text[:cut] if cut >= 0 else None

    def _text(self, seq: _Sequence) -> str:
        data = self.model.detokenize(seq.out, prev_tokens=seq.job.tokens)
        return data.decode("utf-8", errors="ignore")

    def _finish(self, seq: _Sequence, live: dict[int, _Sequence], *, reason: str = "stop",
                text: str | None = None, error: BaseException | None = None) -> None:
        import llama_cpp

        live.pop(seq.seq_id, None)
        self.live = len(live)
        if self.prefix is not None and self.parallel == 1 and error is None and seq.pos > seq.reused:
            fed = (seq.job.tokens + seq.out)[: seq.pos]  # the last token sampled is not read yet
            self.prefix.keep(self._ctx, seq.seq_id, fed, seq.ends)
        llama_cpp.llama_memory_seq_rm(self._memory, seq.seq_id, -1, -1)
        llama_cpp.llama_sampler_free(seq.sampler)
        if seq.job.future.done():  # cancelled by its caller
            return
        if error is not None:
            seq.job.future.set_exception(error)
            return
        seq.job.future.set_result(Sample(
            text=self._text(seq) if text is None else text,
            finish_reason=reason,
            prompt_tokens=len(seq.job.tokens),
            completion_tokens=len(seq.out),
            cached_prompt_tokens=seq.reused,
        ))


class PromptTokens:
    """A request's prompt as the loaded model reads it: the GGUF's chat template applied as
    ``Llama``'s chat handler does, tokenized, with the template's stop strings; and, for prefix
    reuse, where its messages start. ``continued``: a request that continues its last answer
    has that answer's span found (one sequence at a time only, where its state was kept)."""

    def __init__(self, model, continued: bool):
        self.model, self.continued = model, continued
        self.formatter = _chat_formatter(model)

    def prompt(self, request: Request) -> tuple[str, bool, list[str]]:
        """The text to tokenize, whether to add BOS, and the chat template's stop strings.

        Raw prompts are tokenized as ``create_completion`` does (BOS where the model wants
        one); chat prompts as the chat handler does.
        """
        if request.messages is None:
            return request.prompt or "", True, []
        result = self.formatter(messages=request.message_dicts())
        stops = result.stop if isinstance(result.stop, list) else ([result.stop] if result.stop else [])
        return result.prompt, not result.added_special, stops

    def tokens_of(self, request: Request) -> tuple[list[int], list[str]]:
        """The request's prompt as the model reads it, and the chat template's stop strings."""
        prompt, add_bos, template_stops = self.prompt(request)
        return self.tokens(prompt, add_bos), template_stops

    def tokens(self, text: str, add_bos: bool) -> list[int]:
        return self.model.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)

    def structure(self, request: Request, tokens: list[int]) -> tuple[tuple[int, ...], tuple[tuple[int, int], ...]]:
        """Where a chat's messages start in ``tokens`` (the longest start each shorter chat,
        as rendered, shares with it), and, where the request continues its last answer
        (``Request.continues``, read one token at a time as it was generated; one at a time
        only, where that answer's state was kept), that answer's span."""
        messages = request.message_dicts()
        marks, span = [], ()
        for i in range(1, len(messages)):
            asked, bos, _ = self.prompt(Request.chat(messages[:i]))
            start = self.tokens(asked, bos)
            shared = next((k for k, (a, b) in enumerate(zip(start, tokens)) if a != b), min(len(start), len(tokens)))
            marks.append(shared)
            last = i == len(messages) - 1 or all(m["role"] != "assistant" for m in messages[i + 1:])
            if (request.continues and self.continued and last and messages[i]["role"] == "assistant"
                    and shared == len(start) and messages[i]["content"]):
                answer = self.model.tokenize(messages[i]["content"].encode("utf-8"), add_bos=False, special=False)
                end = shared + len(answer)
                if tokens[shared:end] == answer and end < len(tokens):
                    span = ((shared, end),)
        return tuple(sorted(set(marks) - {0})), span


def _context(model, parallel: int, slot: int, n_batch: int):
    """A llama.cpp context for ``parallel`` sequences of ``slot`` KV cells each: the loaded
    model's own settings (threads, attention kernel, KV types), then ours."""
    import llama_cpp
    from llama_cpp._utils import suppress_stdout_stderr

    params = type(model.context_params).from_buffer_copy(model.context_params)
    params.n_ctx = slot * parallel
    params.n_batch = params.n_ubatch = n_batch
    params.n_seq_max = parallel
    # One KV stream per sequence. (A unified cache gave wrong logits here, with
    # 0.3.36, when one sequence's prompt shared a batch with another's next token.)
    params.kv_unified = False
    with suppress_stdout_stderr(disable=False):
        ctx = llama_cpp.llama_init_from_model(model._model.model, params)
    if not ctx:
        raise FatalLLMError(f"llama.cpp could not create a context for {parallel} parallel sequences")
    return ctx


def _fill(batch, items: list[tuple[_Sequence, int]]) -> tuple[int, list[tuple[_Sequence, int]]]:
    """Put each sequence's next ``take`` tokens in the batch; the tokens in it, and the
    sequences that have then fed everything they had, with the index of their last token."""
    n, wants = 0, []
    for seq, take in items:
        chunk = seq.to_feed[:take]
        for k, token in enumerate(chunk):
            batch.token[n] = token
            batch.pos[n] = seq.pos + k
            batch.n_seq_id[n] = 1
            batch.seq_id[n][0] = seq.seq_id
            batch.logits[n] = False
            n += 1
        seq.pos += len(chunk)
        seq.ends.append(seq.pos)
        del seq.to_feed[: len(chunk)]
        if not seq.to_feed:
            batch.logits[n - 1] = True
            wants.append((seq, n - 1))
    batch.n_tokens = n
    return n, wants


def _sampler(job: _Job):
    """The sampler chain ``Llama._init_sampler`` builds for these settings."""
    import llama_cpp

    chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
    add = lambda s: llama_cpp.llama_sampler_chain_add(chain, s)  # noqa: E731
    if job.temperature == 0:
        add(llama_cpp.llama_sampler_init_greedy())
    else:
        add(llama_cpp.llama_sampler_init_top_k(TOP_K))
        add(llama_cpp.llama_sampler_init_typical(TYPICAL_P, 1))
        add(llama_cpp.llama_sampler_init_top_p(TOP_P, 1))
        add(llama_cpp.llama_sampler_init_min_p(MIN_P, 1))
        add(llama_cpp.llama_sampler_init_temp(job.temperature))
        add(llama_cpp.llama_sampler_init_dist(ctypes.c_uint32(job.seed & 0xFFFFFFFF).value))
    return chain


def _chat_formatter(model):
    """The formatter behind the model's chat handler: the GGUF's template, as ``Llama`` builds it."""
    from llama_cpp import llama_chat_format

    template = (model.metadata or {}).get("tokenizer.chat_template")
    if not template:
        raise FatalLLMError("batched decoding needs a GGUF with a chat template (use --scorer-parallel 1)")
    eos, bos = model.token_eos(), model.token_bos()
    return llama_chat_format.Jinja2ChatFormatter(
        template=template,
        eos_token=model._model.token_get_text(eos) if eos != -1 else "",
        bos_token=model._model.token_get_text(bos) if bos != -1 else "",
        stop_token_ids=[eos],
    )
