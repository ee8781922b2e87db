"""GPO's update ("util gradient"): the meta-prompt asking for a new prompt, generate or
edit, with or without the gradient, with or without the word-budget ("learning rate")
clause; and what becomes of a candidate that changes more words than the budget.

The text is our own wording of the paper's content lists (docs/BEHAVIOUR.md, "The update").
For a small optimizer (``optimizer_size='small'``) a much shorter one: the task examples as
``input -> output``, the current instruction, any problems found with it, and one sentence
asked for. A 135M model shown the full meta-prompt writes about prompts instead of an
instruction (BENCHMARKS.md "small-optimizers"); the short one names no prompt, placeholder,
score or tag for it to copy. Its reply is read as that one sentence (``SMALL_READING``:
``gpo.prompts.tags.one_instruction``), and one set aside is asked for again in the same words.
"""

from __future__ import annotations

from dataclasses import dataclass

from gpo.engine.proposals import TAGGED, Reading
from gpo.prompts.blocks import PLACEHOLDER, Placement, format_exemplars
from gpo.prompts.tags import END, START, one_instruction
from gpo.tasks.task import Example


@dataclass(frozen=True)
class UpdateSpec:
    method: str  # generate | edit | generate_without | edit_without
    position: Placement
    momentum_kind: str = "-"  # "-" | "k-list" | "real-time": how the trajectory block reads


def build_update_prompt(
    spec: UpdateSpec,
    current: str,
    current_score: float,
    trajectory_block: str,
    exemplars: list[Example],
    gradient: str | None = None,
    step_size: int | None = None,
) -> str:
    """The meta-prompt asking the optimizer LLM for one improved prompt."""
    edit = spec.method.startswith("edit")
    with_gradient = spec.method in ("edit", "generate")
    where = spec.position.phrase
    parts = []
    if edit:
        parts.append(f"Your job is to revise the current prompt so that it works better in place of {PLACEHOLDER} in the task examples below.")
    else:
        parts.append(f"Your job is to write a prompt that works better in place of {PLACEHOLDER} in the task examples below.")
    parts.append(trajectory_block.rstrip())
    parts.append(f"The current prompt is:\n{current}")
    if with_gradient and gradient:
        parts.append(f"Problems found with the current prompt:\n{gradient}")
    parts.append(
        f"Each example below shows an input in which {PLACEHOLDER} stands for the prompt. A model reads the input "
        f"with the prompt filled in and writes an output. The output is wrong if it differs from the output given, "
        f"and right if it matches."
    )
    parts.append(format_exemplars(exemplars, spec.position))
    analyse = ""
    if spec.momentum_kind == "k-list":
        analyse = "First study the earlier prompts and their scores carefully. Then "
    elif spec.momentum_kind == "real-time":
        analyse = "First study the summarised prompt and its score carefully. Then "
    verb = "revise the current prompt into a new, better prompt" if edit else "write a new, better prompt"
    request = f"{analyse}{verb if analyse else verb[0].upper() + verb[1:]} to go {where} in the examples above."
    parts.append(request)
    lines = "\n\n".join(parts).split("\n")
    if step_size is not None:
        lines.append(f"Change at most {step_size} words of the current prompt.")
        lines.append("")
    lines.append(f"Put the new prompt between {START} and {END}.")
    return "\n".join(lines)


SMALL_REQUEST = ("Write a new instruction for turning each input into its output. Reply with the new instruction "
                 "only, in one sentence.")
# the reply read as the one sentence asked for; one set aside is asked again without tags or "prompt"
SMALL_READING = Reading(one_instruction, "That reply was set aside ({why}). Reply with one sentence that tells how "
                                         "to turn each input into its output.")


def build_small_update_prompt(current: str, exemplars: list[Example], gradient: str | None = None) -> str:
    """The meta-prompt for a small optimizer (``optimizer_size='small'``)."""
    shown = [f"{' '.join(ex.input.split())} -> {' / '.join(ex.references) if len(ex.references) > 1 else ex.demo_answer}"
             for ex in exemplars]
    parts = ["Examples:\n" + "\n".join(shown), f"Old instruction: {current}"]
    if gradient:
        parts.append(f"Problems found with it: {gradient}")
    return "\n\n".join(parts[:1]) + "\n\n" + "\n".join(parts[1:] + [SMALL_REQUEST])


@dataclass(frozen=True)
class UpdateRule:
    """GPO's update, built once from the config: edit or generate, with or without the
    gradient (``method``, the paper's util_gradient_name); whether the meta-prompt states
    the word budget (``learning_rate_name='w_lr'``); and what becomes of a candidate that
    changes more words than the budget (``enforcement``: off, reject, or resample up to
    ``resample_rounds`` more times); ``small``: the short meta-prompt for a small optimizer."""

    method: str = "generate_without"
    states_step_size: bool = True
    enforcement: str = "off"
    resample_rounds: int = 0
    small: bool = False

    @classmethod
    def from_config(cls, cfg) -> "UpdateRule":
        return cls(cfg.util_gradient_name, cfg.learning_rate_name == "w_lr", cfg.edit_budget_enforcement,
                   cfg.max_resample_rounds if cfg.edit_budget_enforcement == "resample" else 0,
                   cfg.optimizer_size == "small")

    def meta_prompt(self, position: Placement, momentum_kind: str, current: str, current_score: float,
                    trajectory_block: str, exemplars: list[Example], gradient: str | None,
                    step_size: int | None) -> str:
        if self.small:
            return build_small_update_prompt(current, exemplars, gradient if self.method in ("edit", "generate") else None)
        return build_update_prompt(UpdateSpec(self.method, position, momentum_kind), current, current_score,
                                   trajectory_block, exemplars, gradient,
                                   step_size if self.states_step_size else None)

    @property
    def reading(self) -> Reading:
        """How the optimizer's replies to this rule's meta-prompt are read."""
        return SMALL_READING if self.small else TAGGED

    def over_budget(self, edit_distance: int, step_size: int | None) -> str | None:
        """Why a candidate breaks the word budget (when the budget is enforced), else None."""
        if step_size is not None and self.enforcement != "off" and edit_distance > step_size:
            return f"changes {edit_distance} words, budget {step_size}"
        return None
