"""Typed run configuration with the paper's option names, validation and presets.

Every alternative the paper studies is a field here. Invalid combinations are
rejected up front with a message that names the fields (the original crashed
mid-run on many of them). The original spellings ``consine`` and ``relavance`` are
accepted and normalised (``normalised``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields

from gpo.errors import ConfigError, suggest  # noqa: F401 - ConfigError is re-exported here
from gpo.tasks import induction

ALIASES = {"consine": "cosine", "relavance": "relevance"}  # the original's spellings of values
RENAMED = {"momentum_select_num": "momentum_selection_num"}  # the original's config key
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
    "adopt": ("best", "significant", "significant+constant", "lcb"),
    "pool": ("best", "pareto"),
    "extraction": ("lenient", "original"),
    "objective": ("accuracy", "macro_f1"),
}


@dataclass
class Budget:
    """Stop cleanly (keeping the best prompt so far) once any limit is reached.

    The four run limits are hard caps held by the run's meter (``gpo.llm.meter``): a
    request that would pass one is not sent, and they hold across ``gpo resume``."""

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

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None and value <= 0:
                flag = "--" + f.name.replace("_", "-")
                raise ConfigError(f"{flag} must be more than 0, got {value!r} (leave it out for no limit)")


@dataclass
class SearchSettings:
    """What every search shares, whatever its method: how long it runs and on what, how
    the optimizer LLM is asked, how candidates are scored, and which prompt is adopted."""

    # the loop: epochs over train in minibatches, N candidates a step
    num_search_epochs: int = 3
    opt_batch_size: int = 8
    num_generated_instructions_in_each_step: int = 8
    format_data_num: int = 3  # task examples a meta-prompt shows
    initial_instruction: str = "Let's think step by step."
    optimizer_temperature: float = 1.0
    optimizer_max_tokens: int = 512
    # where the instruction goes (docs/BEHAVIOUR.md, "Scoring a prompt")
    instruction_pos: str = "Q_end"
    include_qa: bool = False
    evaluate_generated_ins_on_few_shot: bool = False
    few_shot_number: int = 5
    max_prompt_words: int = 150  # longer candidates are rejected (the paper's prompts have 7-97 words)
    patience: int = 0  # end a task's search after this many steps without a new best on eval (0: never)
    # the headroom check before a task's search (gpo.scoring.headroom): its verdict is shown, and a probe
    # prompt significantly better than the initial one on its sample becomes the search's starting point.
    # Off here and in the paper's presets; `gpo optimize` turns it on (gpo.run.sources; --no-probe)
    probe: bool = False
    # hold the optimizer's replies for new prompts to one tagged text of at most max_prompt_words
    # words (a grammar for llama.cpp models, a JSON schema for endpoints; gpo.llm.types.ReplyShape).
    # None (the default): on where the optimizer's backend is measured to write more usable prompts so,
    # off elsewhere (gpo.llm.resolve.ModelRef.constrains_well, decided when a run is built)
    constrained_replies: bool | None = None
    # the update's meta-prompt: "large" (the paper's content: task examples with the prompt's place
    # marked, the trajectory, the word budget, tags) or "small" (for a small optimizer: the examples as
    # input -> output, the current instruction and one sentence asked for; gpo.methods.gpo.update).
    # None (the default): small for the embedded model, large elsewhere (ModelRef.known_small)
    optimizer_size: str | None = None
    # a reply that is no prompt (gpo.engine.actions.StepActions.unusable) is asked for again this many
    # times, told why in one sentence; 0: never (the paper's presets)
    repair: int = 1
    # how a step's candidates are scored and the final prompt adopted (gpo.scoring.racing, .stats)
    selection: str = "race"  # race: stop candidates significantly worse than the leader; full: score all on all of eval
    race_alpha: float = 0.05  # level of racing's paired tests (Holm-corrected), and of every significance shown
    race_block: int = 8  # examples per racing block (at least 8)
    # significant (default): the best on eval replaces the initial prompt only if it is significantly
    # better there (at race_alpha); significant+constant: and also significantly better than the best
    # constant answer on eval, without collapsing to one answer (closed-answer tasks; gpo.scoring.constant);
    # best: the highest eval mean, the paper's rule (its presets use it)
    # lcb: among the prompts scored on all of eval, the one whose paired gain over the initial prompt has the
    # highest lower bound, the bounds Bonferroni-corrected for how many were scored (gpo.engine.adoption)
    adopt: str = "significant"
    # the prompts a step updates: best (the method's own: GPO's current prompt, a beam's best) or pareto,
    # drawn from the per-example Pareto frontier of the scored prompts by the eval examples each wins
    # (GEPA's pool; gpo.engine.frontier); merge: up to this many merges of two frontier prompts a search
    pool: str = "best"
    merge: int = 0
    # a share of eval kept out of the search, scored only at the end to choose between the initial
    # prompt and the search's best few (gpo.engine.adoption); 0: none
    final_holdout: float = 0.0
    # the prompt's length as an objective: choices rank by score - length_penalty x tokens / max_prompt_tokens
    # (CAPO's penalty), and a candidate longer than max_prompt_tokens is set aside (0: no cap; the penalty
    # then divides by 1,000 tokens). Tokens are counted as gpo.prompts.length says
    length_penalty: float = 0.0
    max_prompt_tokens: int = 0
    # what a split's score is: accuracy (the mean of per-example scores) or macro_f1 (closed-answer
    # tasks: the mean F1 of the classes, compared by a paired bootstrap; gpo.scoring.objective)
    objective: str = "accuracy"
    # how a reply becomes an answer (gpo.scoring.extract, .original)
    extraction: str = "lenient"  # lenient: gpo's parsing; original: the original code's, for reproducing the paper
    seed: int = 0
    budget: Budget = field(default_factory=Budget)

    def validate_search(self) -> None:
        _check_choices(self, SearchSettings)
        if self.optimizer_size not in (None, "small", "large"):
            raise ConfigError(f"optimizer_size must be small or large, got {self.optimizer_size!r}")
        if not 0 <= self.repair <= 3:
            raise ConfigError(f"repair must be 0 (off) to 3 rounds, got {self.repair}")
        if self.patience < 0:
            raise ConfigError(f"patience must be 0 (off) or more steps, got {self.patience}")
        positive = ("num_search_epochs", "opt_batch_size", "num_generated_instructions_in_each_step", "format_data_num")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.optimizer_temperature < 0:
            raise ConfigError("optimizer_temperature must be >= 0")
        if not 0 < self.race_alpha < 1:
            raise ConfigError(f"race_alpha must be between 0 and 1, got {self.race_alpha}")
        if self.race_block < 8:
            raise ConfigError(f"race_block must be at least 8 examples (a paired test on fewer can stop nothing), got {self.race_block}")
        if not 0 <= self.final_holdout < 1:
            raise ConfigError(f"final_holdout is the share of eval kept out of the search, from 0 up to 1 (not 1), "
                              f"got {self.final_holdout}")
        for name in ("merge", "max_prompt_tokens"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be 0 (off) or more, got {getattr(self, name)}")
        if self.length_penalty < 0:
            raise ConfigError(f"length_penalty must be 0 (off) or more, got {self.length_penalty}")
        if self.merge and self.pool != "pareto":
            raise ConfigError("merge combines prompts of the Pareto pool; it needs pool='pareto' (--pool pareto)")
        if self.evaluate_generated_ins_on_few_shot and self.few_shot_number < 1:
            raise ConfigError("evaluate_generated_ins_on_few_shot needs few_shot_number >= 1")


@dataclass
class GPOOptions:
    """GPO's own options, the paper's switches under the paper's names: the update direction
    (gradient and momentum), the update method and the learning rate (word budget and its
    decay). Validated here: which of them go together."""

    # update direction: gradient and momentum (docs/BEHAVIOUR.md, "The update direction")
    gradient_name: str = "-"
    gradient_max_examples: int = 5
    momentum_para_name: str = "para"
    momentum_selection_name: str = "relevance"
    momentum_selection_num: int = 3
    momentum_update_name: str = "k-list"
    # update method and learning rate (docs/BEHAVIOUR.md, "The update")
    util_gradient_name: str = "generate_without"
    learning_rate_name: str = "w_lr"
    initial_step_size: int = 50
    decay_strategy: str = "cosine"
    use_warmup_strategy: bool = False
    warmup_steps: int = 0
    warmup_fraction: float = 0.0  # warm up over this share of each task's steps instead (the paper: 0.05)
    final_step_size: int = 10
    # beyond the paper
    edit_budget_enforcement: str = "off"  # off | reject | resample (candidates over the word budget)
    max_resample_rounds: int = 2
    test_each_step: bool = False  # score every step's prompt on test too (reporting only)
    train_probe: bool = True  # score U on the train batch every step; off: only when the feedback gradient needs it

    def validate_gpo(self) -> None:
        _check_choices(self, GPOOptions)
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
        if not 0 <= self.warmup_fraction < 1:
            raise ConfigError(f"warmup_fraction must be in [0, 1), got {self.warmup_fraction}")
        if self.warmup_steps and self.warmup_fraction:
            raise ConfigError("set warmup_steps or warmup_fraction, not both")
        if self.use_warmup_strategy and self.warmup_steps < 1 and not self.warmup_fraction:
            raise ConfigError("use_warmup_strategy needs warmup_steps >= 1 or warmup_fraction > 0")


def _check_choices(settings, cls) -> None:
    for f in fields(cls):
        if f.name in CHOICES and getattr(settings, f.name) not in CHOICES[f.name]:
            value, allowed = getattr(settings, f.name), CHOICES[f.name]
            raise ConfigError(f"{f.name}={value!r} is not allowed{suggest(str(value), allowed)}; choose from {', '.join(allowed)}")


def normalised(key: str, value=None) -> tuple[str, object]:
    """An option as gpo names it: the original's config key ``momentum_select_num`` and its
    spellings ``consine`` and ``relavance`` are accepted wherever options are read (flags,
    config files, presets, run.json) and normalised here, once."""
    key = key.replace("-", "_")
    key = RENAMED.get(key, key)
    return key, (ALIASES.get(value, value) if key in CHOICES and isinstance(value, str) else value)


@dataclass
class GPOConfig(GPOOptions, SearchSettings):
    """A run's options, flat as run.json, config files and flags name them: the settings
    every search shares (``SearchSettings``) and GPO's own (``GPOOptions``). Each method
    reads the shared ones; GPO (and the methods built on it) read its own too."""

    def __post_init__(self) -> None:
        if isinstance(self.budget, dict):  # GPOConfig(budget={...}) as from a config file
            unknown = set(self.budget) - {f.name for f in fields(Budget)}
            if unknown:
                raise ConfigError(f"unknown budget field(s) {sorted(unknown)}")
            self.budget = Budget(**self.budget)
        for name in CHOICES:
            setattr(self, name, normalised(name, getattr(self, name))[1])
        self.validate()

    def validate(self) -> None:
        self.validate_search()
        self.validate_gpo()

    # ------------------------------------------------------------------ io
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict, where: str = "config") -> "GPOConfig":
        data = dict(data)
        known = {f.name for f in fields(cls)}
        budget = data.pop("budget", None) or {}
        clean = {}
        for key, value in data.items():
            key, value = normalised(key, value)
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


# Named settings. ``gpo`` is the default recipe (GPO.sh) and races candidates; ``quickstart``
# is the same recipe, small (what `gpo optimize` runs with nothing else). Every other
# preset reproduces a condition of the paper: it scores every candidate on the whole eval
# split, parses answers as the original code did and adopts the best prompt on eval
# whether or not its gain is significant (``PAPER``). ``CELLS`` says, for each
# preset, what it reproduces; ``gpo presets`` lists them.
PAPER = dict(selection="full", extraction="original", adopt="best", probe=False, constrained_replies=False, repair=0,
             optimizer_size="large")
PRESETS: dict[str, dict] = {}
CELLS: dict[str, str] = {}


def _preset(name: str, cell: str, **settings) -> None:
    PRESETS[name] = settings
    CELLS[name] = cell


_preset("gpo", "GPO's recipe (GPO.sh) with gpo's defaults: racing, lenient answer parsing")
_preset("quickstart", "`gpo optimize` with nothing else: a demonstration search (or --method's) on "
        "instruction induction's singular_to_plural, small enough for 2 CPU cores (2 epochs, batch 8, 3 "
        "candidates a step, 160 search requests); a new prompt must beat the initial prompt, and the best "
        "constant answer where there is one, significantly on eval; no headroom check before it (its task has "
        "headroom, BENCHMARKS.md \"probe\"; `gpo probe` shows it), to stay within about two minutes",
        num_search_epochs=2, opt_batch_size=8, num_generated_instructions_in_each_step=3, optimizer_max_tokens=96,
        adopt="significant+constant", probe=False)
# The quickstart's run settings, beside its options: `gpo optimize` with nothing chosen is a demonstration
# search on the instruction-induction task the package ships, where a prompt really helps the embedded model
# (BENCHMARKS.md, "instruction induction"), in about two minutes on 2 CPU cores; the method (--method) and
# budgets may still be chosen (``gpo.run.sources.from_sources`` applies them)
QUICKSTART = {"dataset": induction.DATASET, "tasks": ["singular_to_plural"], "method": "demos",
              "max_examples": ["eval=32", "test=40"], "scorer_max_tokens": 48}
QUICKSTART_BUDGET = {"scorer_calls_per_task": 160}
# Run sizes (`--budget light|medium|heavy|full`, in the spirit of DSPy MIPROv2's `auto`): caps on the
# examples a run scores per split (a larger file's other rows are left unused, and the plan says so; the
# train cap bounds the steps, one a minibatch), the candidates a step and each task's search requests.
# `medium` is the default wherever the preset is `gpo` (the paper's data fits its caps: at most 100 train,
# 100 eval and 300 test examples a task); the paper's other presets and the quickstart keep their own
# sizes; `full` caps nothing. A time or money budget (`--budget 15m`, `--budget 2usd`) picks the largest
# size whose planned upper bound fits it (gpo.run.sizing). Explicit flags win over a size.
SIZES: dict[str, dict] = {
    "light": {"max_examples": {"train": 32, "eval": 16, "test": 32}, "candidates": 3, "search_requests": 96},
    "medium": {"max_examples": {"train": 100, "eval": 100, "test": 300}, "candidates": 4, "search_requests": 400},
    "heavy": {"max_examples": {"train": 300, "eval": 300, "test": 1000}, "candidates": 8, "search_requests": 4000},
    "full": {"max_examples": {}, "candidates": None, "search_requests": None},
}
DEFAULT_SIZE = "medium"
SIZED_PRESETS = ("gpo",)  # the presets a run gets DEFAULT_SIZE and the headroom probe with (the others reproduce the paper's runs)
_preset("gpo-paper", "GPO's recipe as the paper ran it (Tables 5-7: every candidate scored, original parsing)", **PAPER)

# Table 2, update direction. Its Relevance / prompt+performance cells equal Table 3's
# Editing / No-control cells, so the table was run with editing and no edit-distance limit.
_T2 = dict(PAPER, util_gradient_name="edit_without", learning_rate_name="wo_lr", decay_strategy="-")
_T2_GRADIENT = dict(_T2, gradient_name="feedback", util_gradient_name="edit")
_NONE = dict(momentum_para_name="-", momentum_selection_name="-", momentum_update_name="-")
_SUMMARY = dict(momentum_selection_name="-", momentum_update_name="real-time")
_preset("table2-prompt", "Table 2, prompt+performance, no momentum (the current prompt and its score)", **_T2, **_NONE)
_preset("table2-feedback", "Table 2, feedback gradient, no momentum", **_T2_GRADIENT, **_NONE)
_preset("table2-prompt-summarization", "Table 2, prompt+performance momentum, summarization (real-time)",
        **_T2, momentum_para_name="para", **_SUMMARY)
_preset("table2-feedback-summarization", "Table 2, feedback momentum, summarization (real-time)",
        **_T2_GRADIENT, momentum_para_name="feedback", **_SUMMARY)
for _sel in ("recency", "relevance", "importance"):
    _preset(f"table2-prompt-{_sel}", f"Table 2, prompt+performance momentum, {_sel} retrieval (k-list, k = 3)",
            **_T2, momentum_para_name="para", momentum_selection_name=_sel, momentum_update_name="k-list")
    _preset(f"table2-feedback-{_sel}", f"Table 2, feedback momentum, {_sel} retrieval (k-list, k = 3)",
            **_T2_GRADIENT, momentum_para_name="feedback", momentum_selection_name=_sel, momentum_update_name="k-list")

# Table 3, update method: editing or generation, times the edit-distance control. Warmup is
# the paper's first 5% of each task's steps (the original's flag counted steps, default 5).
_T3 = dict(PAPER, gradient_name="-", momentum_para_name="para", momentum_selection_name="relevance",
           momentum_update_name="k-list", momentum_selection_num=3)
for _method, _util in (("edit", "edit_without"), ("generate", "generate_without")):
    _word = "Editing" if _method == "edit" else "Generation"
    _preset(f"table3-{_method}-none", f"Table 3, {_word}, no edit-distance control",
            **_T3, util_gradient_name=_util, learning_rate_name="wo_lr", decay_strategy="-")
    for _decay, _words in (("fixed", "fixed limit of 50 words"), ("linear", "linear decay 50 -> 10 words"),
                           ("cosine", "cosine decay 50 -> 10 words")):
        _cell = dict(_T3, util_gradient_name=_util, learning_rate_name="w_lr", decay_strategy=_decay)
        _preset(f"table3-{_method}-{_decay}", f"Table 3, {_word}, {_words}, no warmup", **_cell)
        _preset(f"table3-{_method}-{_decay}-warmup", f"Table 3, {_word}, {_words}, warmup over the first 5% of steps",
                **_cell, use_warmup_strategy=True, warmup_fraction=0.05)

# One-change variants of the default recipe (generation, cosine 50 -> 10), for quick analysis.
_preset("no-momentum", "GPO's recipe without momentum", **PAPER, **_NONE)
_preset("momentum-recency", "GPO's recipe with recency retrieval", **PAPER, momentum_selection_name="recency")
_preset("momentum-importance", "GPO's recipe with importance retrieval", **PAPER, momentum_selection_name="importance")
_preset("momentum-real-time", "GPO's recipe with summarization momentum", **PAPER, **_SUMMARY)
_preset("feedback-gradient", "GPO's recipe plus a feedback gradient (keeps relevance momentum: not a gradient-only row)",
        **PAPER, gradient_name="feedback", util_gradient_name="generate")
_preset("feedback-momentum", "GPO's recipe with feedback gradient and recency momentum over gradients",
        **PAPER, gradient_name="feedback", util_gradient_name="generate", momentum_para_name="feedback",
        momentum_selection_name="recency")
_preset("edit", "GPO's recipe with editing instead of generation", **PAPER, util_gradient_name="edit_without")
_preset("edit-feedback", "GPO's recipe with editing and a feedback gradient", **PAPER, gradient_name="feedback",
        util_gradient_name="edit")
_preset("no-lr", "GPO's recipe without an edit-distance limit", **PAPER, learning_rate_name="wo_lr", decay_strategy="-")
_preset("lr-fixed", "GPO's recipe with a fixed 50-word limit", **PAPER, decay_strategy="fixed")
_preset("lr-linear", "GPO's recipe with linear decay", **PAPER, decay_strategy="linear")
_preset("lr-cosine-warmup", "GPO's recipe with cosine decay after 3 warmup steps", **PAPER, use_warmup_strategy=True,
        warmup_steps=3)
_preset("few-shot", "GPO's recipe scored with demonstrations (Table 6's instruction + demos rows)", **PAPER,
        evaluate_generated_ins_on_few_shot=True)
del _sel, _method, _util, _word, _decay, _words, _cell


def preset(name: str, **overrides) -> GPOConfig:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}{suggest(name, PRESETS)}; `gpo presets` lists them")
    return GPOConfig.from_dict({**PRESETS[name], **overrides}, where=f"preset {name}")
