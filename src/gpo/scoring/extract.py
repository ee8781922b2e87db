"""From a model's reply to the bare answer it gives (docs/BEHAVIOUR.md, "Scoring a prompt", bugs fixed).

Fixed relative to the original: answer cues are found case-insensitively; signs and
decimals survive ("-35" is not "35", "4.5" is not "4"); booleans map through
synonyms; multiple choice accepts a letter in any common shape *or* the option's
text; number words go beyond twelve.
"""

from __future__ import annotations

import re
import string
from typing import Sequence

from gpo.tasks.task import AnswerKind, Example

ANSWER_BEHIND = ("####", "final answer is", "the answer is", "answer is", "answer:")
ANSWER_AHEAD = (" is the correct answer", " is the right answer", " is the final answer", " is the answer")
_NUMBER_WORDS = {
    w: str(i)
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen eighteen nineteen twenty".split()
    )
}
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?")
_LETTER_PAREN = re.compile(r"\(([a-z])\)")
_LETTER_BARE = re.compile(r"^(?:option\s+)?([a-z])(?:[).:]|\s|$)")
TRUE_WORDS = {"true", "yes", "valid"}
FALSE_WORDS = {"false", "no", "invalid"}
_PUNCT = str.maketrans("", "", string.punctuation)
_AROUND = " \t\n:\"'`*\u201c\u201d\u2018\u2019"  # what surrounds an answer after its cue: colon, quotes, bold
NO_ANSWER = "(no answer)"  # a reply that gives none of a closed set's answers (or several)


def second_round_context(first_answer: str, include_qa: bool) -> str:
    """The first answer as shown back to the scorer; with the Q:/A: wrapper a model
    often invents the next "Q:", which is cut off."""
    return first_answer.split("Q:")[0].strip() if include_qa else first_answer.strip()


def isolate_answer(text: str) -> tuple[str, bool]:
    """Lower-cased text narrowed to the part after the last answer cue (or before
    an 'is the answer' cue). Returns (text, whether a cue was found)."""
    s = text.strip().lower()
    indicated = False
    for cue in ANSWER_BEHIND:
        if cue in s:
            s = s.rsplit(cue, 1)[1].lstrip(_AROUND)  # "the answer is: 'x'": the cue's colon and quotes go
            indicated = True
            break
    for cue in ANSWER_AHEAD:
        if cue in s:
            # "(a) is wrong. (b) is the correct answer": keep the clause right before the cue
            s = re.split(r"[.;\n]", s.split(cue, 1)[0].strip())[-1]
            indicated = True
            break
    if indicated:  # 'the answer is "x".': the sentence's full stop and the quotes go too
        s = s.strip(_AROUND).rstrip(".!").strip(_AROUND)
    return s.strip(_AROUND), indicated


def parse_number(text: str) -> str:
    s, indicated = isolate_answer(text)
    s = " ".join(_NUMBER_WORDS.get(tok, tok) for tok in s.split(" "))
    s = re.sub(r"(?<=\d),(?=\d{3}\b)", "", s)  # 1,000 -> 1000
    s = s.replace("$", "").replace("€", "").replace("£", "")
    if "=" in s and _NUMBER.search(s.rsplit("=", 1)[1]):
        s = s.rsplit("=", 1)[1]
    numbers = _NUMBER.findall(s)
    if not numbers:
        return s.strip()
    value = numbers[0] if indicated else numbers[-1]
    return canonical_number(value)


def canonical_number(value: str) -> str:
    try:
        f = float(value)
    except ValueError:
        return value.strip()
    return str(int(f)) if f == int(f) else repr(f)


def parse_boolean(text: str) -> str:
    s, _ = isolate_answer(text)
    for word in re.findall(r"[a-z]+", s):
        if word in TRUE_WORDS:
            return "true"
        if word in FALSE_WORDS:
            return "false"
    if s.strip() in ("1", "0"):
        return "true" if s.strip() == "1" else "false"
    return s.translate(_PUNCT).strip()


def parse_choice(text: str, example: Example) -> str:
    """The chosen option letter (lower case) or, failing that, the cleaned text."""
    s, _ = isolate_answer(text)
    m = _LETTER_PAREN.search(s)
    if m:
        return m.group(1)
    m = _LETTER_BARE.match(s)
    options = {k.lower(): v for k, v in example.options().items()}
    if m and (not options or m.group(1) in options):
        return m.group(1)
    cleaned = _clean(s)
    if options and cleaned:
        exact = [k for k, v in options.items() if _clean(v) == cleaned]
        if len(exact) == 1:
            return exact[0]
        contained = [k for k, v in options.items() if _clean(v) and _clean(v) in cleaned]
        if len(contained) == 1:
            return contained[0]
    return cleaned


def _clean(text: str) -> str:
    return " ".join(text.lower().translate(_PUNCT).split())


def parse_label(text: str, labels: Sequence[str]) -> str:
    """The one label a reply names, as the data writes it, or ``NO_ANSWER``.

    The label may stand alone or inside a sentence; case, surrounding punctuation, quotes
    and markdown do not matter. The text after an answer cue is read first, the whole reply
    where that names none. Where labels overlap ("same" inside "not the same") the longest
    match wins; a reply naming several labels, or none, gives no answer."""
    markdown = "*`#" if any("_" in label for label in labels) else "*`#_"
    norm = str.maketrans({c: " " for c in markdown})

    def named(s: str) -> set[str]:
        s = " ".join(s.lower().translate(norm).split())
        spans = []
        for label in labels:
            words = " ".join(label.lower().translate(norm).split())
            if words:
                pattern = r"(?<!\w)" + r"\s+".join(map(re.escape, words.split())) + r"(?!\w)"
                spans += [(m.start(), m.end(), label) for m in re.finditer(pattern, s)]
        inside = lambda a, b: b[0] <= a[0] and a[1] <= b[1] and (b[1] - b[0]) > (a[1] - a[0])  # noqa: E731
        return {a[2] for a in spans if not any(inside(a, b) for b in spans)}

    after_cue, indicated = isolate_answer(text)
    found = named(after_cue) if indicated else set()
    found = found or named(text)
    return next(iter(found)) if len(found) == 1 else NO_ANSWER


_QUOTED = re.compile(r'"([^"\n]+)"|\u201c([^\u201d\n]+)\u201d|\*\*([^*\n]+)\*\*')


def parse_short(text: str) -> str:
    """A short open answer (instruction induction's execution accuracy): the text after an
    answer cue, else the last quoted (or bold) text, else the reply's first line; without its
    quotes and closing full stop. Lower-cased, as the comparison ignores case."""
    s, indicated = isolate_answer(text)
    if not indicated:
        quoted = [next(g for g in m.groups() if g) for m in _QUOTED.finditer(text)]
        lines = [line for line in text.strip().splitlines() if line.strip()]
        s = quoted[-1] if quoted else (lines[0] if lines else "")
    return s.strip(_AROUND).rstrip(".!").strip(_AROUND).lower()


def extract_answer(text: str, kind: AnswerKind, example: Example, labels: Sequence[str] = ()) -> str:
    """The parsed answer for a prediction (what gets compared with the target); ``labels``:
    a label task's labels."""
    if kind is AnswerKind.LABEL:
        return parse_label(text, labels)
    if kind is AnswerKind.NUMERIC:
        return parse_number(text)
    if kind is AnswerKind.BOOLEAN:
        return parse_boolean(text)
    if kind is AnswerKind.MULTIPLE_CHOICE:
        return parse_choice(text, example)
    if kind is AnswerKind.GENERATION:
        return text.strip()
    s, _ = isolate_answer(text)
    return s
