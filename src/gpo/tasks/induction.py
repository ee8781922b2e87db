"""Instruction induction (Honovich et al., 2022; APE's benchmark): tasks whose transformation
only an instruction or demonstrations can convey (the plural of a word, a number in words, the
larger of two animals), each with the human-written instructions as the reference.

The layout (``../shared/data/instruction_induction``, or the sample shipped in
``gpo/tasks/data/instruction_induction``): one folder per task with ``train.jsonl``,
``eval.jsonl`` and ``test.jsonl`` (``{"input", "target"}``, plus ``"references"``: every
acceptable answer, where there are several) and ``gold_instructions.json``.

Scoring is the source's execution accuracy: the answer a reply gives (``extract.parse_short``:
after an answer cue, else the last quoted text, else the reply's first line) matches the target
or any of its references exactly, up to case and punctuation; taxonomy_animal's items match in
any order. The first human instruction is kept on the task as ``human_instruction``: gpo scores
it beside every result, and no search reads it.
"""

from __future__ import annotations

from pathlib import Path

from gpo.files import read_json_file
from gpo.tasks.task import AnswerKind, TaskError

DATASET = "instruction_induction"
TASKS = ("antonyms", "diff", "first_word_letter", "larger_animal", "letters_list", "num_to_verbal",
         "second_word_letter", "singular_to_plural", "sum", "taxonomy_animal", "translation_en-es", "word_in_context")
UNORDERED = {"taxonomy_animal"}  # the answer is a list whose items count in any order
SHIPPED = Path(__file__).resolve().parent / "data" / DATASET  # the sample the package carries (the quickstart's)
SECOND_ROUND = "Give only the final answer, nothing else."


def task_dir(data_dir: str | Path | None, task: str) -> Path:
    """A task's folder: under ``data_dir`` (the dataset's folder, or one holding it), or in the
    sample the package ships when no folder is given."""
    roots = [SHIPPED] if data_dir is None else [Path(data_dir) / DATASET, Path(data_dir)]
    for root in roots:
        if (root / task).is_dir():
            return root / task
    if data_dir is None:
        shipped = ", ".join(sorted(p.name for p in SHIPPED.iterdir() if p.is_dir()))
        raise TaskError(f"{DATASET}/{task} is not in the sample gpo ships ({shipped}); pass --data-dir "
                        f"pointing at the whole dataset (../shared/data/{DATASET})")
    raise TaskError(f"task folder not found: {Path(data_dir) / task} (nor under {Path(data_dir) / DATASET})")


def human_instructions(folder: Path) -> list[str]:
    path = folder / "gold_instructions.json"
    data = read_json_file(path, str(path), "the human instructions")
    if not isinstance(data, list) or not data or not all(isinstance(s, str) for s in data):
        raise TaskError(f"{path}: expected a JSON list of instructions (strings)")
    return data


def profile(task: str) -> dict:
    """The answer kind, matcher and second round of an instruction-induction task."""
    return dict(kind=AnswerKind.EXACT, metric="execution_unordered" if task in UNORDERED else "execution",
                second_round=SECOND_ROUND)
