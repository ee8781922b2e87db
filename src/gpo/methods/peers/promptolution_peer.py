"""promptolution's optimizers (Zehle et al., 2025): CAPO, OPRO and EvoPrompt-GA, run
through the library's published classes.

- Its meta-LLM is a ``BaseLLM`` that sends each request through gpo's optimizer LLM.
- Its task is a ``BaseTask`` over the eval split. Inputs and references are columns, as
  in its ``ClassificationTask``, and its blocks are the library's ``sequential_block``
  strategy.
- Its predictor is a ``BasePredictor`` whose "prediction" for (prompt, input) is gpo's
  score of that prompt on that example. The score comes from gpo's Evaluator (rendering,
  extraction, metric), so the task's metric reads it back unchanged.
- CAPO's few-shot demonstrations come from the train split. They show the reference
  answers as they are (no generated reasoning, no accuracy check: both would be scorer
  requests outside the Evaluator).

The library's only budget is a number of steps, so a callback stops it once its share
of the scorer budget is spent. A scoring that would pass the share is refused: the
library ends its loop on that error and returns its prompts.
"""

from __future__ import annotations

from dataclasses import dataclass

import logging
from collections import defaultdict

from gpo.methods.peers.bridge import Bridge, ShareSpent, PeerSearch
from gpo.tasks.task import Task


def _classes():
    """The adapter classes, built on promptolution's bases (imported only when a peer runs)."""
    import numpy as np
    from promptolution.llms.base_llm import BaseLLM
    from promptolution.predictors.base_predictor import BasePredictor
    from promptolution.tasks.base_task import BaseTask
    from promptolution.utils.callbacks import BaseCallback

    class GpoLLM(BaseLLM):
        def __init__(self, bridge: Bridge):
            super().__init__()
            self.bridge = bridge

        def _get_response(self, prompts, system_prompts):
            return [self.bridge.ask(p, system=s) for p, s in zip(prompts, system_prompts)]

    class GpoScorePredictor(BasePredictor):
        def __init__(self, llm, bridge: Bridge, index: dict[str, int]):
            super().__init__(llm)
            self.bridge, self.index = bridge, index

        def predict(self, prompts, xs, system_prompts=None):
            prompts = [prompts] * len(xs) if isinstance(prompts, str) else list(prompts)
            wanted: dict[str, list[int]] = defaultdict(list)
            for p, x in zip(prompts, xs):
                wanted[p].append(self.index[x])
            got = {}
            for p, indices in wanted.items():
                for i, rec in zip(indices, self.bridge.records(p, "eval", indices)):
                    got[p, i] = rec
            recs = [got[p, self.index[x]] for p, x in zip(prompts, xs)]
            return [str(r.score) for r in recs], [f"{x}\n{r.raw_answer}" for x, r in zip(xs, recs)]

        def _extract_preds(self, preds):
            return preds

    class GpoScoredTask(BaseTask):
        def __init__(self, df, description: str, block: int, seed: int):
            super().__init__(df, x_column="x", y_column="y", task_description=description, n_subsamples=block,
                             eval_strategy="sequential_block", seed=seed)
            self.task_type = "classification"

        def _evaluate(self, xs, ys, preds):
            return np.asarray([float(p) for p in preds], dtype=float)

    class StopWhenSpent(BaseCallback):
        def __init__(self, bridge: Bridge):
            super().__init__()
            self.bridge = bridge

        def on_step_end(self, optimizer) -> bool:
            return not self.bridge.exhausted()

    return GpoLLM, GpoScorePredictor, GpoScoredTask, StopWhenSpent


def _quiet_logs() -> None:
    """Only the library's errors reach the user, and not the one its loop logs when gpo refuses a
    scoring over budget (that refusal is how the run ends)."""
    logging.getLogger("promptolution").setLevel(logging.ERROR)
    loop_logger = logging.getLogger("promptolution.optimizers.base_optimizer")
    if not any(isinstance(f, _NotShareSpent) for f in loop_logger.filters):
        loop_logger.addFilter(_NotShareSpent())


class _NotShareSpent(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], ShareSpent))


@dataclass(frozen=True)
class PromptolutionSearchOptions:
    """PromptolutionSearch's own options (``--method-option NAME=VALUE``)."""

    block: int = 0  # 0: a quarter of eval (at least 1, at most 30)
    max_steps: int = 1000
    population: int = 4  # the initial prompt and variations of it by the library's create_prompt_variation


class PromptolutionSearch(PeerSearch):
    library = "promptolution"
    optimizer_class = "?"  # the class name in promptolution.optimizers
    Options = PromptolutionSearchOptions  # its optimizers need a population of several prompts

    def extra(self, task: Task, frame) -> dict:
        return {}

    def run_peer(self, bridge: Bridge, task: Task, initial: str) -> list[str]:
        import pandas as pd
        import promptolution.optimizers as optimizers
        from promptolution.utils.prompt_creation import create_prompt_variation

        GpoLLM, GpoScorePredictor, GpoScoredTask, StopWhenSpent = _classes()
        _quiet_logs()
        evals = task.split("eval")
        index: dict[str, int] = {}
        for i, ex in enumerate(evals):
            index.setdefault(ex.input, i)
        frame = pd.DataFrame({"x": [ex.input for ex in evals], "y": [ex.target for ex in evals]})
        block = self.options.block or max(1, min(30, len(evals) // 4))
        llm = GpoLLM(bridge)
        population = [initial] + create_prompt_variation([initial] * (self.options.population - 1), llm)
        optimizer = getattr(optimizers, self.optimizer_class)(
            predictor=GpoScorePredictor(llm, bridge, index), task=GpoScoredTask(frame, task.id, block, self.config.seed),
            meta_llm=llm, initial_prompts=list(dict.fromkeys(p for p in population if p.strip())),
            callbacks=[StopWhenSpent(bridge)], **self.extra(task, frame))
        try:
            prompts = optimizer.optimize(n_steps=self.options.max_steps)
        except ShareSpent:
            prompts = optimizer.prompts
        return [str(p) for p in prompts]


class CAPO(PromptolutionSearch):
    name = "capo"
    optimizer_class = "CAPO"

    def extra(self, task: Task, frame) -> dict:
        import pandas as pd

        train = task.split("train")
        shots = pd.DataFrame({"x": [ex.input for ex in train], "y": [ex.demo_answer for ex in train]})
        return dict(df_few_shots=shots, check_fs_accuracy=False, create_fs_reasoning=False,
                    upper_shots=min(5, len(train)))  # CAPO draws up to 5 (its default) without replacement


class PromptolutionOPRO(PromptolutionSearch):
    name = "pl-opro"
    optimizer_class = "OPRO"


class PromptolutionEvoPromptGA(PromptolutionSearch):
    name = "pl-evoprompt-ga"
    optimizer_class = "EvoPromptGA"
