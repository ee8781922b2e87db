"""How a step gets new prompts from the optimizer LLM, the same way for every method: ask it
(``ask``, ``propose``, ``ask_raw``), hold its replies to a shape where that helps
(``constrained_replies``), judge each reply (``unusable``: leaked scaffolding, too long, not an
instruction, talk instead of an instruction, a copied task example), ask once more for one that
is no prompt, saying why (``repair``), and screen the rest (``screen``: duplicates, re-seen
prompts). ``StepActions`` has these."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Sequence

from gpo.config import GPOConfig
from gpo.engine.state import SearchState, stable_seed
from gpo.engine.stoppers import SPENT
from gpo.engine.trajectory import Candidate
from gpo.llm.base import LLM, ReplyShape, Request
from gpo.prompts.checks import ExampleSpans, leak_reason, not_an_instruction, word_edit_distance
from gpo.prompts.junk import TAG, junk_reason
from gpo.prompts.length import too_long
from gpo.prompts.tags import END, START, extract_tagged, polish
from gpo.scoring.demos import split_demos
from gpo.tasks.task import Task


def rejection_counts(candidates: Sequence[Candidate]) -> dict[str, int]:
    """How many of a step's replies were set aside, by kind of reason (the text before any
    detail: 'not an instruction', 'too long', 'stopped by racing', ...): a candidate's, and the
    first reply's where it was asked for again (``repair``)."""
    kinds = [why.split(":")[0].split(" (")[0] for c in candidates for why in (c.first_rejected, c.rejected) if why]
    return {k: kinds.count(k) for k in dict.fromkeys(kinds)}


SCORING_STOPS = ("stopped by racing", SPENT)  # set aside after screening: the proposal itself was usable
SHOWN_SPLITS = ("train", "eval", "format", "few_shot")  # the splits a search may read: a candidate copies none


def usable_proposals(candidates: Sequence[Candidate]) -> int:
    """How many of a step's proposals were usable prompts: parsed, new (not a duplicate nor
    seen before), within the length and word budgets and not a copy of the meta-prompt; a
    candidate that racing or the search budget stopped still counts, as its text was usable."""
    return sum(1 for c in candidates
               if not c.reused and (c.rejected is None or c.rejected.startswith(SCORING_STOPS)))


REPAIR_NOTE = ("That reply was set aside ({why}). Reply again with only the new prompt, an instruction for the "
               "task, between <START> and <END>.")


@dataclass(frozen=True)
class Reading:
    """How an optimizer's reply is read as a prompt (``extract``), and what a reply set aside is
    told when it is asked for again (``note``, with ``{why}``): by default the text between
    <START> and <END>, as every meta-prompt but the short one for a small optimizer asks."""

    extract: Callable[[str], str] = extract_tagged
    note: str = REPAIR_NOTE


TAGGED = Reading()


def repair_request(request: Request, reply: str, note: str, seed: int) -> Request:
    """The request a set-aside reply is asked for again with: the same meta-prompt, the reply,
    and why it was set aside in one sentence (``note``, a ``Reading.note`` filled in); one sample."""
    if request.messages is None:  # a base model: the text goes on
        return replace(request, prompt=f"{request.prompt or ''}{reply}\n\n{note}\n", n=1, seed=seed)
    return replace(request, messages=(*request.messages, ("assistant", reply), ("user", note)), n=1, seed=seed)


def _shown(asked: list[str], state: SearchState) -> str:
    """A step's meta-prompts with the prompts they quote cut out: what a reply copies when it
    continues the meta-prompt or repeats an example instead of writing a prompt."""
    text = "\n".join(asked)
    quoted = {*state.seen, *state.scores, *state.chosen}
    for prompt in sorted(quoted | {split_demos(p)[0] for p in quoted}, key=len, reverse=True):
        if prompt:
            text = text.replace(prompt, "\n")
    return text


class ProposalActions:
    """Asking for, repairing and screening new prompts, for ``StepActions`` (which gives
    ``config`` and ``optimizer_llm``)."""

    config: GPOConfig
    optimizer_llm: LLM

    def start_proposals(self) -> None:
        self.asked: dict[int, list[str]] = {}  # id(state) -> this step's meta-prompts (what a reply must not copy)
        self.examples: dict[int, ExampleSpans] = {}  # id(state) -> its task's examples' runs of words
        self._spans: dict[str, ExampleSpans] = {}  # task id -> the same, built once
        self._tags: dict[str, str] = {}
        self.task_tags: dict[int, str] = {}  # id(state) -> the tags its task's own texts use (a prompt may too)
        self.repairs: dict[int, dict[str, tuple[str, str]]] = {}  # id(state) -> repaired text -> (first reply, why)

    def begin(self, task: Task, state: SearchState) -> None:
        """A step of ``state``'s search on ``task`` begins: nothing asked yet, and its task's examples
        (the inputs and targets of every split but test, which no search reads) are what a
        candidate must not copy."""
        self.asked[id(state)], self.repairs[id(state)] = [], {}
        if task.id not in self._spans:
            texts = [[ex.input, ex.target] for split in SHOWN_SPLITS for ex in task.splits.get(split) or []]
            self._spans[task.id] = ExampleSpans(texts)
            self._tags[task.id] = " ".join(dict.fromkeys(m.group(0) for parts in texts for t in parts
                                                         for m in TAG.finditer(t)))
        self.examples[id(state)], self.task_tags[id(state)] = self._spans[task.id], self._tags[task.id]

    def request(self, prompt: str, n: int = 1, seed: int = 0, temperature: float | None = None,
                shape: ReplyShape | None = None) -> Request:
        t = self.config.optimizer_temperature if temperature is None else temperature
        return Request.chat(prompt, temperature=t, max_tokens=self.config.optimizer_max_tokens, n=n, seed=seed,
                            shape=shape)

    async def ask_raw(self, state: SearchState, requests: list[Request],
                      wrote: list[str] | None = None) -> list[list[str]]:
        """The optimizer's raw replies to several requests (sent together), counted against the task.
        What gpo wrote in them (``wrote``; by default every turn but the optimizer's own) is what a
        reply must not copy: an earlier reply quoted back to the optimizer is not meta-prompt."""
        replies = await self.optimizer_llm.generate(requests)
        self.asked.setdefault(id(state), []).extend(wrote if wrote is not None else (
            text for r in requests for role, text in (r.messages or (("user", r.prompt or ""),)) if role != "assistant"))
        for reply in replies:
            state.optimizer_samples += len(reply.samples)
            state.optimizer_tokens += sum(s.prompt_tokens + s.completion_tokens for s in reply.samples)
        return [reply.texts for reply in replies]

    def prompt_shape(self) -> ReplyShape | None:
        """The shape a reply that should be a new prompt is held to (``constrained_replies``;
        None, as the library leaves it, means free replies: ``gpo.run.build`` decides it for a run)."""
        return ReplyShape(START, END, self.config.max_prompt_words) if self.config.constrained_replies else None

    async def ask(self, state: SearchState, prompts: list[str], n: int, seed: int,
                  temperature: float | None = None) -> list[str]:
        """New prompts: n samples for each meta-prompt (``propose``)."""
        return await self.propose(state, [self.request(p, n, stable_seed(seed, i), temperature, self.prompt_shape())
                                          for i, p in enumerate(prompts)])

    async def propose(self, state: SearchState, requests: list[Request], reference: str = "",
                      reading: Reading = TAGGED) -> list[str]:
        """New prompts, every sample of each request in order: read by ``reading`` (by default
        extracted from <START>...<END>) and polished (with ``constrained_replies``, the backend holds
        each reply to that shape). A reply that is no prompt (``unusable``) is asked for once more per
        ``repair`` round, the reason given in one sentence; the new reply takes its place and
        ``screen`` records the first."""
        replies = await self.ask_raw(state, requests)
        texts = [[polish(reading.extract(t)) for t in texts] for texts in replies]
        for r in range(self.config.repair):
            shown = _shown(self.asked.get(id(state), []), state)
            broken = [(i, j, why) for i, ts in enumerate(texts) for j, t in enumerate(ts)
                      if (why := self.unusable(state, t, reference or state.current, shown))]
            if not broken:
                break
            notes = [reading.note.format(why=why) for _, _, why in broken]
            again = [repair_request(requests[i], replies[i][j], note, stable_seed(requests[i].seed, j, "repair", r))
                     for (i, j, _), note in zip(broken, notes)]
            for (i, j, why), reply in zip(broken, await self.ask_raw(state, again, wrote=notes)):
                fixed = polish(reading.extract(reply[0]))
                self.repairs.setdefault(id(state), {})[fixed] = self.repairs[id(state)].get(texts[i][j], (texts[i][j], why))
                texts[i][j], replies[i][j] = fixed, reply[0]
        return [t for ts in texts for t in ts]

    def unusable(self, state: SearchState, instruction: str, reference: str, shown: str) -> str | None:
        """Why an instruction is no prompt, else None: leaked scaffolding, too long (words or
        ``max_prompt_tokens``), not an instruction (a transcript, a form, a copy of the step's
        meta-prompts or their examples), a reply that talks, greets, asks or repeats instead of
        instructing (``gpo.prompts.junk``), or a copy of a train or eval example (``ExampleSpans``)."""
        examples, start = self.examples.get(id(state)), split_demos(reference)[0]
        return (leak_reason(instruction, self.config.max_prompt_words)
                or too_long(instruction, self.config.max_prompt_tokens) or not_an_instruction(instruction, shown)
                or junk_reason(instruction, allowed=f"{start} {self.task_tags.get(id(state), '')}")
                or (examples.copied(instruction, allowed=start) if examples else None))

    def screen(self, state: SearchState, texts: list[str], reference: str,
               check: Callable[[Candidate], str | None] | None = None,
               this_step: set[str] | None = None) -> list[Candidate]:
        """Each text as a Candidate, in generation order, either usable or marked with why not:
        ``unusable``, repeated within the step, failing ``check``, or seen before (re-used with its
        stored score when it was scored). Pass ``this_step`` to carry the step's texts across several calls. Only a text's instruction
        is judged (and its edit distance from the reference's): demonstrations come from the data.
        A text ``propose`` repaired carries the first reply and why it was set aside."""
        out, this_step = [], (set() if this_step is None else this_step)
        shown = _shown(self.asked.get(id(state), []), state)
        for text in texts:
            instruction, start = split_demos(text)[0], split_demos(reference)[0]
            c = Candidate(text=text, edit_distance=word_edit_distance(start, instruction))
            c.first_reply, c.first_rejected = self.repairs.get(id(state), {}).get(instruction, (None, None))
            c.rejected = self.unusable(state, instruction, reference, shown)
            failed = None
            if c.rejected is None and text in this_step:
                c.rejected = "duplicate in this step"
            elif c.rejected is None and check is not None and (failed := check(c)):
                c.rejected = failed
            elif c.rejected is None and text in state.seen:
                c.reused = text in state.scores
                if not c.reused:
                    c.rejected = "seen before, never scored"
            if c.rejected is None or c.rejected == failed:
                this_step.add(text)
            if text not in state.seen:
                state.seen.append(text)
            out.append(c)
        return out

