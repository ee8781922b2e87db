"""Replies that are not prompts, though nothing of the meta-prompt leaked into them: what small
optimizer models write instead of an instruction. Each rule gives a reason a person can read
(and the optimizer, asked again, can act on); ``junk_reason`` tries them in order.

The rules were written against real replies of the embedded model and a llama.cpp server
(``tests/data/optimizer_replies.jsonl``), and are held to pass the paper's 87 published prompts
and every method's initial prompt (``tests/prompts/test_junk.py``)."""

from __future__ import annotations

import re

# talk about the prompt-writing itself: "the new prompt is", "change at most 49 words", "the previous example",
# "a new instruction" (the short meta-prompt's words), "that reply was set aside" (the repair's)
_TALK = re.compile(
    r"\b(?:new|next|better|earlier|previous|current|original|existing|revised|rewritten|improved|modified|edited"
    r"|latest|old|own|another|additional)\b[\w ,-]{0,12}\bprompts?\b"
    r"|\bin (?:this|the|that|your|my) prompts?\b"
    r"|\b(?:this|the|that|your|my) prompts? (?:is|was|has|will|would|should|can|aims|asks|looks)\b"
    r"|\b(?:write|provide|create|produce|craft|paste|submit|add|change|rewrite|improve|edit|modify|refine|update"
    r"|combine|fix)(?:s|ing)?\b (?:(?:a|the|your|this|that|one|my) )?(?:\w+,? )?prompts?\b"
    r"|\bchange[sd]? at most\b|\bat most \d+ words of\b"
    r"|\b(?:previous|earlier|above|first|last|next) examples?\b|\bexamples? (?:above|below)\b"
    r"|\b(?:a|an|the|this|that|your|my)(?: [\w-]+)? prompts? (?:is|was|has|will|would|should|can|aims|asks|looks)\b"
    r"|\b(?:the|this|a) (?:correct )?instructions? (?:is|was|were|should|in)\b"
    r"|\b(?:new|old|original|previous|earlier|current|revised|rewritten|improved|better|modified)\b[\w ,-]{0,12}"
    r"\binstructions?\b"
    r"|\bset aside\b|\b(?:that|this|the|your|my|previous) reply\b",
    re.I)
# an assistant answering its user instead of instructing a model
_ASSISTANT = re.compile(
    r"^\W*(?:hello|hi|hey|greetings|sure|certainly|of course|absolutely|okay|ok|thanks|thank you|what a|"
    r"(?:that's|this is|it's) an? (?:great|good|perfect|fantastic|excellent))\b"
    r"|\bI(?:'m| am) (?:ready|happy|glad|here|pleased|thrilled|going)\b"
    r"|\bI(?:'ll| will) (?:do|help|try|write|create|make|start|edit|have|change|give|be|re-?edit|keep|provide|show"
    r"|explain|use|assume|need)\b"
    r"|\bI(?:'ve| have) (?:rewritten|prepared|added|changed|made|written|created|modified)\b"
    r"|\bI (?:added|changed|made|wrote|created|followed|can help|can make|found|was|think|thought|hope|love|felt)\b"
    r"|\bhow can I help\b|\bhelpful AI\b|\bAI assistant\b",
    re.I | re.M)
# asking the user for something
_QUESTION = re.compile(
    r"\b(?:would you like|do you (?:want|need|have)|can you (?:please )?(?:provide|give|share|tell me|send|paste)"
    r"|could you (?:please )?(?:provide|give|share|clarify|tell me|send|paste)|let me know"
    r"|what(?:'s| is) (?:your|the) (?:first |next )?(?:question|prompt|request)"
    r"|please (?:provide|paste|share|send|go ahead))\b",
    re.I)
# markup: <SCHOOL>, <RESP>, </x>: a tag the task does not use, closed, repeated, in capitals, or naming a prompt
TAG = re.compile(r"</?\s*([A-Za-z][\w -]{0,30}?)\s*/?>")
# words that carry no instruction on their own ("And", "No.", "What?", "S")
_FUNCTION_WORDS = frozenset(
    "and or but so no yes not what why how the of to in on at it is ok okay hmm well then also".split())
REPEAT_WORDS = 5  # a run of this many words said twice repeats a phrase
REPEAT_WORD = 5  # a word of 5 letters or more said this often repeats a word


def _words(text: str) -> list[str]:
    return re.findall(r"[\w']+", text.lower())


def talks_about_prompts(text: str) -> str | None:
    m = _TALK.search(text)
    return f"talks about prompts instead of instructing ('{m.group(0).strip()}')" if m else None


def answers_as_assistant(text: str) -> str | None:
    m = _ASSISTANT.search(text)
    return f"answers as an assistant instead of instructing ('{m.group(0).strip()}')" if m else None


def asks_the_user(text: str) -> str | None:
    m = _QUESTION.search(text)
    return f"asks the user for input ('{m.group(0).strip()}')" if m else None


def markup_tags(text: str, allowed: str = "") -> str | None:
    """Tag-like tokens the task's own texts (``allowed``) do not use: closing tags, tags said
    twice, tags in capitals or naming a prompt. A single placeholder such as ``<Entity>`` passes."""
    found = [m for m in TAG.finditer(text) if m.group(0) not in allowed]
    names = [m.group(1).strip() for m in found]
    for m, name in zip(found, names):
        if (m.group(0).startswith("</") or names.count(name) > 1 or (name.isupper() and len(name) > 1)
                or "prompt" in name.lower()):
            return f"markup tags ('{m.group(0)}')"
    return None


def repeats(text: str) -> str | None:
    """A line said twice (lines of list markers or '#' too), a run of ``REPEAT_WORDS`` words said
    twice, or a word of 5 letters or more said ``REPEAT_WORD`` times."""
    lines = [re.sub(r"^\s*(?:\d+[.)]|[-*•])\s*", "", ln).strip().lower() or ln.strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln]
    twice = next((ln for i, ln in enumerate(lines) if ln in lines[:i]), None)
    if twice is not None:
        return f"repeats a line ('{twice[:40]}')"
    w = _words(text)
    seen: set[tuple] = set()
    for i in range(len(w) - REPEAT_WORDS + 1):
        gram = tuple(w[i:i + REPEAT_WORDS])
        if gram in seen:
            return f"repeats a phrase ('{' '.join(gram)}')"
        seen.add(gram)
    long = [x for x in w if len(x) >= 5]
    often = next((x for x in long if long.count(x) >= REPEAT_WORD), None)
    return f"repeats a word ('{often}' {long.count(often)} times)" if often else None


def no_content(text: str) -> str | None:
    w = _words(text)
    if text.strip() and not w:
        return f"not an instruction: no words ('{text.strip()[:20]}')"
    if w and all(x in _FUNCTION_WORDS for x in w):
        return f"not an instruction: no word that asks for anything ('{text.strip()[:20]}')"
    return None


def junk_reason(text: str, allowed: str = "") -> str | None:
    """Why a reply (a candidate's instruction) is not a prompt, else None. ``allowed``: the
    task's and the reference prompt's own text, whose tags a prompt may use."""
    return (no_content(text) or markup_tags(text, allowed) or talks_about_prompts(text) or asks_the_user(text)
            or answers_as_assistant(text) or repeats(text))
