"""A user's program: their own pipeline, run with named prompts that gpo optimizes.

What people build is a program, not one prompt: a step that extracts, a step that
classifies; an agent's system prompt and a tool description. A ``Program`` is the one
integration point (as GEPA's adapter is): a Python callable that runs the pipeline on
one example with a mapping of named prompts and an ``lm`` to call models with, and
returns its output, or ``(output, trace)`` with the intermediate texts the optimizer
should see. The task's metric scores the output, and may return ``(score, feedback)``.

    def run(example, prompts, lm):
        sentence = lm(prompts["extract"] + "\\n\\n" + example.input)
        label = lm(prompts["classify"] + "\\n\\n" + sentence)
        return label, {"extract": sentence}

``lm(text, max_tokens=...)`` calls the run's scorer model through gpo's model layer,
so the response cache, retries, budgets and the meter apply and usage is the scorer's.
A program may call anything else instead; gpo then counts its runs, not tokens.

The search's parameter is the whole mapping, written as one text (``encode``): each
prompt under a ``[[name]]`` line. Searches propose a new text for one prompt per step
(``gpo.engine``); everything that keeps prompts (trajectories, checkpoints, reports,
the response cache) keeps these texts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

from gpo.errors import TaskError
from gpo.tasks.user_code import import_function

_HEADER = re.compile(r"^\[\[([A-Za-z_][\w.-]*)\]\]$", re.M)


@dataclass(frozen=True)
class Program:
    """A user's pipeline (``run(example, prompts, lm)``), where it came from (``source``,
    ``module:function``) and its named initial prompts, in the order given."""

    run: Callable
    source: str
    prompts: tuple[tuple[str, str], ...]

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.prompts]

    @property
    def initial(self) -> str:
        return encode(dict(self.prompts))

    def decode(self, text: str) -> dict[str, str]:
        return decode(text, self.names)


def encode(prompts: Mapping[str, str]) -> str:
    """The named prompts as one text: each under a ``[[name]]`` line."""
    return "\n".join(f"[[{name}]]\n{text.strip()}" for name, text in prompts.items())


def decode(text: str, names: list[str]) -> dict[str, str]:
    """The named prompts of an ``encode``d text; every one of ``names`` must be there."""
    heads = list(_HEADER.finditer(text))
    found = {m.group(1): text[m.end():(heads[i + 1].start() if i + 1 < len(heads) else len(text))].strip()
             for i, m in enumerate(heads)}
    missing = [n for n in names if n not in found]
    if missing:
        raise TaskError(f"a program's prompts lack {', '.join(missing)} (got {', '.join(found) or 'none'})")
    return {n: found[n] for n in names}


def load_program(source: str, prompts: Mapping[str, str]) -> Program:
    """``module:function`` (or ``path/to/file.py:function``) with its named initial prompts
    (``read_prompts``), checked now, in one line naming what is wrong."""
    fn = import_function(source, f"--program {source}", "program")
    return Program(fn, source, tuple(prompts.items()))


def read_prompts(path: str | Path) -> dict[str, str]:
    """A file mapping each prompt's name to its initial text (YAML, or JSON)."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise TaskError(f"--prompts {path}: cannot read it ({err.strerror})") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise TaskError(f"--prompts {path}: not valid YAML{where}") from None
    if not isinstance(data, dict) or not data:
        raise TaskError(f"--prompts {path}: expected a mapping of prompt names to texts, e.g. 'classify: Say the category.'")
    for name, text in data.items():
        if not isinstance(name, str) or not _HEADER.fullmatch(f"[[{name}]]"):
            raise TaskError(f"--prompts {path}: {name!r} is not a usable name (letters, digits, _ . -)")
        if not isinstance(text, str) or not text.strip():
            raise TaskError(f"--prompts {path}: the prompt {name!r} is empty or not text")
    return {name: text.strip() for name, text in data.items()}
