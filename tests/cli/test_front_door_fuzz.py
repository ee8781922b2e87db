"""The front door under random input (Hypothesis, seeded): random bytes and rows through the
data loaders, random flag values through the command line's parsing, the spec and the plan.
Each either works or is refused in one line naming what is at fault; none ends in a traceback."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpo.errors import USER_ERRORS
from gpo.tasks import load_user_task

FUZZ = settings(max_examples=60, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def loads_or_is_refused_in_one_line(name: str, data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        try:
            load_user_task("fuzz", path, input_col="a", target_col="b")
        except USER_ERRORS as err:
            message = str(err)
            assert "\n" not in message.strip() and name in message, message


@FUZZ
@given(data=st.binary(max_size=400), suffix=st.sampled_from([".csv", ".tsv", ".jsonl"]))
def test_random_bytes_load_or_are_refused_in_one_line_naming_the_file(data, suffix):
    loads_or_is_refused_in_one_line(f"data{suffix}", data)


CELL = st.text(alphabet='ab1 ,;\t"\'\r\né', max_size=8)


@FUZZ
@given(rows=st.lists(st.lists(CELL, min_size=1, max_size=4), max_size=8), sep=st.sampled_from([",", ";", "\t"]),
       header=st.sampled_from(["a,b", "a;b", "a\tb", "b", "a,b,c", ""]), encoding=st.sampled_from(["utf-8", "utf-16"]))
def test_random_csv_rows_load_or_are_refused_in_one_line_naming_the_file(rows, sep, header, encoding):
    text = "\n".join([header, *(sep.join(r) for r in rows)])
    loads_or_is_refused_in_one_line("rows.csv", text.encode(encoding))


@FUZZ
@given(rows=st.lists(st.one_of(st.dictionaries(st.sampled_from(["a", "b", "c"]),
                                               st.one_of(st.text(max_size=5), st.integers(), st.none(),
                                                         st.lists(st.text(max_size=3), max_size=2))),
                               st.text(max_size=10)), max_size=6))
def test_random_json_lines_load_or_are_refused_in_one_line_naming_the_file(rows):
    import json

    lines = [json.dumps(r) if isinstance(r, dict) else r for r in rows]
    loads_or_is_refused_in_one_line("rows.jsonl", "\n".join(lines).encode())


FLAGS = ["--max-examples", "--demos", "--method", "--preset", "--scorer-max-tokens", "--scorer-calls-per-task",
         "--max-cost", "--answer-kind", "--task", "--dataset", "--selection", "--method-option", "--seed",
         "--num-search-epochs", "--opt-batch-size", "--scorer-price", "--optimize", "--metric"]
VALUE = st.one_of(st.integers(-3, 2000).map(str), st.text(alphabet="abegmo=,.-_0123456789 ", max_size=12),
                  st.sampled_from(["eval=3", "test=0", "gpo", "demos", "bbh", "synthetic", "k=0", "navigate", "0.5",
                                   "1,2", "race", "label", "instruction+demos", "exact"]))


@FUZZ
@given(pairs=st.lists(st.tuples(st.sampled_from(FLAGS), VALUE), max_size=4))
def test_random_flag_values_are_parsed_planned_or_refused_in_one_line(pairs):
    from gpo.cli import build_spec, optimize
    from gpo.run.plan import plan
    from gpo.run.build import load_tasks

    args = [x for flag, value in pairs for x in (flag, value)]
    try:
        with optimize.make_context("optimize", args + ["--dry-run"]) as ctx:
            kw = dict(ctx.params)
    except click.exceptions.ClickException as err:  # click's own one-line usage errors
        assert "\n" not in err.format_message().strip()
        return
    try:
        spec = build_spec({k: v for k, v in kw.items() if k not in ("mlflow_uri", "mlflow_prompt_name")})
        plan(spec, load_tasks(spec.tasks))
    except USER_ERRORS as err:
        assert str(err).strip(), args
