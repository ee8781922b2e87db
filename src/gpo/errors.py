"""Every error gpo raises on purpose, and the "did you mean" helper its messages use.

Each message names the file, line, field or flag at fault, so the command line can show
it as one line. Imports nothing from gpo: any layer may raise these.
"""

from __future__ import annotations

import difflib


def suggest(name: str, choices) -> str:
    """' (did you mean a, b?)' for the choices closest to a mistyped name, else ''."""
    close = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.5)
    return f" (did you mean {', '.join(close)}?)" if close else ""


class ConfigError(ValueError):
    """An invalid option or combination; the message names the fields involved."""


class TaskError(ValueError):
    """Bad task definition or data; the message names the file, line or field."""


class LLMError(RuntimeError):
    """A model call failed for good (after retries, or at once for a fatal error)."""


class FatalLLMError(LLMError):
    """Retrying cannot help: bad request, bad key, no permission, unknown model."""


class TransientLLMError(LLMError):
    """Worth retrying: rate limit, server error, timeout, dropped connection."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class CacheError(RuntimeError):
    """The response cache file cannot be used (corrupt, or not a gpo cache)."""


class BudgetSpent(Exception):
    """A run budget is spent; the search stops cleanly with what it has."""


class RunDirError(ValueError):
    """A run directory cannot be used as asked: it holds a run with other settings, or one
    of its files is damaged. The message names the directory or file and what to do."""


class RunInUse(RunDirError):
    """Another process is writing the run directory (``gpo.run.lock``)."""


# What the command line shows as one line (no traceback): every error above that gpo
# raises on purpose. A BudgetSpent that escapes a search (the budget was spent before
# anything could be kept) is one of them.
USER_ERRORS = (ConfigError, TaskError, LLMError, CacheError, BudgetSpent, RunDirError)
