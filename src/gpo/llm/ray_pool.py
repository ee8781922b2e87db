"""Model replicas as Ray actors: ``--ray-address`` with ``--scorer-replicas N``.

Each replica is one Ray actor holding one copy of an in-process model (a GGUF through
llama.cpp on the actor's CPUs, or vLLM on the actor's GPUs). The actors sit behind a
``gpo.llm.pool.Pool``, so the rest of gpo sees one ``LLM``: requests go to the
least-loaded replica, a replica that dies has its requests re-sent to the others and is
replaced by a fresh actor, and the response cache, retries and usage stay in the driver
(nothing is lost or paid twice, and ``gpo resume`` works unchanged).

Needs the optional extra ``gpo[ray]``. Without an address (and with replicas asked
for) a local Ray is started with ``ray.init()``; ``auto`` joins the cluster this machine
belongs to; ``ray://HOST:10001`` connects through Ray Client.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from typing import Callable

from gpo.llm.base import LLM, FatalLLMError, LLMError, Request, Sample
from gpo.llm.pool import MemberLost, Pool

_serial = itertools.count(1)


def import_ray():
    try:
        import ray
    except ImportError:
        raise FatalLLMError("model replicas need Ray: pip install 'gpo[ray]'") from None
    return ray


def connect(address: str | None) -> None:
    """Join (or start) the Ray cluster once per process."""
    ray = import_ray()
    if ray.is_initialized():
        return
    try:
        ray.init(address=address or None, include_dashboard=False, log_to_driver=False,
                 configure_logging=False, ignore_reinit_error=True)
    except (ConnectionError, RuntimeError, ValueError) as err:
        raise FatalLLMError(f"cannot connect to Ray at {address or 'a new local cluster'}: {err}") from None


class Replica:
    """The actor: builds its model from ``factory`` once, then answers ``sample`` calls
    concurrently on its own event loop (a batched llama.cpp model decodes them together)."""

    def __init__(self, factory: Callable[[], LLM]):
        self.llm = factory()

    def ready(self) -> int:
        return os.getpid()

    async def sample(self, request: Request, indices: list[int]) -> list[Sample]:
        return await self.llm._sample(request, indices)


@dataclass
class RayMember:
    """One replica actor seen from the driver."""

    actor: object
    name: str

    async def sample(self, request: Request, indices: list[int]) -> list[Sample]:
        ray = import_ray()
        try:
            return await self.actor.sample.remote(request, indices)
        except ray.exceptions.RayActorError as err:
            raise MemberLost(f"{self.name} died ({type(err).__name__})") from None
        except ray.exceptions.RayTaskError as err:
            cause = getattr(err, "cause", None)
            if isinstance(cause, LLMError):
                raise cause from None
            raise LLMError(f"{self.name}: {str(err).splitlines()[0]}") from None

    async def aclose(self) -> None:
        import_ray().kill(self.actor, no_restart=True)


def ray_pool(
    model: str,
    factory: Callable[[], LLM],
    *,
    replicas: int,
    address: str | None = None,
    num_cpus: float = 1.0,
    num_gpus: float = 0.0,
    per_replica: int = 1,
    kind: str,
    **llm_fields,
) -> Pool:
    """A pool of ``replicas`` actors, each running ``factory()``; ``per_replica`` is how
    many requests each gets at once (its batch size), which sets the pool's concurrency."""
    if replicas < 1:
        raise FatalLLMError(f"replicas must be at least 1, got {replicas}")
    connect(address)
    ray = import_ray()
    actor_class = ray.remote(Replica)

    def start() -> RayMember:
        number = next(_serial)
        actor = actor_class.options(num_cpus=num_cpus, num_gpus=num_gpus, max_concurrency=max(4, 2 * per_replica),
                                    name=None).remote(factory)
        return RayMember(actor, f"replica-{number}")

    members = [start() for _ in range(replicas)]
    try:
        ray.get([m.actor.ready.remote() for m in members])
    except ray.exceptions.RayError as err:
        raise FatalLLMError(f"a model replica failed to start: {_last_line(err)}") from None

    async def replace(lost: RayMember) -> RayMember:
        fresh = start()
        await fresh.actor.ready.remote()
        return fresh

    return Pool(model=model, members=members, kind=kind, replace=replace,
                concurrency=replicas * per_replica * 2, **llm_fields)


def _last_line(err: Exception) -> str:
    """The cause at the end of a Ray traceback (its first line only names the actor)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[-1] if lines else type(err).__name__
