"""Baseline prompt optimizers on gpo's engine (same scorer, extraction, budget,
checkpoints and reports as GPO)."""

from __future__ import annotations

from gpo.methods.baselines.ape import APE
from gpo.methods.baselines.apo import APO
from gpo.methods.baselines.demos import (
           BootstrapDemos,
           DemoSearch,
           InstructionsThenDemos,
)
from gpo.methods.baselines.evoprompt import EvoPromptDE, EvoPromptGA
from gpo.methods.baselines.fixed import ChainOfThought, EmptyPrompt
from gpo.methods.baselines.opro import OPRO
from gpo.methods.baselines.pe2 import PE2
from gpo.methods.baselines.sgdm import SGDM

__all__ = ["APE", "APO", "OPRO", "PE2", "SGDM", "EvoPromptGA", "EvoPromptDE",
           "EmptyPrompt", "ChainOfThought", "DemoSearch", "BootstrapDemos", "InstructionsThenDemos"]
