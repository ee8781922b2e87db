"""Baseline prompt optimizers on gpo's engine (same scorer, extraction, budget,
checkpoints and reports as GPO), and the registry of every method by name."""

from __future__ import annotations

from gpo.optim.baselines.ape import APE
from gpo.optim.baselines.apo import APO
from gpo.optim.baselines.demos import BootstrapDemos, DemoSearch, InstructionsThenDemos
from gpo.optim.baselines.evoprompt import EvoPromptDE, EvoPromptGA
from gpo.optim.baselines.fixed import ChainOfThought, EmptyPrompt
from gpo.optim.baselines.opro import OPRO
from gpo.optim.baselines.pe2 import PE2
from gpo.optim.baselines.sgdm import SGDM
from gpo.optim.gpo import GPO
from gpo.optim.peers import PEERS
from gpo.optim.search import PromptSearch

METHODS: dict[str, type[PromptSearch]] = {
    cls.name: cls for cls in (GPO, APE, APO, OPRO, PE2, SGDM, EvoPromptGA, EvoPromptDE, EmptyPrompt, ChainOfThought, DemoSearch,
                BootstrapDemos, InstructionsThenDemos, *PEERS)
}
METHOD_ALIASES = {"protegi": "apo", "evoprompt": "evoprompt-ga", "ga": "evoprompt-ga", "de": "evoprompt-de"}


def method_class(name: str) -> type[PromptSearch]:
    from gpo.config import ConfigError
    from gpo.errors import suggest

    key = METHOD_ALIASES.get(name.lower(), name.lower())
    if key not in METHODS:
        raise ConfigError(f"unknown method {name!r}{suggest(name, METHODS)}; methods: {', '.join(METHODS)}")
    return METHODS[key]


__all__ = ["METHODS", "method_class", "APE", "APO", "OPRO", "PE2", "SGDM", "EvoPromptGA", "EvoPromptDE",
           "EmptyPrompt", "ChainOfThought", "DemoSearch", "BootstrapDemos", "InstructionsThenDemos"]
