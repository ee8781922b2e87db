"""vLLM in this process, on the GPUs given with ``--gpus`` (tensor parallel over them).

Model names ``vllm:<hugging face id or local folder>`` select it; vLLM must be
installed (it is not a gpo dependency). vLLM batches on its own, so requests are
handed over together: the engine runs on one worker thread and each call carries
every sample of one request.
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from gpo.llm.base import LLM, FatalLLMError, Request, Sample


def vllm_engine_args(model: str, gpus: tuple[int, ...], tensor_parallel: int | None = None) -> tuple[dict, dict]:
    """(environment, ``vllm.LLM`` keyword arguments) for a model on these GPUs.

    Listed GPUs are made the visible ones and tensor parallelism spans them all. In a
    Ray actor Ray has already chosen the visible GPUs: ``tensor_parallel`` alone is given.
    """
    env = {"CUDA_VISIBLE_DEVICES": ",".join(str(g) for g in gpus)} if gpus else {}
    return env, {"model": model, "tensor_parallel_size": tensor_parallel or max(1, len(gpus))}


@dataclass
class VLLMLocal(LLM):
    """``model`` is what vLLM loads; ``gpus`` the device indices (empty: vLLM's default device)."""

    gpus: tuple[int, ...] = ()
    tensor_parallel: int | None = None
    concurrency: int = 64
    in_process = True
    _engine: object = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        try:
            import vllm  # noqa: F401
        except ImportError:
            raise FatalLLMError(f"model {self.model!r} needs vLLM in this environment (pip install vllm)") from None
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vllm")

    @property
    def backend_id(self) -> str:
        return "vllm"

    def engine(self):
        if self._engine is None:
            import vllm

            env, kwargs = vllm_engine_args(self.model, self.gpus, self.tensor_parallel)
            os.environ.update(env)
            self._engine = vllm.LLM(**kwargs)
        return self._engine

    async def _sample(self, request: Request, indices: list[int]) -> list[Sample]:
        return await asyncio.get_running_loop().run_in_executor(self._worker, self._sample_sync, request, indices)

    def _sample_sync(self, request: Request, indices: list[int]) -> list[Sample]:
        import vllm

        engine, out = self.engine(), []
        for index in indices:
            params = vllm.SamplingParams(temperature=request.temperature, max_tokens=request.max_tokens,
                                         stop=list(request.stop) or None, seed=request.seed + index)
            if request.messages is not None:
                result = engine.chat(request.message_dicts(), params, use_tqdm=False)[0]
            else:
                result = engine.generate(request.prompt, params, use_tqdm=False)[0]
            choice = result.outputs[0]
            out.append(Sample(choice.text, choice.finish_reason or "stop",
                              len(result.prompt_token_ids or ()), len(choice.token_ids or ())))
        return out
