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


# "Here's the new instruction: ...", "Revised instruction:\n..." (a lead-in of a few words, then the instruction);
# "The new instruction is to add an s." (the reply opens by naming it; not the original one it describes)
_CUE = re.compile(r"\binstruction\b[^:\n]{0,20}:[ \t]*\n*[ \t]*"
                  r"|^\W*(?:(?:the|this|my|our) )?(?:(?:new|revised|better|improved|updated) )?instruction "
                  r"(?:is|would be|will be) to ", re.I)
_QUOTED = re.compile(r"^[\"“']([^\"”\n]+)[\"”']")
# a sentence ends at . ! or ? after a letter, a closing quote or bracket (not "1." of a list), then a space or the end
_SENTENCE_END = re.compile(r"(?<=[^\W\d_]|[\"”')])[.!?](?=\s|$)")
_ABBREVIATION = re.compile(r"(?:\b(?:e\.g|i\.e|etc|vs|cf|Mr|Mrs|Dr|St|No)|\b[A-Z])$")


def one_instruction(reply: str) -> str:
    """The instruction in a reply asked for one instruction in one sentence (a small optimizer's,
    ``optimizer_size='small'``): the text between tags where there are any; after a lead-in
    such as "Here's the new instruction:", what it introduces (the quoted text, where quoted);
    then the first sentence, the reply's lines read as one paragraph. What follows the sentence
    (talk about it, the examples again) is not part of the instruction that was asked for."""
    text = extract_tagged(reply)
    cue = _CUE.search(text)
    if cue and text[cue.end():].strip():
        text = text[cue.end():]
    quoted = _QUOTED.match(text.strip())
    text = quoted.group(1) if quoted else " ".join(text.split())
    end = next((m for m in _SENTENCE_END.finditer(text) if not _ABBREVIATION.search(text[: m.start()])), None)
    return (text[: end.end()] if end else text).strip()
