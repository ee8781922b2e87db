"""GEPA (Agrawal et al., 2025, "GEPA: Reflective Prompt Evolution Can Outperform
Reinforcement Learning"), run through its published ``gepa.optimize`` API.

The instruction is GEPA's one component. Its adapter scores a candidate on train
minibatches and on the eval split (GEPA's valset) with gpo's Evaluator. Each
example's feedback is whether the answer was right, and the reference answer when it
was not. The reflection model is gpo's optimizer LLM. GEPA's defaults are kept
(Pareto candidate selection, minibatches of 3, its reflection prompt). It stops when
its share of the scorer budget is spent. GEPA's best candidate is the one with the
best mean on the eval split, which is how gpo picks the final prompt too.
"""

from __future__ import annotations

from dataclasses import dataclass

from gpo.methods.peers.bridge import Bridge, ShareSpent, PeerSearch
from gpo.tasks.task import Task

COMPONENT = "instruction"


class _Quiet:
    """GEPA's logger protocol; gpo reports progress itself."""

    def log(self, message: str) -> None: ...


class GpoAdapter:
    """gepa's ``GEPAAdapter`` protocol over gpo's Evaluator. Data items are (split, index)."""

    propose_new_texts = None  # GEPA proposes with its own reflection prompt

    def __init__(self, bridge: Bridge, task: Task):
        self.bridge, self.task = bridge, task

    def evaluate(self, batch, candidate, capture_traces=False):
        from gepa.core.adapter import EvaluationBatch

        prompt = candidate[COMPONENT]
        records = {}
        for split in dict.fromkeys(s for s, _ in batch):
            indices = [i for s, i in batch if s == split]
            for i, rec in zip(indices, self.bridge.records(prompt, split, indices)):
                records[split, i] = rec
        recs = [records[item] for item in batch]
        traces = None
        if capture_traces:
            traces = [{"input": self.task.split(s)[i].input, "output": r.raw_answer, "target": r.target,
                       "score": r.score} for (s, i), r in zip(batch, recs)]
        return EvaluationBatch(outputs=[r.raw_answer for r in recs], scores=[r.score for r in recs],
                               trajectories=traces)

    def make_reflective_dataset(self, candidate, eval_batch, components_to_update):
        items = [{"Inputs": t["input"], "Generated Outputs": t["output"],
                  "Feedback": "Correct." if t["score"] >= 1 else f"Incorrect. The correct answer is: {t['target']}"}
                 for t in eval_batch.trajectories or []]
        return {name: items for name in components_to_update}


@dataclass(frozen=True)
class GEPAOptions:
    """GEPA's own options (``--method-option NAME=VALUE``)."""

    minibatch: int = 3


class GEPA(PeerSearch):
    name = "gepa"
    library = "gepa"
    Options = GEPAOptions

    def run_peer(self, bridge: Bridge, task: Task, initial: str) -> list[str]:
        import gepa

        trainset = [("train", i) for i in range(len(task.split("train")))]
        valset = [("eval", i) for i in range(len(task.split("eval")))]
        try:
            result = gepa.optimize(
                seed_candidate={COMPONENT: initial}, trainset=trainset, valset=valset,
                adapter=GpoAdapter(bridge, task), reflection_lm=bridge.ask,
                reflection_minibatch_size=self.options.minibatch, stop_callbacks=lambda _: bridge.exhausted(),
                logger=_Quiet(), seed=self.config.seed, raise_on_exception=True,
            )
        except ShareSpent:
            return []  # gpo keeps every whole-eval score GEPA obtained; the best of them is final
        return [result.best_candidate[COMPONENT]]
