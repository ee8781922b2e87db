"""Typed run configuration with the paper's option names, validation and presets.

Every alternative the paper studies is a field here. Invalid combinations are
rejected up front with a message that names the fields (the original crashed
mid-run on many of them, GPO_SPEC section 9). The original spellings ``consine``
and ``relavance`` are accepted and normalised.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields

from gpo.tasks.catalog import suggest

ALIASES = {"consine": "cosine", "relavance": "relevance"}
CHOICES = {
    "instruction_pos": ("before_Q", "Q_begin", "Q_end", "A_begin"),
    "gradient_name": ("-", "feedback"),
    "momentum_para_name": ("-", "para", "feedback"),
    "momentum_selection_name": ("-", "recency", "relevance", "importance"),
    "momentum_update_name": ("-", "k-list", "real-time"),
    "learning_rate_name": ("w_lr", "wo_lr"),
    "decay_strategy": ("-", "fixed", "linear", "cosine"),
    "util_gradient_name": ("edit", "generate", "edit_without", "generate_without"),
    "edit_budget_enforcement": ("off", "reject", "resample"),
    "selection": ("race", "full"),
    "adopt": ("best", "significant"),
}


class ConfigError(ValueError):
    """An invalid option or combination; the message names the fields involved."""


@dataclass
class Budget:
    """Stop cleanly (keeping the best prompt so far) once any limit is reached.

    Limits are checked before each optimisation step, so a run may exceed one by at
    most one step's calls."""

    max_scorer_calls: int | None = None
    max_optimizer_calls: int | None = None
    max_tokens: int | None = None
    max_cost: float | None = None
    # Not a stop: each task's *search* may send at most this many scorer requests (the
    # initial prompt's eval scoring included, test scoring not). When the next prompt would
    # not fit, the search ends normally and the final prompt is still tested. Requests are
    # counted as a fresh run pays them (cache hits included), so equal budgets compare
    # optimizers fairly and a rerun from the cache ends at the same place.
    scorer_calls_per_task: int | None = None


@dataclass
class GPOConfig:
    # search loop (GPO_SPEC 5)
    num_search_epochs: int = 3
    opt_batch_size: int = 8
    num_generated_instructions_in_each_step: int = 8
    format_data_num: int = 3
    initial_instruction: str = "Let's think step by step."
    optimizer_temperature: float = 1.0
    optimizer_max_tokens: int = 512
    # where the instruction goes (GPO_SPEC 4.1)
    instruction_pos: str = "Q_end"
    include_qa: bool = False
    evaluate_generated_ins_on_few_shot: bool = False
    few_shot_number: int = 5
    # update direction: gradient and momentum (GPO_SPEC 6)
    gradient_name: str = "-"
    gradient_max_examples: int = 5
    momentum_para_name: str = "para"
    momentum_selection_name: str = "relevance"
    momentum_selection_num: int = 3
    momentum_update_name: str = "k-list"
    # update method and learning rate (GPO_SPEC 7)
    util_gradient_name: str = "generate_without"
    learning_rate_name: str = "w_lr"
    initial_step_size: int = 50
    decay_strategy: str = "cosine"
    use_warmup_strategy: bool = False
    warmup_steps: int = 0
    final_step_size: int = 10
    # beyond the original
    max_prompt_words: int = 150  # longer candidates are rejected (the paper's prompts have 7-97 words)
    edit_budget_enforcement: str = "off"  # off | reject | resample (candidates over the word budget)
    max_resample_rounds: int = 2
    test_each_step: bool = False  # score every step's prompt on test too (reporting only)
    train_probe: bool = True  # score U on the train batch every step (GPO_SPEC 5.4.1); off: only when the feedback gradient needs it
    # how a step's candidates are scored and the final prompt adopted (gpo.scoring.racing, .stats)
    selection: str = "race"  # race: stop candidates significantly worse than the leader; full: score all on all of eval
    race_alpha: float = 0.05  # level of racing's paired tests (Holm-corrected), and of every significance shown
    race_block: int = 8  # examples per racing block (at least 8)
    adopt: str = "best"  # best: the highest eval mean; significant: only if better than the initial prompt at race_alpha
    seed: int = 0
    budget: Budget = field(default_factory=Budget)

    def __post_init__(self) -> None:
        if isinstance(self.budget, dict):  # GPOConfig(budget={...}) as from a config file
            unknown = set(self.budget) - {f.name for f in fields(Budget)}
            if unknown:
                raise ConfigError(f"unknown budget field(s) {sorted(unknown)}")
            self.budget = Budget(**self.budget)
        for name in CHOICES:
            value = getattr(self, name)
            setattr(self, name, ALIASES.get(value, value))
        self.validate()

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        for name, allowed in CHOICES.items():
            value = getattr(self, name)
            if value not in allowed:
                raise ConfigError(f"{name}={value!r} is not allowed{suggest(str(value), allowed)}; choose from {', '.join(allowed)}")
        positive = ("num_search_epochs", "opt_batch_size", "num_generated_instructions_in_each_step", "format_data_num")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.optimizer_temperature < 0:
            raise ConfigError("optimizer_temperature must be >= 0")
        m_para, m_sel, m_upd = self.momentum_para_name, self.momentum_selection_name, self.momentum_update_name
        if m_para == "-":
            if m_sel != "-" or m_upd != "-":
                raise ConfigError(
                    "momentum_selection_name / momentum_update_name are set but momentum_para_name='-'; "
                    "set momentum_para_name to 'para' or 'feedback', or both others to '-'"
                )
        else:
            if m_upd == "-":
                raise ConfigError(f"momentum_para_name={m_para!r} needs momentum_update_name 'k-list' or 'real-time'")
            if m_upd == "k-list" and m_sel == "-":
                raise ConfigError("momentum_update_name='k-list' needs a momentum_selection_name (recency, relevance, importance)")
            if m_upd == "k-list" and self.momentum_selection_num < 1:
                raise ConfigError("momentum_update_name='k-list' needs momentum_selection_num >= 1")
            if m_upd == "real-time" and m_sel != "-":
                raise ConfigError("momentum_update_name='real-time' summarises every step; set momentum_selection_name='-'")
        needs_gradient = []
        if m_para == "feedback":
            needs_gradient.append("momentum_para_name='feedback'")
        if self.util_gradient_name in ("edit", "generate"):
            needs_gradient.append(f"util_gradient_name={self.util_gradient_name!r}")
        if needs_gradient and self.gradient_name != "feedback":
            raise ConfigError(f"{' and '.join(needs_gradient)} need gradient_name='feedback'")
        if self.learning_rate_name == "w_lr":
            if self.decay_strategy == "-":
                raise ConfigError("learning_rate_name='w_lr' needs a decay_strategy (fixed, linear, cosine)")
            if self.initial_step_size < 1:
                raise ConfigError("learning_rate_name='w_lr' needs initial_step_size >= 1 (words)")
            if self.final_step_size < 0 or self.final_step_size > self.initial_step_size:
                raise ConfigError("final_step_size must be between 0 and initial_step_size")
        elif self.decay_strategy != "-":
            raise ConfigError("decay_strategy is set but learning_rate_name='wo_lr' (no word budget); use w_lr or decay_strategy='-'")
        if self.edit_budget_enforcement != "off" and self.learning_rate_name != "w_lr":
            raise ConfigError("edit_budget_enforcement needs learning_rate_name='w_lr' (a word budget to enforce)")
        if self.use_warmup_strategy and self.warmup_steps < 1:
            raise ConfigError("use_warmup_strategy needs warmup_steps >= 1")
        if not 0 < self.race_alpha < 1:
            raise ConfigError(f"race_alpha must be between 0 and 1, got {self.race_alpha}")
        if self.race_block < 8:
            raise ConfigError(f"race_block must be at least 8 examples (a paired test on fewer can stop nothing), got {self.race_block}")
        if self.evaluate_generated_ins_on_few_shot and self.few_shot_number < 1:
            raise ConfigError("evaluate_generated_ins_on_few_shot needs few_shot_number >= 1")

    # ------------------------------------------------------------------ io
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict, where: str = "config") -> "GPOConfig":
        data = dict(data)
        known = {f.name for f in fields(cls)}
        budget = data.pop("budget", None) or {}
        renamed = {"momentum_select_num": "momentum_selection_num"}  # the original's config key
        clean = {}
        for key, value in data.items():
            key = renamed.get(key, key).replace("-", "_")
            if key not in known:
                raise ConfigError(f"{where}: unknown option {key!r}{suggest(key, known)}")
            clean[key] = value
        if not isinstance(budget, Budget):
            unknown = set(budget) - {f.name for f in fields(Budget)}
            if unknown:
                raise ConfigError(f"{where}: unknown budget field(s) {sorted(unknown)}")
            budget = Budget(**budget)
        return cls(**clean, budget=budget)

    def replace(self, **changes) -> "GPOConfig":
        return self.from_dict({**self.to_dict(), **changes})


# The paper's recommended setting (GPO.sh) and the alternatives it analyses. ``gpo`` is the
# default recipe and races candidates; ``gpo-paper`` and the analysis presets score every
# candidate on the whole eval split, as the paper did, so they reproduce its tables.
PAPER = dict(selection="full")
PRESETS: dict[str, dict] = {
    "gpo": {},
    "gpo-paper": PAPER,
    "no-momentum": dict(PAPER, momentum_para_name="-", momentum_selection_name="-", momentum_update_name="-"),
    "momentum-recency": dict(PAPER, momentum_selection_name="recency"),
    "momentum-importance": dict(PAPER, momentum_selection_name="importance"),
    "momentum-real-time": dict(PAPER, momentum_selection_name="-", momentum_update_name="real-time"),
    "feedback-gradient": dict(PAPER, gradient_name="feedback", util_gradient_name="generate"),
    "feedback-momentum": dict(PAPER, gradient_name="feedback", util_gradient_name="generate",
                              momentum_para_name="feedback", momentum_selection_name="recency"),
    "edit": dict(PAPER, util_gradient_name="edit_without"),
    "edit-feedback": dict(PAPER, gradient_name="feedback", util_gradient_name="edit"),
    "no-lr": dict(PAPER, learning_rate_name="wo_lr", decay_strategy="-"),
    "lr-fixed": dict(PAPER, decay_strategy="fixed"),
    "lr-linear": dict(PAPER, decay_strategy="linear"),
    "lr-cosine-warmup": dict(PAPER, use_warmup_strategy=True, warmup_steps=3),
    "few-shot": dict(PAPER, evaluate_generated_ins_on_few_shot=True),
}


def preset(name: str, **overrides) -> GPOConfig:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}{suggest(name, PRESETS)}; presets: {', '.join(PRESETS)}")
    return GPOConfig.from_dict({**PRESETS[name], **overrides}, where=f"preset {name}")
