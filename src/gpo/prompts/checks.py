"""Whether a reply is a usable prompt: leaked scaffolding, too long, not an instruction;
and how many words it changed (the word budget's measure)."""

from __future__ import annotations

import re

_LEAKS = ("<prompt>", "<start>", "<end>", "</start>", "</end>", "</prompt>")
# field labels of our meta-prompts (GPO's and the baselines'): a candidate that starts a line
# with one copied the scaffolding, often a whole task example (docs/BEHAVIOUR.md, "Unusable candidates")
_LABEL_LINE = re.compile(
    r"^\s*(Scores?|Output|Input|Prompt(?: \d+)?|Basic prompt|Question|Wrong prediction|Correct answer):", re.M)


def leak_reason(text: str, max_words: int | None = None) -> str | None:
    """Why a candidate is unusable (empty, too long, or meta-prompt scaffolding leaked
    into it), else None."""
    if not text.strip():
        return "empty"
    low = text.lower()
    for tag in _LEAKS:
        if tag in low:
            return f"copies the meta-prompt's scaffolding (the {tag} tag)"
    label = _LABEL_LINE.search(text)
    if label:
        article = "an" if label.group(1)[0] in "AEIOU" else "a"
        return f"copies the meta-prompt's scaffolding ({article} '{label.group(1)}:' line)"
    if max_words is not None and len(text.split()) > max_words:
        return f"too long ({len(text.split())} words > {max_words})"
    return None


# a line that opens with a short capitalised label and a colon ("Premise: ...", "Syntax: ..."):
# two different ones make a form or a transcript, not an instruction
_ANY_LABEL = re.compile(r"^\s*([A-Z][A-Za-z]{0,15}(?: [A-Za-z]{1,15})?):(?:\s|$)", re.M)
# speaker turns of an invented dialogue
_TURN = re.compile(r"^\s*(User|Assistant|System|Human|AI|Q|A)\s*:", re.M)
COPY_WORDS = 8  # a run this long copied from the meta-prompt or its examples


def not_an_instruction(text: str, shown: str = "") -> str | None:
    """Why a reply is not an instruction, else None: it invents a transcript (speaker
    turns), reads like a form (two or more different 'Label:' lines), or copies a run of
    ``COPY_WORDS`` words from ``shown`` (the meta-prompt without the prompts it quotes, and
    the examples it shows): a reply that continues the meta-prompt or repeats an example."""
    turn = _TURN.search(text)
    if turn:
        return f"not an instruction: invents a transcript ('{turn.group(1)}:' turn)"
    labels = list(dict.fromkeys(m.group(1) for m in _ANY_LABEL.finditer(text)))
    if len(labels) >= 2:
        return f"not an instruction: reads like a form ({', '.join(repr(l + ':') for l in labels[:3])} lines)"
    words = text.split()
    if shown and len(words) >= COPY_WORDS:
        seen = shown.split()
        grams = {tuple(seen[i:i + COPY_WORDS]) for i in range(len(seen) - COPY_WORDS + 1)}
        if any(tuple(words[i:i + COPY_WORDS]) in grams for i in range(len(words) - COPY_WORDS + 1)):
            return f"not an instruction: copies {COPY_WORDS}+ words of the meta-prompt or its examples"
    return None


def word_edit_distance(a: str, b: str) -> int:
    """Levenshtein distance over words: how many words were inserted, deleted or replaced."""
    x, y = a.split(), b.split()
    prev = list(range(len(y) + 1))
    for i, wx in enumerate(x, 1):
        cur = [i] + [0] * len(y)
        for j, wy in enumerate(y, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (wx != wy))
        prev = cur
    return prev[-1]


COPIED_WORDS = 8  # a run this long of one task example's text, in a candidate, copies that example
BOILERPLATE_SHARE = 0.1  # a run found in more than this share of the examples is the task's own wording


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


class ExampleSpans:
    """The runs of ``COPIED_WORDS`` words of a task's examples (their inputs and targets), to catch
    a candidate that pastes training data into the prompt (it scores well on eval and leaks data).
    Words are compared lowercased without punctuation. A run found in more than ``BOILERPLATE_SHARE``
    of the examples (and more than two) is the task's own wording (a question every input asks), not one example's data,
    and is allowed, as is any run the reference prompt already has."""

    def __init__(self, texts: list[list[str]]):
        found: dict[tuple, set[int]] = {}
        for i, parts in enumerate(texts):
            for part in parts:
                w = _words(part)
                for j in range(len(w) - COPIED_WORDS + 1):
                    found.setdefault(tuple(w[j:j + COPIED_WORDS]), set()).add(i)
        limit = max(2, int(BOILERPLATE_SHARE * len(texts)))  # (an example in both train and eval is one example)
        self.spans = {span: min(owners) for span, owners in found.items() if len(owners) <= limit}

    def copied(self, text: str, allowed: str = "") -> str | None:
        """Why ``text`` copies a task example ('copies a task example: ...'), else None."""
        w, a = _words(text), _words(allowed)
        fine = {tuple(a[j:j + COPIED_WORDS]) for j in range(len(a) - COPIED_WORDS + 1)}
        for j in range(len(w) - COPIED_WORDS + 1):
            span = tuple(w[j:j + COPIED_WORDS])
            if span in self.spans and span not in fine:
                return f"copies a task example: {COPIED_WORDS}+ words of example {self.spans[span] + 1} ('{' '.join(span)}')"
        return None
