"""Scoring: how a prompt is judged on a task's examples."""

from gpo.scoring.evaluate import Evaluation, Evaluator, Record
from gpo.scoring.metrics import score_answer
from gpo.scoring.render import Position, PromptFormat, render, render_zero_shot

__all__ = ["Evaluation", "Evaluator", "Position", "PromptFormat", "Record", "render", "render_zero_shot", "score_answer"]
