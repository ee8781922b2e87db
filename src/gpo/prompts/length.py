"""A prompt's length, an objective beside its score: a deployed prompt is paid for on every call.

Tokens are counted one way everywhere (the screen, the penalty, every output), without a model:
``BYTES_PER_TOKEN`` bytes of UTF-8 a token, the usual rule for English text with the tokenizers of
GPT-4 and Llama-class models (a given model's own count differs by up to about a third either
way). ``length_cost`` is CAPO's penalty (promptolution): ``penalty x tokens / max_tokens``, taken
off a prompt's score wherever a search ranks prompts (``max_tokens`` 0: per 1,000 tokens)."""

from __future__ import annotations

import math

BYTES_PER_TOKEN = 4
PER_TOKENS = 1000  # the penalty's scale where no --max-prompt-tokens is set


def prompt_tokens(text: str) -> int:
    """The prompt's tokens, counted as the module docstring says."""
    return math.ceil(len(text.encode("utf-8")) / BYTES_PER_TOKEN)


def length_cost(text: str, penalty: float, max_tokens: int) -> float:
    """What the prompt's length takes off its score: ``penalty x tokens / max_tokens``."""
    return penalty * prompt_tokens(text) / (max_tokens or PER_TOKENS) if penalty else 0.0


def too_long(text: str, max_tokens: int) -> str | None:
    """Why a candidate is over the token cap (``max_prompt_tokens``; 0: no cap), else None."""
    n = prompt_tokens(text)
    return f"too many tokens ({n} > {max_tokens})" if max_tokens and n > max_tokens else None


def cost_per_1000_calls(text: str, usd_per_million_prompt_tokens: float | None) -> float | None:
    """What the prompt's own tokens cost over 1,000 calls at a prompt-token price (None: no price)."""
    if not usd_per_million_prompt_tokens:
        return None
    return prompt_tokens(text) * usd_per_million_prompt_tokens * 1000 / 1e6
