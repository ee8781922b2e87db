"""What a model string (and base URL) means, decided once: the embedded model, a GGUF file,
vLLM in process, an OpenAI-compatible endpoint, or a fleet of endpoints. ``build_llm``,
the preflight checks and the Ray replica recipe all read a ``ModelRef``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gpo.llm.gguf_size import parameter_count
from gpo.llm.local import DEFAULT_MODEL_NAME

EMBEDDED_ALIASES = {"", "embedded", "default", "smollm2", DEFAULT_MODEL_NAME}
IN_PROCESS = ("embedded", "gguf", "vllm")


# Below this many parameters a model gets the short meta-prompt by default. Measured only at 135M
# (the embedded model); peers report models of 1.5-4B writing no usable prompt with long ones
# (issue 38: GEPA with Qwen3-4B, training_hub with 1.5-3B reflection models).
SMALL_PARAMETERS = 4_000_000_000


@dataclass(frozen=True)
class ModelRef:
    kind: str  # embedded | gguf | vllm | endpoint | fleet
    model: str  # as given
    name: str  # the model's own name: the GGUF's stem, vLLM's model, the endpoint's model
    urls: tuple[str, ...] = ()  # the endpoints (several for a fleet)

    @property
    def in_process(self) -> bool:
        """This machine runs the model itself (so it can be replicated, offloaded to GPUs, timed)."""
        return self.kind in IN_PROCESS

    @property
    def constrains_well(self) -> bool:
        """Whether holding this model's replies to a shape (``ReplyShape``) is measured to raise its
        usable share of new prompts, so that gpo does it unless told otherwise: a llama.cpp grammar in
        process, yes (the embedded model: 38% to 75%, BENCHMARKS.md "proposals"); a llama.cpp server's
        JSON schema, no (50% to 38%), nor other endpoints or vLLM, not measured."""
        return self.kind in ("embedded", "gguf")

    @property
    def known_small(self) -> bool:
        """Whether this model is known to be small enough that GPO's full meta-prompt loses it: the
        embedded 135M model (0 of 24 replies usable, against 33 of 48 with the short one; BENCHMARKS.md
        "small-optimizers"), and a GGUF whose header counts fewer than ``SMALL_PARAMETERS``. An
        endpoint or vLLM model does not say its size, so it is not known small."""
        if self.kind == "gguf":
            count = parameter_count(self.model)
            return count is not None and count < SMALL_PARAMETERS
        return self.kind == "embedded"

    @property
    def path(self) -> Path | None:
        """The GGUF file of a ``gguf`` model."""
        return Path(self.model) if self.kind == "gguf" else None


def split_urls(base_url: str | None) -> tuple[str, ...]:
    """A base URL's endpoints: comma-separated for a fleet."""
    return tuple(u.strip() for u in (base_url or "").split(",") if u.strip())


def resolve_model(model: str, base_url: str | None = None) -> ModelRef:
    urls = split_urls(base_url)
    if len(urls) > 1:
        return ModelRef("fleet", model, model, urls)
    if urls:
        return ModelRef("endpoint", model, model, urls)
    if model.lower() in EMBEDDED_ALIASES:
        return ModelRef("embedded", model, DEFAULT_MODEL_NAME)
    if model.endswith(".gguf"):
        return ModelRef("gguf", model, Path(model).stem)
    if model.startswith("vllm:"):
        return ModelRef("vllm", model, model.split(":", 1)[1])
    return ModelRef("endpoint", model, model)
