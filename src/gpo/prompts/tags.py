"""The tags a reply puts a new prompt between, and reading a prompt back out of a reply."""

from __future__ import annotations

import re

START, END = "<START>", "<END>"
_CLOSE_TAG = re.compile(r"</?\s*end\s*>|<\s*/\s*start\s*>", re.I)
_OPEN_TAG = re.compile(r"<\s*start\s*>", re.I)


def extract_tagged(reply: str) -> str:
    """Text between <START> and <END> (variants like </END> accepted)."""
    m = _OPEN_TAG.search(reply)
    start = m.end() if m else 0
    rest = reply[start:]
    close = _CLOSE_TAG.search(rest)
    return (rest[: close.start()] if close else rest).strip()


def extract_all_tagged(reply: str) -> list[str]:
    """Every text between <START> and <END>, in order (for replies that list several);
    a reply without tags counts as one text."""
    found = []
    rest = reply
    while (m := _OPEN_TAG.search(rest)) is not None:
        rest = rest[m.end():]
        close = _CLOSE_TAG.search(rest)
        found.append((rest[: close.start()] if close else rest).strip())
        rest = rest[close.end():] if close else ""
    return [t for t in found if t] or ([reply.strip()] if reply.strip() else [])


def polish(text: str) -> str:
    """Strip, drop markdown bold, capitalise the first letter (docs/BEHAVIOUR.md, "The update")."""
    text = text.strip().replace("**", "").strip()
    if len(text) > 1:
        text = text[0].upper() + text[1:]
    return text
