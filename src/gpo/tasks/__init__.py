"""Tasks: examples, answer kinds, splits, and where they come from."""

from gpo.tasks.catalog import BBH_TASKS, DATASETS, MMLU_SUBJECTS, resolve_tasks, task_names
from gpo.tasks.loaders import load_gpo_dataset, load_gpo_task, load_hf_task, load_user_task
from gpo.tasks.synthetic import GENERATORS as SYNTHETIC_TASKS
from gpo.tasks.synthetic import synthetic_task
from gpo.tasks.task import SPLITS, AnswerKind, Example, Task, TaskError

__all__ = [
    "BBH_TASKS", "DATASETS", "MMLU_SUBJECTS", "SPLITS", "SYNTHETIC_TASKS", "AnswerKind", "Example",
    "Task", "TaskError", "load_gpo_dataset", "load_gpo_task", "load_hf_task", "load_user_task",
    "resolve_tasks", "synthetic_task", "task_names",
]
