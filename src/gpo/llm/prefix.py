"""Prefix reuse for the embedded model: a prompt's KV state is computed once per token prefix.

Scoring sends many requests that begin alike: every example of a split starts with the
chat template's header and the instruction (and the demonstrations, where there are
some), and an example's second round starts with its whole first round and the answer
the model gave. ``PrefixCache`` keeps the KV state of such prefixes, so a request that
begins with one starts from it and evaluates only what is new (vLLM's automatic prefix
caching and SGLang's RadixAttention do this for servers; llama.cpp offers the sequence
states it rests on). The second round thus continues the first: its prompt, and the
answer as it was generated, are not read again.

**Reproducibility.** llama.cpp's results depend on how a prompt is split into decode
calls (a one-token call takes another kernel than a 32-token one). So with prefix reuse
on, a request is always evaluated in the chunks of its *plan* (``plan``), whether or not
a start was restored: ``BLOCK``-token blocks counted from the start of each chat message
(so requests that share their first messages, such as a split's demonstrations, share
whole chunks), and one token at a time over an earlier answer of the model that the
request continues (``Request.continues``), as it was generated. A state is kept with the chunks that computed it
and serves only a request whose plan has the same chunks up to where it resumes, and it
is only ever restored into an empty sequence, so its KV cells lie where a fresh
evaluation puts them. A request therefore computes exactly what it computes fresh: the
same records for two fresh runs, a rerun and a resumed run.

**Memory.** States are kept least recently used first out, within ``capacity`` bytes
(``--scorer-prefix-cache MB``; KV bytes per token depend on the model, about 23 kB for
SmolLM2-135M). Nothing above ``gpo.llm`` knows of any of this.
"""

from __future__ import annotations

import collections
import ctypes
from dataclasses import dataclass

BLOCK = 32  # tokens per block of a prompt's plan (read about as fast as in larger chunks, measured)
DEFAULT_MB = 512  # the default capacity, in MiB (--scorer-prefix-cache / --optimizer-prefix-cache)


def plan(n: int, ones: tuple[tuple[int, int], ...] = (), marks: tuple[int, ...] = ()) -> list[int]:
    """The ends of the chunks a prompt of ``n`` tokens is read in: ``BLOCK`` tokens at a time
    from its start and from each of ``marks`` (where a chat's messages start, so that requests
    sharing their first messages share whole chunks), and one token at a time inside each
    ``(start, end)`` span of ``ones``."""
    ends, pos = [], 0
    anchors = sorted({0, *marks, *(a for a, _ in ones), *(b for _, b in ones)})
    while pos < n:
        if any(a <= pos < b for a, b in ones):
            pos += 1
        else:
            anchor = max(a for a in anchors if a <= pos)
            pos = min([n, anchor + ((pos - anchor) // BLOCK + 1) * BLOCK, *(a for a in anchors if a > pos)])
        ends.append(pos)
    return ends


def _keys(tokens: list[int], ends: list[int]) -> list[int]:
    """One key per chunk end: a hash of the tokens so far and the chunks that read them."""
    keys, key, start = [], 0, 0
    for end in ends:
        key = hash((key, end - start, tuple(tokens[start:end])))
        keys.append(key)
        start = end
    return keys


@dataclass(eq=False)
class _State:
    """The KV state of one sequence that read ``tokens`` in chunks ending at ``ends``."""

    tokens: list[int]
    ends: list[int]
    keys: list[int]
    data: ctypes.Array


class PrefixCache:
    """KV states of token prefixes with the chunks that computed them, least recently used
    out first.

    ``restore`` puts the longest kept start of a request (leaving at least one token to
    read) into an emptied sequence and returns its length; ``keep`` saves a sequence's
    state. Both run on the model's worker thread.
    """

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.used = 0  # bytes held now
        self._states: collections.OrderedDict[int, _State] = collections.OrderedDict()  # id -> state, LRU order
        self._by_key: dict[int, _State] = {}
        # counters over the cache's life (read by tests and benches)
        self.evaluated = 0  # prompt tokens decoded
        self.reused = 0  # prompt tokens restored instead
        self.evicted = 0  # states dropped for room

    def __len__(self) -> int:
        return len(self._states)

    def clear(self) -> None:
        self._states.clear()
        self._by_key.clear()
        self.used = 0

    def longest(self, tokens: list[int], ends: list[int]) -> tuple[int, _State | None]:
        """The longest kept start of ``tokens`` read in these chunks, shorter than all of them."""
        for end, key in reversed(list(zip(ends, _keys(tokens, ends)))):
            state = self._by_key.get(key)
            if end < len(tokens) and state is not None and _same_start(state, tokens, ends, end):
                self._states.move_to_end(id(state))
                return end, state
        return 0, None

    def restore(self, ctx, memory, seq_id: int, tokens: list[int], ends: list[int]) -> int:
        """Empty sequence ``seq_id`` and fill it with the longest kept start of ``tokens``
        (read in chunks ending at ``ends``); returns how many tokens it holds now."""
        import llama_cpp

        llama_cpp.llama_memory_seq_rm(memory, seq_id, -1, -1)
        length, state = self.longest(tokens, ends)
        if state is None:
            return 0
        if llama_cpp.llama_state_seq_set_data(ctx, state.data, len(state.data), seq_id) != len(state.data):
            llama_cpp.llama_memory_seq_rm(memory, seq_id, -1, -1)
            self._drop(state)
            return 0
        llama_cpp.llama_memory_seq_rm(memory, seq_id, length, -1)  # a longer state serves its start
        self.reused += length
        return length

    def keep(self, ctx, seq_id: int, tokens: list[int], ends: list[int]) -> None:
        """Save sequence ``seq_id``'s state: it read ``tokens`` in chunks ending at ``ends``."""
        import llama_cpp

        keys = _keys(tokens, ends)
        if not keys or keys[-1] in self._by_key:
            return
        size = llama_cpp.llama_state_seq_get_size(ctx, seq_id)
        if size > self.capacity:
            return
        while self._states and self.used + size > self.capacity:
            self._drop(next(iter(self._states.values())))
            self.evicted += 1
        data = (ctypes.c_uint8 * size)()
        if llama_cpp.llama_state_seq_get_data(ctx, data, size, seq_id) != size:
            return
        state = _State(list(tokens), list(ends), keys, data)
        for key in keys:
            self._by_key[key] = state  # the newest state serves a shared start
        self._states[id(state)] = state
        self.used += size

    def _drop(self, state: _State) -> None:
        self._states.pop(id(state), None)
        self.used -= len(state.data)
        for key in state.keys:
            if self._by_key.get(key) is state:
                del self._by_key[key]


def _same_start(state: _State, tokens: list[int], ends: list[int], end: int) -> bool:
    """Whether ``state`` read the first ``end`` tokens as a request would (a hash can collide)."""
    return (state.tokens[:end] == tokens[:end]
            and [e for e in state.ends if e <= end] == [e for e in ends if e <= end])
