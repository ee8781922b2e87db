"""SGDM, the paper's row for stochastic gradient descent with momentum (Tables 5-7).

GPO's own engine with the update direction and method fixed to SGD with momentum's
analogues: the feedback on the current prompt's mistakes is the gradient, a running
summary of the prompt trajectory is the momentum (the paper's summarization-based
trajectory, real-time), and the update edits the current prompt with no
edit-distance limit. The rest of the configuration (epochs, batch, candidates,
position, scoring) is the run's, as for every baseline.
"""

from __future__ import annotations

from gpo.config import GPOConfig
from gpo.methods.gpo.method import GPO

SGDM_SETTINGS = dict(
    gradient_name="feedback",
    momentum_para_name="para", momentum_selection_name="-", momentum_update_name="real-time",
    util_gradient_name="edit", learning_rate_name="wo_lr", decay_strategy="-",
    use_warmup_strategy=False, warmup_steps=0, warmup_fraction=0.0, edit_budget_enforcement="off",
)


class SGDM(GPO):
    name = "sgdm"

    @classmethod
    def configured(cls, config: GPOConfig) -> GPOConfig:
        return config.replace(**SGDM_SETTINGS)

    @classmethod
    def needs_embedder(cls, config: GPOConfig) -> bool:
        return GPO.needs_embedder(cls.configured(config))

    @classmethod
    def report_rows(cls, config: dict) -> list[tuple[str, str]]:
        return GPO.report_rows({**config, **SGDM_SETTINGS})
