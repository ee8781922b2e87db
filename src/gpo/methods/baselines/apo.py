"""APO / ProTeGi, Prompt Optimization with Textual Gradients (Pryzant et al., 2023,
"Automatic Prompt Optimization with 'Gradient Descent' and Beam Search").

Each step expands every prompt of the beam: score it on the train minibatch,
ask for ``gradients`` reasons why it fails the wrong examples (the textual
gradient), write ``edits`` improved prompts per reason, and add ``paraphrases``
rewordings of each edit (Monte Carlo successors). The new beam is chosen by a
UCB bandit: each round scores one prompt on a random ``bandit_batch`` of eval
examples, picking the prompt with the highest mean + c * sqrt(ln t / pulls);
after ``bandit_rounds`` rounds per prompt, the best ``beam`` estimates are kept
and scored on the whole eval split (examples the bandit scored are not paid
twice). Prompts the bandit drops are recorded with their estimate.
"""

from __future__ import annotations

from dataclasses import dataclass

import math

from gpo.engine.search import PromptSearch, StepPlan
from gpo.engine.state import SearchState, stable_seed
from gpo.engine.trajectory import Candidate, StepRecord
from gpo.methods.gpo.feedback import wrong_examples
from gpo.prompts.blocks import paraphrase_prompt
from gpo.prompts.tags import END, START, extract_all_tagged, polish
from gpo.tasks.task import Task


def gradient_prompt(prompt: str, wrong: str, reasons: int) -> str:
    return "\n\n".join(
        [
            "Your job is to find out why a prompt fails.",
            f"The prompt is:\n{prompt}",
            f"With this prompt, a model gets the examples below wrong.\n\n{wrong}",
            f"Give {reasons} different reasons why the prompt could have led to these mistakes. "
            f"Put each reason between {START} and {END}.",
        ]
    )


def edit_prompt(prompt: str, wrong: str, reason: str) -> str:
    return "\n\n".join(
        [
            "Your job is to improve a prompt.",
            f"The prompt is:\n{prompt}",
            f"With this prompt, a model gets the examples below wrong.\n\n{wrong}",
            f"A likely problem with the prompt: {reason}",
            f"Write an improved prompt that fixes this problem. Put the new prompt between {START} and {END}.",
        ]
    )


@dataclass(frozen=True)
class APOOptions:
    """APO's own options (``--method-option NAME=VALUE``)."""

    beam: int = 4
    errors: int = 4
    gradients: int = 2
    edits: int = 1
    paraphrases: int = 1
    bandit_batch: int = 4
    bandit_rounds: int = 2
    ucb_c: float = 1.0


class APO(PromptSearch):
    name = "apo"
    Options = APOOptions

    @classmethod
    def planned_step(cls, config, options, batch: int, n_eval: int) -> StepPlan:
        o = options
        edits = o.beam * o.gradients
        new = edits * o.edits * (1 + o.paraphrases)
        requests = o.beam + edits + edits * o.edits
        return StepPlan(o.beam * batch + new * (o.bandit_rounds * o.bandit_batch) + o.beam * n_eval, requests, requests - edits * o.edits + new)

    async def step(self, task: Task, state: SearchState, g: int) -> StepRecord:
        o, cfg = self.options, self.config
        seed = stable_seed(cfg.seed, task.id, self.name, g)
        train = task.split("train")
        probed = await self.actions.probe(task, state, list(state.pool), g)
        failing = [(p, w) for p, ev in probed if (w := wrong_examples(ev, train, o.errors))]
        metas = [gradient_prompt(p, w, o.gradients) for p, w in failing]
        replies = await self.actions.ask_raw(state, [self.actions.request(m, 1, stable_seed(seed, "g", i)) for i, m in enumerate(metas)])
        reasons = [(p, w, polish(r)) for (p, w), texts in zip(failing, replies)
                   for r in extract_all_tagged(texts[0])[: o.gradients]]
        edits = [edit_prompt(p, w, r) for p, w, r in reasons]
        texts = await self.actions.ask(state, edits, o.edits, stable_seed(seed, "e")) if edits and o.edits else []
        if texts and o.paraphrases:
            texts += await self.actions.ask(state, [paraphrase_prompt(t) for t in texts if t], o.paraphrases,
                                    stable_seed(seed, "p"))
        candidates = self.actions.screen(state, texts, state.current)
        await self._select(task, state, candidates, g)
        await self.actions.score(task, state, candidates, g)
        self.actions.keep_best(state, candidates, o.beam)
        return self.actions.record(task, state, g, "\n\n-----\n\n".join(metas + edits), candidates,
                           train_score=probed[0][1].score if probed else None, gradient="\n\n".join(r for _, _, r in reasons) or None)

    async def _select(self, task: Task, state: SearchState, candidates: list[Candidate], g: int) -> None:
        """UCB over the beam and the new candidates on eval minibatches; candidates
        outside the best ``beam`` estimates are marked as dropped."""
        o = self.options
        new = list(dict.fromkeys(c.text for c in candidates if c.rejected is None and not c.reused))
        if len(new) + len(state.pool) <= o.beam:
            return  # everything fits in the beam: nothing to choose
        n_eval = len(task.split("eval"))
        m = max(1, min(o.bandit_batch, n_eval))
        reserve = o.beam * n_eval * self.evaluator.requests_per_example(task)  # keep enough to score the kept prompts in full
        sums = {p: state.scores[p] * n_eval for p in state.pool}
        pulls = {p: n_eval for p in state.pool}
        sums.update({p: 0.0 for p in new})
        pulls.update({p: 0 for p in new})
        rng = self.actions.rng(task, g, "ucb")
        for t in range(1, o.bandit_rounds * len(new) + 1):
            untried = [p for p in new if pulls[p] == 0]
            arm = untried[0] if untried else max(
                new, key=lambda p: sums[p] / pulls[p] + o.ucb_c * math.sqrt(math.log(t) / pulls[p]))
            indices = sorted(rng.sample(range(n_eval), m))
            if self.evaluator.requests_needed(task, arm, "eval", indices) > self.ledger.remaining(task, state) - reserve:
                break
            ev = await self.evaluator.evaluate(task, arm, "eval", indices)
            sums[arm] += sum(r.score for r in ev.records)
            pulls[arm] += len(ev.records)
        estimate = {p: sums[p] / pulls[p] if pulls[p] else -1.0 for p in sums}
        kept = set(sorted(estimate, key=lambda p: -estimate[p])[: o.beam])
        for c in candidates:
            if c.rejected is None and not c.reused and c.text not in kept:
                shown = "unscored" if pulls[c.text] == 0 else f"{100 * estimate[c.text]:.1f} on {pulls[c.text]} examples"
                c.rejected = f"dropped by UCB selection (estimate {shown})"
