"""The paper's benchmarks: 27 BBH tasks, 57 MMLU subjects, GSM8K, WebNLG, WSC.

For each task: its answer kind, its matcher and its second-round ("prompting
again") instruction, written in our own words.
"""

from __future__ import annotations


from gpo.errors import suggest
from gpo.tasks import induction
from gpo.tasks.task import AnswerKind, TaskError

BBH_TASKS = (
    "boolean_expressions causal_judgement date_understanding disambiguation_qa dyck_languages "
    "formal_fallacies geometric_shapes hyperbaton logical_deduction_five_objects "
    "logical_deduction_seven_objects logical_deduction_three_objects movie_recommendation "
    "multistep_arithmetic_two navigate object_counting penguins_in_a_table "
    "reasoning_about_colored_objects ruin_names salient_translation_error_detection snarks "
    "sports_understanding temporal_sequences tracking_shuffled_objects_five_objects "
    "tracking_shuffled_objects_seven_objects tracking_shuffled_objects_three_objects web_of_lies "
    "word_sorting"
).split()

BBH_BOOLEAN = {
    "boolean_expressions": ("True", "False"),
    "causal_judgement": ("Yes", "No"),
    "navigate": ("Yes", "No"),
    "sports_understanding": ("yes", "no"),
    "web_of_lies": ("Yes", "No"),
    "formal_fallacies": ("valid", "invalid"),
}
BBH_NUMERIC = {"multistep_arithmetic_two", "object_counting"}
BBH_FREE = {"dyck_languages", "word_sorting"}

_MMLU_GROUPS = {
    "college": "biology chemistry computer_science mathematics medicine physics",
    "high_school": (
        "biology chemistry computer_science european_history geography government_and_politics "
        "macroeconomics mathematics microeconomics physics psychology statistics us_history world_history"
    ),
    "professional": "accounting law medicine psychology",
}
MMLU_SUBJECTS = tuple(
    sorted(
        "abstract_algebra anatomy astronomy business_ethics clinical_knowledge computer_security "
        "conceptual_physics econometrics electrical_engineering elementary_mathematics formal_logic "
        "global_facts human_aging human_sexuality international_law jurisprudence logical_fallacies "
        "machine_learning management marketing medical_genetics miscellaneous moral_disputes "
        "moral_scenarios nutrition philosophy prehistory public_relations security_studies sociology "
        "us_foreign_policy virology world_religions".split()
        + [f"{g}_{s}" for g, subs in _MMLU_GROUPS.items() for s in subs.split()]
    )
)

SINGLE_TASK_DATASETS = ("gsm8k", "webnlg", "wsc")
DATASETS = ("bbh", "mmlu") + SINGLE_TASK_DATASETS + (induction.DATASET,)
MMLU_TEMPLATE = "The following are multiple choice questions about"

_NUMBER_ONLY = "Give only the final answer as a single number, nothing else."
_MC = "Give only the letter of the final answer, one option from (A) to {last}, nothing else."


def _boolean_round(yes: str, no: str) -> str:
    return f'Give only the final answer, the single word "{yes}" or "{no}", nothing else.'


def second_round_for(kind: AnswerKind, boolean_words: tuple[str, str] | None = None) -> str | None:
    """The "prompting again" instruction that asks a chat scorer for the bare answer of this
    kind (docs/BEHAVIOUR.md, "Scoring a prompt"); None for generation and free text. Every loader uses this one."""
    if kind is AnswerKind.BOOLEAN:
        return _boolean_round(*boolean_words) if boolean_words else "Give only the final answer, one word, nothing else."
    return {AnswerKind.NUMERIC: _NUMBER_ONLY, AnswerKind.MULTIPLE_CHOICE: _MC}.get(kind)


def task_names(dataset: str) -> tuple[str, ...]:
    dataset = dataset.lower()
    if dataset == "bbh":
        return tuple(BBH_TASKS)
    if dataset == "mmlu":
        return MMLU_SUBJECTS
    if dataset in SINGLE_TASK_DATASETS:
        return (dataset,)
    if dataset == induction.DATASET:
        return induction.TASKS
    raise TaskError(f"unknown dataset {dataset!r}{suggest(dataset, DATASETS)}; datasets are {', '.join(DATASETS)}")


def resolve_tasks(dataset: str, tasks: list[str] | tuple[str, ...] | str = "all") -> list[str]:
    """Expand ``all`` and check every name, suggesting the closest valid ones."""
    names = task_names(dataset)
    if isinstance(tasks, str):
        tasks = [t.strip() for t in tasks.split(",") if t.strip()]
    if not tasks or list(tasks) == ["all"] or dataset.lower() in SINGLE_TASK_DATASETS:
        return list(names)
    for t in tasks:
        if t not in names:
            raise TaskError(f"unknown {dataset} task {t!r}{suggest(t, names)}")
    return list(tasks)


def task_profile(dataset: str, task: str) -> dict:
    """Answer kind, matcher and second-round instruction of a catalogued task."""
    dataset = dataset.lower()
    if dataset == "bbh":
        if task in BBH_BOOLEAN:
            return dict(kind=AnswerKind.BOOLEAN, metric="exact", second_round=second_round_for(AnswerKind.BOOLEAN, BBH_BOOLEAN[task]))
        if task in BBH_NUMERIC:
            return dict(kind=AnswerKind.NUMERIC, metric="exact", second_round=second_round_for(AnswerKind.NUMERIC))
        if task == "dyck_languages":
            return dict(
                kind=AnswerKind.EXACT, metric="dyck",
                second_round="Give only the closing brackets that complete the sequence, separated by spaces, nothing else.",
            )
        if task == "word_sorting":
            return dict(
                kind=AnswerKind.EXACT, metric="word_sorting",
                second_round="Give only the words in alphabetical order, separated by single spaces, nothing else.",
            )
        return dict(kind=AnswerKind.MULTIPLE_CHOICE, metric="exact", second_round=second_round_for(AnswerKind.MULTIPLE_CHOICE))
    if dataset == "mmlu":
        return dict(
            kind=AnswerKind.MULTIPLE_CHOICE, metric="exact", second_round=second_round_for(AnswerKind.MULTIPLE_CHOICE),
            initial_instruction=f"{MMLU_TEMPLATE} {task.replace('_', ' ')}.",
        )
    if dataset == "gsm8k":
        return dict(kind=AnswerKind.NUMERIC, metric="exact", second_round=second_round_for(AnswerKind.NUMERIC))
    if dataset == "wsc":
        return dict(kind=AnswerKind.MULTIPLE_CHOICE, metric="exact", second_round=second_round_for(AnswerKind.MULTIPLE_CHOICE))
    if dataset == "webnlg":
        return dict(kind=AnswerKind.GENERATION, metric="rouge_l", second_round=None)
    if dataset == induction.DATASET:
        return induction.profile(task)
    raise TaskError(f"unknown dataset {dataset!r}{suggest(dataset, DATASETS)}")
