"""The original code's answer parsing (docs/BEHAVIOUR.md, "Scoring a prompt"), for ``extraction = original``.

The paper's numbers were measured with this parsing, so every paper-reproduction
preset uses it; gpo's own (``extraction = lenient``, gpo.scoring.extract) is the
default. Written from the spec's description, quirks kept on purpose:

- the answer cues: "answer is ", "answer: ", "answer is: " when one of them occurs
  in the reply as written (case-sensitive), else "is: " and "are: "; the text after
  the *last* occurrence of each cue that occurs is kept, in turn;
- numbers are rounded to whole numbers (banker's rounding: "4.5" reads as "4"),
  and the exact match ignores punctuation, so "35" matches "-35";
- booleans: punctuation removed; the target's truth value (true/yes/valid) is
  accepted too, and "0"/"1" read as false/true;
- multiple choice: the first bracketed letter, and no option-text matching;
- dyck_languages: the last run of closing brackets, compared with its spacing;
- word_sorting: only the reply's own layouts (one word per line, the words
  separated by single spaces, or one line of them).
"""

from __future__ import annotations

import re
import string

from gpo.tasks.task import AnswerKind

PRIMARY = ("answer is ", "answer: ", "answer is: ")
SECONDARY = ("is: ", "are: ")
AHEAD = (" is the correct answer", " is the right answer", " is the final answer", " is the answer")
GSM8K_MARK = "#### "
BOOLEAN_PAIRS = (("false", "true"), ("no", "yes"), ("invalid", "valid"))  # (false word, true word)
_WORDS = {w: str(i) for i, w in enumerate("one two three four five six seven eight nine ten eleven twelve".split(), 1)}
_PUNCT = str.maketrans("", "", string.punctuation)
_BRACKETED = re.compile(r"\([A-Za-z]\)")
_CLOSERS = re.compile(r"[>)\]}]+[ >)\]}]*")


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _number(s: str, indicated: bool) -> str:
    s = " ".join(_WORDS.get(w, w) for w in s.split(" "))
    s = s.split("=")[-1]
    for c in "$,%€£:":
        s = s.replace(c, "")
    s = s.strip()
    parts = s.split(" ") if indicated else s.split(" ")[::-1]  # first number after a cue, else the last
    s = next((p for p in parts if any(ch.isdigit() for ch in p)), parts[0])
    while s and s[-1].isalpha():  # "156kgs" -> "156"
        s = s[:-1]
    if s.endswith("-"):  # "823-yard" -> "823"
        s = s[:-1]
    if _is_float(s):
        return f"{round(float(s), 0):.0f}"
    last = re.search(r"(\d+)(?!.*\d)", s)
    return last.group(0) if last else s


def normalize(reply: str, kind: AnswerKind) -> str:
    """The parsed answer, as the original's normaliser gives it (docs/BEHAVIOUR.md, "Scoring a prompt")."""
    s = reply.lower().strip()
    behind = PRIMARY if any(cue in reply for cue in PRIMARY) else SECONDARY
    indicated = False
    for cue in (GSM8K_MARK,) + behind:
        if cue in s:
            s, indicated = s.split(cue)[-1], True
    for cue in AHEAD:
        if cue in s:
            s, indicated = s.split(cue)[0], True
    if kind is AnswerKind.MULTIPLE_CHOICE:
        first = _BRACKETED.search(s)
        s = first.group(0) if first else s
    if kind is AnswerKind.NUMERIC:
        s = _number(s, indicated)
    if kind is AnswerKind.BOOLEAN:
        s = s.translate(_PUNCT).strip()
    return s


def _bare_letter(text: str) -> str:
    return text[1] if re.fullmatch(r"\([a-z]\)", text) else text


def accuracy(parsed: str, target: str, metric: str = "exact") -> float:
    """1.0 or 0.0 as the original's accuracy rule gives it (docs/BEHAVIOUR.md, "Scoring a prompt")."""
    t, p = str(target).lower().strip(), str(parsed).lower().strip()
    if metric == "dyck":
        runs = _CLOSERS.findall(p)
        return float(bool(runs) and runs[-1].strip() == t)
    if metric == "word_sorting":
        return _word_sorting(p, t)
    t, p = _bare_letter(t), _bare_letter(p)
    if p == t or p.translate(_PUNCT).strip() == t.translate(_PUNCT).strip():
        return 1.0
    for pair in BOOLEAN_PAIRS:
        if t in pair:
            truth = "true" if t == pair[1] else "false"
            if p in ("0", "1"):
                p = "true" if p == "1" else "false"
            return float(p.strip() == truth)
    return 0.0


def _word_sorting(p: str, t: str) -> float:
    want = [w.strip() for w in t.split(" ")]
    if [line.strip() for line in p.split("\n") if len(line.split(" ")) == 1] == want:  # one word per line
        return 1.0
    if [w.strip() for w in p.split(" ")] == want:  # separated by single spaces
        return 1.0
    lines = p.split("\n")
    return float(any(line.split(" ") == want for line in lines) or lines == want)  # one line of them
