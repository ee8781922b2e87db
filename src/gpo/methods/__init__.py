"""The methods, by name: GPO from its pieces (``gpo/``), the baselines (``baselines/``) and
other libraries' optimizers (``peers/``), each a ``PromptSearch`` of the engine with its
own ``step``. ``method_class`` resolves a name (or an alias such as ``protegi``)."""

from __future__ import annotations

from gpo.engine.search import PromptSearch
from gpo.methods.baselines import (
    APE,
    APO,
    OPRO,
    PE2,
    SGDM,
    BootstrapDemos,
    ChainOfThought,
    DemoSearch,
    EmptyPrompt,
    EvoPromptDE,
    EvoPromptGA,
    InstructionsThenDemos,
)
from gpo.methods.gpo.method import GPO
from gpo.methods.peers import PEERS

METHODS: dict[str, type[PromptSearch]] = {
    cls.name: cls for cls in (GPO, APE, APO, OPRO, PE2, SGDM, EvoPromptGA, EvoPromptDE, EmptyPrompt, ChainOfThought,
                              DemoSearch, BootstrapDemos, InstructionsThenDemos, *PEERS)
}
METHOD_ALIASES = {"protegi": "apo", "evoprompt": "evoprompt-ga", "ga": "evoprompt-ga", "de": "evoprompt-de"}


def method_class(name: str) -> type[PromptSearch]:
    from gpo.config import ConfigError
    from gpo.errors import suggest

    key = METHOD_ALIASES.get(name.lower(), name.lower())
    if key not in METHODS:
        raise ConfigError(f"unknown method {name!r}{suggest(name, METHODS)}; methods: {', '.join(METHODS)}")
    return METHODS[key]


__all__ = ["METHODS", "METHOD_ALIASES", "method_class", "GPO", "PEERS"]
