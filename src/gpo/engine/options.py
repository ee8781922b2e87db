"""A method's own options: a frozen dataclass per method (``PromptSearch.Options``), filled
from ``--method-option NAME=VALUE`` or a config file's ``method_options``. Each value is
converted to its field's type and checked here; a method's dataclass may check more in
``__post_init__`` (raising ``ConfigError``)."""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields

from gpo.errors import ConfigError, suggest


@dataclass(frozen=True)
class NoOptions:
    """A method with no options of its own."""


def option_names(options_class: type) -> list[str]:
    return [f.name for f in fields(options_class)]


def parse_options(method: str, options_class: type, given: dict):
    known = {f.name: f for f in fields(options_class)}
    values = {}
    for key, value in given.items():
        key = key.replace("-", "_")
        if key not in known:
            names = ", ".join(known) or "none"
            raise ConfigError(f"method {method!r} has no option {key!r}{suggest(key, known)}; options: {names}")
        default = known[key].default
        kind = type(default) if default is not MISSING else str
        try:
            values[key] = kind(value)
        except (TypeError, ValueError):
            raise ConfigError(f"method {method!r} option {key}={value!r}: expected {kind.__name__}") from None
        if isinstance(values[key], (int, float)) and values[key] < 0:
            raise ConfigError(f"method {method!r} option {key} must be >= 0, got {value!r}")
    return options_class(**values)
