"""An LLM judge: ``--metric judge`` grades each output against the user's rubric.

The judge is any model gpo supports (``--judge-model``; the optimizer's by default),
asked greedily, so its grades are cached and reproducible like any request. Each grade
is one judge request; a reply without a score is asked once more, in a second turn
asking for the score line alone; a reply still without one scores 0 and is counted in
``unparsed`` (the report shows it). Judge requests count in the task's scoring
requests, so the search budget and racing plan for them.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from gpo.llm.base import LLM, Request
from gpo.tasks.task import Example
from gpo.names import DEFAULT_MAX_TOKENS

SCALE = 10
ASK_SCORE = f"End your reply with one line of the form 'Score: N', where N is a whole number from 0 (fails the rubric) to {SCALE} (meets it fully)."
ASK_AGAIN = f"Give only the score line now: 'Score: N' with N from 0 to {SCALE}."
_SCORE = re.compile(r"score\s*[:=]?\s*\**\s*(\d+(?:\.\d+)?)\s*(?:/\s*(\d+(?:\.\d+)?))?", re.I)
_FRACTION = re.compile(r"(\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)")


def parse_score(reply: str) -> float | None:
    """The last score in a reply, as a fraction in [0, 1]: 'Score: 7' (out of 10),
    'Score: 7/10', 'Score: 0.7', or a bare '7/10'. None when there is none."""
    found = _SCORE.findall(reply) or _FRACTION.findall(reply)
    if not found:
        return None
    value, scale = found[-1]
    number = float(value)
    if scale:
        total = float(scale)
        return None if total <= 0 else min(1.0, max(0.0, number / total))
    if "." in value and number <= 1:
        return number
    return min(1.0, max(0.0, number / SCALE))


@dataclass
class Judge:
    """Grades outputs with ``llm`` against ``rubric``."""

    llm: LLM
    rubric: str
    max_tokens: int = DEFAULT_MAX_TOKENS
    unparsed: Counter = field(default_factory=Counter)  # task id -> grades that found no score
    requests: Counter = field(default_factory=Counter)  # task id -> judge requests made

    def request(self, example: Example, output: str) -> Request:
        parts = [self.rubric.strip(), f"Input:\n{example.input}", f"Output to grade:\n{output.strip()}"]
        if example.target:
            parts.append(f"Reference answer:\n{example.target}")
        parts.append(ASK_SCORE)
        return Request.chat("\n\n".join(parts), temperature=0.0, max_tokens=self.max_tokens)

    async def grade(self, task_id: str, examples: list[Example], outputs: list[str]) -> list[tuple[float, str]]:
        """(score in [0, 1], the judge's reply) for each output."""
        firsts = [self.request(e, o) for e, o in zip(examples, outputs)]
        replies = [c.text for c in await self.llm.generate(firsts)]
        scores = [parse_score(r) for r in replies]
        self.requests[task_id] += len(firsts)
        missing = [i for i, score in enumerate(scores) if score is None]
        if missing:
            again = [Request.chat(firsts[i].message_dicts() + [{"role": "assistant", "content": replies[i]},
                                                                {"role": "user", "content": ASK_AGAIN}],
                                  temperature=0.0, max_tokens=16) for i in missing]
            for i, c in zip(missing, await self.llm.generate(again)):
                replies[i], scores[i] = f"{replies[i]}\n[asked again] {c.text}", parse_score(c.text)
            self.requests[task_id] += len(again)
        self.unparsed[task_id] += sum(score is None for score in scores)
        return [(score or 0.0, reply) for score, reply in zip(scores, replies)]
