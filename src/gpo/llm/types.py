"""The model layer's data: requests, samples, completions, usage, prices, errors.

Everything else in ``gpo.llm`` builds on these; this module imports only gpo.errors and gpo.names,
so the backends, the cache and the retry policy can all use it without a circle.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Sequence

from gpo.errors import FatalLLMError, LLMError, TransientLLMError  # noqa: F401 - the model layer's errors
from gpo.names import DEFAULT_MAX_TOKENS

Message = dict[str, str]  # {"role": "user" | "assistant" | "system", "content": "..."}


@dataclass(frozen=True)
class ReplyShape:
    """The shape a reply must take, for backends that can hold decoding to it: one text of
    1 to ``max_words`` words on one line, between ``open`` and ``close``. llama.cpp models
    decode under a grammar (``gbnf``); OpenAI-compatible endpoints are asked for JSON by
    ``response_format`` (``json_schema``) and their reply is put back in the tags
    (``from_json``), so a caller parses every backend's reply the same way."""

    open: str = "<START>"
    close: str = "<END>"
    max_words: int = 150
    max_word_chars: int = 40

    def gbnf(self) -> str:
        # a word holds no whitespace as Python's str.split knows it (so words are counted alike) and no tag
        spaces = "\\x00-\\x20\\x7f\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
        word = f'[^{spaces}<>]{{1,{self.max_word_chars}}}'
        return (f'root ::= {json.dumps(self.open)} " "? word (" " word){{0,{self.max_words - 1}}} '
                f'{json.dumps(self.close)}\nword ::= {word}\n')

    def json_schema(self) -> dict:
        """One non-empty string. No maxLength: a server that turns the schema into a grammar
        (llama.cpp) unrolls a length bound into one rule per character, and a bound of a few
        thousand stopped a real server; the word budget is checked on the reply anyway."""
        return {"type": "object", "additionalProperties": False, "required": ["prompt"],
                "properties": {"prompt": {"type": "string", "minLength": 1}}}

    def from_json(self, text: str) -> str:
        """A JSON reply as the tagged text the caller parses; anything else as it came."""
        try:
            prompt = json.loads(text)["prompt"]
        except (ValueError, KeyError, TypeError):
            return text
        return f"{self.open}{prompt}{self.close}" if isinstance(prompt, str) else text


@dataclass(frozen=True)
class Request:
    """One prompt with its sampling parameters.

    ``messages`` for chat models, or ``prompt`` (a raw string) for base models.
    ``n`` samples are wanted; sample ``i`` is reproducible: it is cached under its
    index, and local backends sample it with seed ``seed + i``.
    """

    messages: tuple[tuple[str, str], ...] | None = None
    prompt: str | None = None
    temperature: float = 0.0
    max_tokens: int = DEFAULT_MAX_TOKENS
    n: int = 1
    stop: tuple[str, ...] = ()
    seed: int = 0
    shape: ReplyShape | None = None  # constrain the reply (backends that can); None: free text
    # the chat's last assistant turn is this model's own answer to the turns before it, as it
    # was generated: a backend may continue that request instead of reading it all again
    # (the embedded model does, gpo.llm.prefix). What is asked is the same: not in the cache key.
    continues: bool = False

    def __post_init__(self) -> None:
        if (self.messages is None) == (self.prompt is None):
            raise ValueError("a Request needs exactly one of messages= or prompt=")
        if self.n < 1:
            raise ValueError(f"Request.n must be >= 1, got {self.n}")

    @classmethod
    def chat(cls, messages: Sequence[Message] | str, **params) -> "Request":
        """A chat request; a bare string becomes one user message."""
        if isinstance(messages, str):
            messages = [{"role": "user", "content": messages}]
        return cls(messages=tuple((m["role"], m["content"]) for m in messages), **params)

    def message_dicts(self) -> list[Message]:
        return [{"role": r, "content": c} for r, c in self.messages or ()]

    def cache_fields(self) -> dict:
        """What identifies this request's output. The seed only matters when sampling."""
        fields = {
            "messages": self.messages,
            "prompt": self.prompt,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "stop": list(self.stop),
        }
        if self.temperature > 0:
            fields["seed"] = self.seed
        if self.shape is not None:  # only then: requests without a shape keep their old cache keys
            fields["shape"] = self.shape.gbnf()
        return fields


@dataclass(frozen=True)
class Sample:
    """One completion text with its own accounting."""

    text: str
    finish_reason: str = "stop"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0  # of the prompt tokens, those the server read from its own prompt cache


@dataclass
class Completion:
    """The answer to one Request: ``n`` texts, finish reasons and token usage."""

    samples: list[Sample]
    cached: int = 0  # how many samples came from the cache

    @property
    def text(self) -> str:
        return self.samples[0].text

    @property
    def texts(self) -> list[str]:
        return [s.text for s in self.samples]

    @property
    def finish_reasons(self) -> list[str]:
        return [s.finish_reason for s in self.samples]


@dataclass
class Usage:
    """Running totals for one model role (optimizer or scorer)."""

    calls: int = 0  # backend calls actually made (cache misses)
    samples: int = 0  # completions those calls produced
    cache_hits: int = 0  # samples served from the cache
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0  # prompt tokens an endpoint served from its prompt cache (billed lower)

    def as_dict(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def of_call(cls, samples: Sequence["Sample"]) -> "Usage":
        """One backend call that returned these samples (none: a call cut off in flight)."""
        return cls(calls=1, samples=len(samples), prompt_tokens=sum(s.prompt_tokens for s in samples),
                   completion_tokens=sum(s.completion_tokens for s in samples),
                   cached_prompt_tokens=sum(s.cached_prompt_tokens for s in samples))

    def add(self, other: "Usage") -> None:
        self.calls += other.calls
        self.samples += other.samples
        self.cache_hits += other.cache_hits
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.cached_prompt_tokens += other.cached_prompt_tokens


@dataclass(frozen=True)
class Pricing:
    """US dollars per million tokens, for a cost figure. ``cached_prompt``: the price of a prompt
    token an endpoint served from its prompt cache (None: the prompt price)."""

    prompt: float = 0.0
    completion: float = 0.0
    cached_prompt: float | None = None

    def cost(self, usage: Usage) -> float:
        cached = usage.cached_prompt_tokens
        cached_price = self.prompt if self.cached_prompt is None else self.cached_prompt
        return ((usage.prompt_tokens - cached) * self.prompt + cached * cached_price
                + usage.completion_tokens * self.completion) / 1e6


def dumps_canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
