"""Where examples come from: the GPO folder layout, users' JSONL/CSV, Hugging Face.

Every error names the file and line, or the missing column and the columns found.
"""

from __future__ import annotations

import csv
import io
import json
import random
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

from gpo.files import read_user_text
from gpo.tasks import induction
from gpo.tasks.catalog import SINGLE_TASK_DATASETS, resolve_tasks, second_round_for, task_profile
from gpo.tasks.task import SPLITS, AnswerKind, Example, Task, TaskError, label_set
from gpo.tasks.template import Template
from gpo.names import DATA_SPLITS

GPO_FILES = {
    "train": "train.jsonl",
    "eval": "eval.jsonl",
    "test": "test.jsonl",
    "format": "format.jsonl",
    "few_shot": "few_shot_examples.jsonl",
}
BOOL_WORDS = {"true", "false", "yes", "no", "valid", "invalid"}
_MC_TARGET = re.compile(r"^\(?[A-Za-z]\)?$")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def read_jsonl(path: Path) -> list[dict]:
    rows = []
    for lineno, line in enumerate(read_user_text(path).split("\n"), 1):  # JSON may hold U+2028
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise TaskError(f"{path}, line {lineno}: not valid JSON ({err.msg} at column {err.colno})") from None
        if not isinstance(row, dict):
            raise TaskError(f"{path}, line {lineno}: expected a JSON object, got {type(row).__name__}")
        rows.append(row | {"__line__": lineno})
    return rows


DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab"}


def delimiter_of(path: Path, header: str) -> str:
    """A CSV file's delimiter: tab for .tsv; otherwise the one of comma, semicolon and tab the
    header line holds most of (a comma where none is there: a single column)."""
    if path.suffix.lower() == ".tsv":
        return "\t"
    counts = {d: header.count(d) for d in DELIMITERS}
    return max(counts, key=lambda d: (counts[d], d == ","))


def read_csv(path: Path) -> list[dict]:
    """Rows of a CSV (or TSV) file, each with the line it starts on; the delimiter is read from
    the header. A quote left open, or a row whose field count differs from the header's, is
    named by the line its row starts on."""
    text = read_user_text(path)
    delimiter = delimiter_of(path, text.lstrip("\ufeff").split("\n", 1)[0])
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows, start, header = [], 1, None
    try:
        for values in reader:
            if header is None:
                header = values
            elif values:
                if len(values) != len(header):
                    raise TaskError(f"{path}, line {start}: {len(values)} fields where the header has {len(header)} "
                                    f"({DELIMITERS[delimiter]}-separated); a field holding a {DELIMITERS[delimiter]} "
                                    f"needs double quotes around it")
                rows.append(dict(zip(header, values)) | {"__line__": start})
            start = reader.line_num + 1
    except csv.Error as err:
        reason = ("a quoted field starts on this line and its closing quote never comes"
                  if "end of data" in str(err) else f"not valid CSV ({err})")
        raise TaskError(f"{path}, line {start}: {reason}") from None
    if header is not None and not rows:
        raise TaskError(f"{path}: a header ({', '.join(header)}) and no rows")
    return rows


def read_rows(path: Path) -> list[dict]:
    """A user's data file's rows (.csv and .tsv as CSV, anything else as JSON lines); a file
    with none is refused."""
    path = Path(path)
    rows = read_csv(path) if path.suffix.lower() in (".csv", ".tsv") else read_jsonl(path)
    if not rows:
        raise TaskError(f"{path}: the file is empty (no rows)")
    return rows


def _field(row: Mapping[str, Any], column: str, path: Path | str) -> Any:
    if column not in row:
        found = ", ".join(k for k in row if k != "__line__")
        raise TaskError(f"{path}, line {row.get('__line__', '?')}: no column {column!r} (columns found: {found})")
    return row[column]


def to_example(row: Mapping[str, Any], input_col: str, target_col: str, path: Path | str) -> Example:
    raw_input = _field(row, input_col, path)
    raw_target = _field(row, target_col, path)
    references: tuple[str, ...] = ()
    if isinstance(raw_target, list):
        references = tuple(str(r) for r in raw_target)
        target = references[0] if references else ""
    else:
        target = str(raw_target)
    return Example(input=str(raw_input), target=target, references=references, solution=row.get("solution"))


# ---------------------------------------------------------------- GPO layout

def gpo_task_dir(data_dir: Path, dataset: str, task: str) -> Path:
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise TaskError(f"data directory not found: {data_dir} (pass --data-dir pointing at the GPO data folder)")
    folder = data_dir / dataset if dataset in SINGLE_TASK_DATASETS else data_dir / dataset / task
    if not folder.is_dir():
        raise TaskError(f"task folder not found: {folder}")
    return folder


def split_file(path: Path, target_col) -> list[Example]:
    """A split's JSONL file of a catalogued dataset; ``target_col(row)`` names the row's answer column."""
    if not path.is_file():
        raise TaskError(f"missing split file {path}")
    return [to_example(r, "input", target_col(r), path) for r in read_jsonl(path)]


def load_gpo_task(data_dir: str | Path, dataset: str, task: str | None = None) -> Task:
    """One task from the GPO layout (``<data_dir>/bbh/<task>/train.jsonl`` ...), or from
    instruction induction's (``gpo.tasks.induction``; no ``data_dir``: the shipped sample)."""
    dataset = dataset.lower()
    task = task or dataset
    resolve_tasks(dataset, [task])  # validates the name with suggestions
    if dataset == induction.DATASET:
        return load_induction_task(data_dir, task)
    folder = gpo_task_dir(Path(data_dir), dataset, task)
    target_col = "target" if dataset == "bbh" else "output"
    splits = {split: split_file(folder / filename, lambda row: target_col) for split, filename in GPO_FILES.items()}
    profile = task_profile(dataset, task)
    return Task(name=task, dataset=dataset, splits=splits, **profile)


def load_induction_task(data_dir: str | Path | None, task: str) -> Task:
    """One instruction-induction task (``gpo.tasks.induction``): train, eval and test; train's
    first examples also serve as the meta-prompt's format examples and the few-shot pool."""
    folder = induction.task_dir(data_dir, task)
    target_of = lambda row: "references" if "references" in row else "target"  # noqa: E731 - every accepted answer
    splits = {split: split_file(folder / f"{split}.jsonl", target_of) for split in DATA_SPLITS}
    splits["format"], splits["few_shot"] = splits["train"][:3], splits["train"][:5]
    return Task(name=task, dataset=induction.DATASET, splits=splits, **induction.profile(task),
                human_instruction=induction.human_instructions(folder)[0])


def load_gpo_dataset(data_dir: str | Path, dataset: str, tasks: Iterable[str] | str = "all") -> list[Task]:
    return [load_gpo_task(data_dir, dataset, t) for t in resolve_tasks(dataset, list(tasks) if not isinstance(tasks, str) else tasks)]


# ---------------------------------------------------------------- users' files

def infer_kind(examples: list[Example]) -> AnswerKind:
    """Guess the answer kind from the targets (declare it to override): generation, boolean,
    multiple choice, numeric, then ``label`` where the targets are a small closed set
    (``gpo.tasks.task.label_set``), else free text compared exactly."""
    if any(e.references and len(e.references) > 1 for e in examples):
        return AnswerKind.GENERATION
    targets = [e.target.strip() for e in examples]
    if targets and all(t.lower() in BOOL_WORDS for t in targets):
        return AnswerKind.BOOLEAN
    if targets and all(_MC_TARGET.match(t) for t in targets) and any(e.options() for e in examples):
        return AnswerKind.MULTIPLE_CHOICE
    if targets and all(_NUMBER.match(t.replace(",", "")) for t in targets):
        return AnswerKind.NUMERIC
    return AnswerKind.LABEL if label_set(targets) else AnswerKind.EXACT


def labels_of(kind: AnswerKind, examples: list[Example]) -> tuple[str, ...]:
    """The labels of a ``label`` task: its targets' closed set, or, where the kind was declared
    for a larger set, every distinct target; empty for other kinds."""
    if kind is not AnswerKind.LABEL:
        return ()
    targets = [e.target for e in examples]
    return label_set(targets) or tuple(sorted({t.strip() for t in targets if t.strip()}))


def seeded_split(examples: list[Example], fractions: Mapping[str, float], seed: int) -> dict[str, list[Example]]:
    """Shuffle once with ``seed`` and cut into consecutive parts by fraction."""
    total = sum(fractions.values())
    if total <= 0:
        raise TaskError("split fractions must add up to more than 0")
    order = list(examples)
    random.Random(seed).shuffle(order)
    out, start = {}, 0
    names = list(fractions)
    for i, name in enumerate(names):
        end = len(order) if i == len(names) - 1 else start + round(len(order) * fractions[name] / total)
        out[name] = order[start:end]
        start = end
    return out


def _split_one_file(files: str | Path, examples: list[Example], fractions: Mapping[str, float] | None,
                    seed: int) -> dict[str, list[Example]]:
    """One file's rows split with the seed (train 0.3, eval 0.3, test 0.4 unless ``fractions``);
    too few rows for a split to get any is refused, saying what the split would give."""
    if not examples:
        raise TaskError(f"{files}: no examples")
    fractions = fractions or {"train": 0.3, "eval": 0.3, "test": 0.4}
    splits = seeded_split(examples, fractions, seed)
    empty = [s for s in DATA_SPLITS if s in splits and not splits[s]]
    if empty:
        cut = ", ".join(f"{s} {len(splits[s])}" for s in splits)
        shares = "/".join(f"{s} {fractions[s]:g}" for s in fractions)
        raise TaskError(f"{files}: {len(examples)} rows are too few to split by {shares} (that gives {cut}, "
                        f"so {' and '.join(empty)} would be empty); give more rows, or one file per split "
                        f"(--data-file train=FILE --data-file eval=FILE --data-file test=FILE)")
    return splits


def load_user_task(
    name: str,
    files: Mapping[str, str | Path] | str | Path,
    *,
    input_col: str = "input",
    target_col: str = "target",
    kind: AnswerKind | str | None = None,
    fractions: Mapping[str, float] | None = None,
    seed: int = 0,
    metric: object | None = None,
    second_round: str | None = None,
    template: Template | None = None,
    target_optional: bool = False,
) -> Task:
    """A task from the user's JSONL/CSV files.

    ``files`` maps split names to files, or is one file that is split with ``seed``
    (default fractions: train 0.3, eval 0.3, test 0.4; format and few-shot
    exemplars are drawn from train when not given). With a ``template`` every column is
    a field the template may name (``input_col`` is then unused); ``target_optional``
    accepts rows without ``target_col`` (metrics that need no target: judge, json, regex).
    """
    def examples_of(path: Path) -> list[Example]:
        rows = read_rows(path)
        if template is not None:
            template.check_columns(rows[0], str(path))
        given = [str(r[target_col] or "").strip() for r in rows if target_col in r]
        if not target_optional and given and not any(given):
            raise TaskError(f"{path}: the {target_col!r} column is empty on every row; it holds the answers to score "
                            f"against (another column? --target-col NAME; metrics such as judge, json or regex need "
                            f"none)")
        return [_user_example(r, input_col, target_col, path, template, target_optional) for r in rows]

    if isinstance(files, (str, Path)):
        splits = _split_one_file(files, examples_of(Path(files)), fractions, seed)
    else:
        unknown = set(files) - set(SPLITS)
        if unknown:
            raise TaskError(f"unknown split names {sorted(unknown)}; splits are {', '.join(SPLITS)}")
        splits = {s: examples_of(Path(p)) for s, p in files.items()}
    splits.setdefault("format", splits.get("train", [])[:3])
    splits.setdefault("few_shot", splits.get("train", [])[:5])
    all_examples = [e for s in DATA_SPLITS for e in splits.get(s, [])]
    scored_whole = metric is not None and metric not in ("exact", "rouge_l")  # the reply as written, no extraction
    kind = AnswerKind(kind) if kind else (AnswerKind.EXACT if scored_whole else infer_kind(all_examples))
    default_metric = "rouge_l" if kind == AnswerKind.GENERATION else "exact"
    if second_round is None and not scored_whole:
        second_round = second_round_for(kind)
    return Task(name=name, dataset="user", kind=kind, splits=splits, metric=metric or default_metric,
                second_round=second_round, template=template, labels=labels_of(kind, all_examples))


def _user_example(row: Mapping[str, Any], input_col: str, target_col: str, path: Path,
                  template: Template | None, target_optional: bool) -> Example:
    if target_optional and target_col not in row:
        row = {**row, target_col: ""}
    if not target_optional and target_col in row and str(row[target_col] or "").strip() == "":
        raise TaskError(f"{path}, line {row.get('__line__', '?')}: the {target_col!r} column is empty; every row "
                        f"needs a target to score against (fill it in or drop the row; metrics such as judge, json "
                        f"or regex need none)")
    if template is None:
        return to_example(row, input_col, target_col, path)
    raw_target = _field(row, target_col, path)
    references = tuple(str(r) for r in raw_target) if isinstance(raw_target, list) else ()
    target = references[0] if references else ("" if raw_target is None else str(raw_target))
    return template.example({k: v for k, v in row.items() if k != target_col}, target, references)


def load_hf_task(
    name: str,
    source: str | Path,
    *,
    input_col: str,
    target_col: str,
    split_map: Mapping[str, str] | None = None,
    kind: AnswerKind | str | None = None,
    seed: int = 0,
) -> Task:
    """A task from Hugging Face ``datasets`` (optional extra ``gpo[hub]``).

    ``source`` is a dataset saved with ``save_to_disk`` or a hub name (needs network
    access the default setup never assumes). ``split_map`` maps gpo splits to the
    dataset's split names; with none, the dataset's splits are used by name, or its
    single split is cut with ``seed``.
    """
    try:
        import datasets
    except ImportError:
        raise TaskError("Hugging Face loading needs the optional extra: pip install 'gpo[hub]'") from None
    path = Path(source)
    ds = datasets.load_from_disk(str(path)) if path.exists() else datasets.load_dataset(str(source))
    if isinstance(ds, datasets.Dataset):
        ds = datasets.DatasetDict({"train": ds})

    def rows(split: str) -> list[Example]:
        return [to_example(r | {"__line__": i + 1}, input_col, target_col, f"{source}[{split}]")
                for i, r in enumerate(ds[split])]

    if split_map:
        missing = [s for s in split_map.values() if s not in ds]
        if missing:
            raise TaskError(f"{source}: no split {missing[0]!r} (splits found: {', '.join(ds)})")
        splits = {ours: rows(theirs) for ours, theirs in split_map.items()}
    elif {"train", "test"} <= set(ds) and ("eval" in ds or "validation" in ds):
        splits = {"train": rows("train"), "eval": rows("eval" if "eval" in ds else "validation"), "test": rows("test")}
    else:
        splits = seeded_split(rows(next(iter(ds))), {"train": 0.3, "eval": 0.3, "test": 0.4}, seed)
    splits.setdefault("format", splits["train"][:3])
    splits.setdefault("few_shot", splits["train"][:5])
    examples = [e for s in DATA_SPLITS for e in splits.get(s, [])]
    kind = AnswerKind(kind) if kind else infer_kind(examples)
    return Task(name=name, dataset="hf", kind=kind, splits=splits, labels=labels_of(kind, examples),
                metric="rouge_l" if kind == AnswerKind.GENERATION else "exact", second_round=second_round_for(kind))
