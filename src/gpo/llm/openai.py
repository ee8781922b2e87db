"""Any OpenAI-compatible endpoint: OpenAI, ``vllm serve``, llama.cpp's server, Ollama, SGLang.

Uses the official SDK (``AsyncOpenAI``) with its own retries switched off: gpo's
retry policy (``gpo.llm.retry``) decides, so that 429/5xx/timeouts back off and
400/401/403/404 fail at once. Error messages never contain the API key.
"""

from __future__ import annotations

import asyncio
import os
import re
from dataclasses import dataclass, field

from gpo.llm.base import LLM, FatalLLMError, LLMError, Request, Sample, TransientLLMError

RETRYABLE_STATUS = {408, 409, 425, 429}
_KEYLIKE = re.compile(r"(sk-[A-Za-z0-9_\-*]{3,}|Bearer\s+\S+)")


def redact(text: str, secret: str | None) -> str:
    """Remove the API key (and anything key-shaped) from an error text."""
    if secret:
        text = text.replace(secret, "***")
    return _KEYLIKE.sub("***", text)


def _retry_after(headers) -> float | None:
    if not headers:
        return None
    for name, scale in (("retry-after-ms", 1e-3), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is not None:
            try:
                return float(value) * scale
            except ValueError:
                return None
    return None


def resolve_endpoint(base_url: str | None, api_key: str | None) -> tuple[str | None, str]:
    """Base URL and key from arguments, else OPENAI_BASE_URL / OPENAI_API_KEY.

    Local servers need no key; the SDK insists on one, so a placeholder is used.
    """
    base_url = base_url or os.environ.get("OPENAI_BASE_URL") or None
    api_key = api_key or os.environ.get("OPENAI_API_KEY") or "no-key"
    return base_url, api_key


def translate_error(err: Exception, where: str, secret: str | None) -> LLMError:
    """Map an SDK exception onto retryable / fatal, with a clean message."""
    import openai

    if isinstance(err, openai.APIStatusError):
        code = err.status_code
        body = err.body if isinstance(err.body, dict) else {}
        detail = body.get("message") or (body.get("error") or {}).get("message") if body else None
        msg = redact(f"{where}: HTTP {code}: {detail or err.message}", secret)
        if code in RETRYABLE_STATUS or code >= 500:
            return TransientLLMError(msg, retry_after=_retry_after(err.response.headers))
        hint = {
            401: " (check the API key: OPENAI_API_KEY or --*-api-key)",
            403: " (the key has no permission for this model or endpoint)",
            404: " (unknown model or wrong base URL)",
        }.get(code, "")
        return FatalLLMError(msg + hint)
    if isinstance(err, openai.APITimeoutError):
        return TransientLLMError(f"{where}: request timed out")
    if isinstance(err, openai.APIConnectionError):
        return TransientLLMError(f"{where}: cannot connect ({redact(str(err.__cause__ or err), secret)})")
    return LLMError(redact(f"{where}: {err}", secret))


@dataclass
class OpenAILLM(LLM):
    """Chat (or raw completion) requests to an OpenAI-compatible server."""

    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    timeout: float = 120.0
    use_completions_api: bool = False  # raw-prompt base models via /v1/completions

    def __post_init__(self) -> None:
        super().__post_init__()
        self.base_url, self._key_value = resolve_endpoint(self.base_url, self.api_key)
        self.api_key = None  # keep the key out of reprs and configs
        self._client = None
        self._llama_cpp_json = False  # the server refused OpenAI's json_schema form; use llama-cpp-python's
        self._llama_server: asyncio.Future | None = None  # whether it is llama.cpp's llama-server (asked once)

    def _response_format(self, shape) -> dict:
        """A reply shape as structured output: OpenAI's (and vLLM's) ``json_schema`` form, or
        llama-cpp-python's server's ``json_object`` with a ``schema`` once it refused the first."""
        if self._llama_cpp_json:
            return {"type": "json_object", "schema": shape.json_schema()}
        return {"type": "json_schema", "json_schema": {"name": "prompt", "strict": True, "schema": shape.json_schema()}}

    @property
    def backend_id(self) -> str:
        return f"openai:{self.base_url or 'https://api.openai.com/v1'}"

    def client(self):
        if self._client is None:
            from openai import AsyncOpenAI

            self._client = AsyncOpenAI(
                base_url=self.base_url, api_key=self._key_value, max_retries=0, timeout=self.timeout
            )
        return self._client

    async def _sample(self, request: Request, indices: list[int]) -> list[Sample]:
        """Ask for all samples in one call with ``n``; top up one by one if the server
        returns fewer choices (llama.cpp's server ignores ``n``)."""
        out: list[Sample] = []
        while len(out) < len(indices):
            want = len(indices) - len(out)
            out.extend(await self._call_once(request, want, request.seed + indices[len(out)]))
        return out[: len(indices)]

    async def is_llama_server(self) -> bool:
        """Whether the endpoint is llama.cpp's own server (``llama-server``), asked once through
        its ``/props`` route: it takes ``cache_prompt``, which another endpoint may refuse."""
        if self._llama_server is None:
            self._llama_server = asyncio.ensure_future(_props_of(self.base_url, self._key_value, self.timeout))
        return await asyncio.shield(self._llama_server)

    async def _call_once(self, request: Request, n: int, seed: int) -> list[Sample]:
        params = dict(
            model=self.model,
            temperature=request.temperature,
            max_tokens=request.max_tokens,
            n=n,
            seed=seed,
        )
        if request.stop:
            params["stop"] = list(request.stop)
        if request.shape is not None:
            params["response_format"] = self._response_format(request.shape)
        if self.base_url and await self.is_llama_server():
            params["extra_body"] = {"cache_prompt": True}  # reuse the KV of the slot's previous prompt
        try:
            if request.messages is not None and not self.use_completions_api:
                resp = await self.client().chat.completions.create(
                    messages=request.message_dicts(), **params
                )
                texts = [(c.message.content or "", c.finish_reason or "stop") for c in resp.choices]
            else:
                prompt = request.prompt if request.prompt is not None else _flatten(request)
                resp = await self.client().completions.create(prompt=prompt, **params)
                texts = [(c.text or "", c.finish_reason or "stop") for c in resp.choices]
        except Exception as err:  # noqa: BLE001 - translated into our error classes
            import openai

            if request.shape is not None and not self._llama_cpp_json and _refuses_json_schema(err):
                self._llama_cpp_json = True  # llama-cpp-python's server: its own form, asked again at once
                return await self._call_once(request, n, seed)
            if isinstance(err, openai.OpenAIError):
                raise translate_error(err, self.describe(), self._key_value) from None
            raise
        if not texts:
            raise TransientLLMError(f"{self.describe()}: the server returned no choices")
        if request.shape is not None:
            texts = [(request.shape.from_json(t), fr) for t, fr in texts]
        usage = resp.usage
        p_tok = getattr(usage, "prompt_tokens", 0) or 0
        c_tok = getattr(usage, "completion_tokens", 0) or 0
        # OpenAI's (and vLLM's) count of prompt tokens read from the server's prompt cache; llama-server's
        # own figure where it gives no such field
        cached = (getattr(getattr(usage, "prompt_tokens_details", None), "cached_tokens", 0)
                  or (getattr(resp, "timings", None) or {}).get("cache_n") or 0)
        # The prompt is paid once per call; spread completion tokens over the choices.
        return [
            Sample(t, fr, p_tok if i == 0 else 0, c_tok // len(texts), cached if i == 0 else 0)
            for i, (t, fr) in enumerate(texts)
        ]

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


async def _props_of(base_url: str, key: str | None, timeout: float) -> bool:
    """Whether ``base_url`` (its ``/v1`` dropped) answers llama-server's ``/props`` as llama-server does."""
    import json
    import urllib.error
    import urllib.request

    root = base_url.rstrip("/").removesuffix("/v1")
    request = urllib.request.Request(f"{root}/props", headers={"Authorization": f"Bearer {key}"} if key else {})

    def ask() -> bool:
        try:
            with urllib.request.urlopen(request, timeout=min(timeout, 10.0)) as resp:  # noqa: S310 - the user's endpoint
                return resp.status == 200 and "default_generation_settings" in (json.loads(resp.read()) or {})
        except (OSError, ValueError, urllib.error.URLError):
            return False

    return await asyncio.to_thread(ask)


def _refuses_json_schema(err: Exception) -> bool:
    """A server's answer that it does not know OpenAI's ``json_schema`` response format."""
    status = getattr(err, "status_code", None)
    return status in (400, 422, 500) and "response_format" in str(err) and "json_object" in str(err)


def _flatten(request: Request) -> str:
    return "\n\n".join(content for _, content in request.messages or ())
