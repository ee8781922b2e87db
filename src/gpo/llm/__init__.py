"""The model layer: the only part of gpo that talks to models."""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path
from typing import Sequence

from gpo.llm.base import (
    LLM,
    Completion,
    FatalLLMError,
    LLMError,
    Pricing,
    ReplyShape,
    Request,
    Sample,
    TransientLLMError,
    Usage,
)
from gpo.llm.cache import CacheError, ResponseCache
from gpo.llm.local import LocalLLM, default_gguf_path, gguf_backend_id
from gpo.llm.openai import OpenAILLM
from gpo.llm.pool import LLMMember, Pool
from gpo.llm.resolve import EMBEDDED_ALIASES, ModelRef, resolve_model  # noqa: F401 - re-exported


__all__ = [
    "LLM", "Completion", "FatalLLMError", "LLMError", "Pricing", "ReplyShape", "Request", "Sample",
    "TransientLLMError", "Usage", "CacheError", "ResponseCache", "LocalLLM", "OpenAILLM", "Pool",
    "build_llm", "default_gguf_path", "preflight", "resolve_model", "ModelRef",
]


def build_llm(
    model: str = "embedded",
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    cache: ResponseCache | None = None,
    concurrency: int | None = None,
    pricing: Pricing | None = None,
    parallel: int = 1,
    prefix_cache: int | None = None,
    gpus: Sequence[int] = (),
    replicas: int = 0,
    ray_address: str | None = None,
    replica_cpus: float = 1.0,
) -> LLM:
    """One model role from a short description.

    - ``embedded`` (default): SmolLM2-135M-Instruct in process;
    - a path ending in ``.gguf``: that file in process;
    - ``vllm:<model>``: vLLM in process (``gpus``: tensor parallel over them);
    - anything else, or any ``base_url``: an OpenAI-compatible endpoint serving that model;
      a comma-separated ``base_url`` is a fleet of endpoints (``gpo.llm.pool``).

    In-process models take ``parallel`` (batched decoding, llama.cpp), ``prefix_cache``
    (MiB of prompt-prefix states, llama.cpp; None: the default, 0: off) and ``gpus`` (ignored
    for endpoints); with ``replicas`` they run as that many Ray actors (``gpo.llm.ray_pool``).
    """
    ref = resolve_model(model, base_url)
    common = dict(cache=cache, pricing=pricing)
    extra = {} if concurrency is None else {"concurrency": concurrency}
    local = {"parallel": parallel, "gpus": tuple(gpus),
             **({} if prefix_cache is None else {"prefix_cache": prefix_cache})}
    if replicas:
        if not ref.in_process:
            raise FatalLLMError("replicas run copies of an in-process model (embedded, a .gguf or vllm:MODEL); "
                                "to spread requests over servers, list them in the base URL instead")
        from gpo.llm.ray_pool import ray_pool

        label, factory, kind, num_gpus = _replica_recipe(ref, local, replica_cpus)
        return ray_pool(label, factory, replicas=replicas, address=ray_address, num_cpus=replica_cpus,
                        num_gpus=num_gpus, per_replica=max(1, parallel), kind=kind, **common)
    if ref.kind == "fleet":
        members = [LLMMember(OpenAILLM(model=model, base_url=u, api_key=api_key, **extra)) for u in ref.urls]
        return Pool(model=model, members=members, kind="openai-fleet", **common,
                    concurrency=sum(m.llm.concurrency for m in members))
    if ref.kind == "embedded":
        return LocalLLM(**local, **common, **extra)
    if ref.kind == "gguf":
        return LocalLLM(model=ref.name, path=ref.path, **local, **common, **extra)
    if ref.kind == "vllm":
        from gpo.llm.vllm_local import VLLMLocal

        return VLLMLocal(model=ref.name, gpus=tuple(gpus), **common, **extra)
    return OpenAILLM(model=model, base_url=ref.urls[0] if ref.urls else None, api_key=api_key, **common, **extra)

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "0.0.0.0"}
GGUF_MAGIC = b"GGUF"


def is_gguf(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == GGUF_MAGIC
    except OSError:
        return False


def preflight(model: str, *, base_url: str | None = None, gpus: Sequence[int] = (), replicas: int = 0,
              api_key_env: str | None = None, role: str = "model") -> None:
    """Fail before a run starts, in one line, where a model cannot work: a GGUF path that is
    missing or not a GGUF, a remote endpoint whose API-key variable is unset, scale-out
    settings this machine cannot honour."""
    _check_urls(base_url, role)
    ref = resolve_model(model, base_url)
    path = Path(model).expanduser()
    local_file = not ref.urls and path.is_file()  # a file is a model only if it is a GGUF
    if ref.kind == "gguf" and not path.is_file():
        raise FatalLLMError(f"--{role}-model: GGUF model file not found: {model}")
    if local_file and ref.kind not in ("embedded", "vllm") and not is_gguf(path):
        raise FatalLLMError(f"--{role}-model: {model} is a file but not a GGUF model (it does not start with "
                            f"'GGUF'); give a .gguf file, 'embedded', or a served model name with --{role}-base-url")
    if not ref.in_process and not local_file:
        _check_api_key(base_url, api_key_env, role)
    if replicas and not ref.in_process:
        raise FatalLLMError(f"replicas run copies of an in-process model (embedded, a .gguf or vllm:MODEL), not {model!r}"
                            + (" at an endpoint; list several endpoints in the base URL to spread requests" if base_url else ""))
    if not ref.in_process:
        return  # --gpus is for in-process models; an endpoint's server has its own
    if replicas:
        from gpo.llm.ray_pool import import_ray

        import_ray()
    elif gpus and ref.kind != "vllm":
        from gpo.llm.local import check_gpu_offload

        check_gpu_offload(tuple(gpus))

def _check_urls(base_url: str | None, role: str) -> None:
    """Every endpoint in a base URL (comma-separated for a fleet) is an http(s) URL with a host."""
    from urllib.parse import urlparse

    for url in (u.strip() for u in (base_url or "").split(",") if u.strip()):
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise FatalLLMError(f"--{role}-base-url: {url!r} is not a URL; expected one like "
                                f"http://127.0.0.1:8000/v1 or https://api.openai.com/v1")


def _check_api_key(base_url: str | None, api_key_env: str | None, role: str) -> None:
    """A remote endpoint needs its key in the environment; local servers need none."""
    from urllib.parse import urlparse

    from gpo.llm.openai import resolve_endpoint

    urls = [u.strip() for u in (base_url or "").split(",") if u.strip()] or [resolve_endpoint(None, None)[0] or "https://api.openai.com/v1"]
    remote = [u for u in urls if (urlparse(u).hostname or "") not in LOCAL_HOSTS]
    variable = api_key_env or "OPENAI_API_KEY"
    if remote and not os.environ.get(variable):
        raise FatalLLMError(f"the {role} endpoint {remote[0]} needs an API key: set {variable}"
                            f" (or name another variable with --{role}-api-key-env)")


def _replica_recipe(ref: ModelRef, local: dict, cpus: float):
    """(label, factory, cache identity, GPUs per actor) for the in-process model each replica holds
    (``local``: LocalLLM's settings as this process would use them)."""
    threads, gpus = max(1, int(cpus)), local["gpus"]
    if ref.kind == "vllm":
        from gpo.llm.vllm_local import VLLMLocal

        tp = max(1, len(gpus))
        return ref.name, partial(VLLMLocal, model=ref.name, tensor_parallel=tp), "vllm", float(tp)
    kind = gguf_backend_id(ref.path or default_gguf_path())
    factory = partial(LocalLLM, model=ref.name, path=ref.path, n_threads=threads,
                      **{**local, "gpus": tuple(range(len(gpus)))})
    return ref.name, factory, kind, float(len(gpus))
