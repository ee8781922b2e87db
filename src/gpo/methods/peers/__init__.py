"""Other libraries' prompt optimizers (GEPA; promptolution's CAPO, OPRO, EvoPrompt-GA) on
gpo's engine: same scorer, splits, extraction, budget and reports as gpo's own methods.
They need the optional extra: pip install 'gpo[peers]'."""

from gpo.methods.peers.gepa_peer import GEPA
from gpo.methods.peers.promptolution_peer import (
    CAPO,
    PromptolutionEvoPromptGA,
    PromptolutionOPRO,
)

PEERS = (GEPA, CAPO, PromptolutionOPRO, PromptolutionEvoPromptGA)

__all__ = ["PEERS", "GEPA", "CAPO", "PromptolutionOPRO", "PromptolutionEvoPromptGA"]
