"""Users' own tasks: templates with several fields, system prompts, and command-line metrics
(regex, JSON Schema, a Python function, an LLM judge), with their bad-input errors.

The judge and the system-prompt search run on scripted fakes (named as such); the
multi-field CSV runs end to end on the embedded model through the `gpo` command."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from fakes import ScriptedLLM, last_user
from gpo.config import GPOConfig
from gpo.methods.gpo.method import GPO
from gpo.scoring import Evaluator
from gpo.scoring.judge import Judge, parse_score
from gpo.scoring.metrics import build_metric
from gpo.scoring.render import PromptFormat, render
from gpo.tasks import Example
from gpo.tasks.loaders import load_user_task
from gpo.tasks.task import TaskError
from gpo.tasks.template import Template, read_template

DATA = Path(__file__).resolve().parents[1] / "data"
TICKETS = DATA / "tickets.csv"
TEMPLATE = (DATA / "ticket_template.txt").read_text()


def tickets(template=Template(TEMPLATE), metric="exact", **kw):
    return load_user_task("tickets", str(TICKETS), target_col="label", template=template, metric=metric, **kw)


# ---------------------------------------------------------------- templates

def test_a_template_fills_every_field_and_puts_the_instruction_in_its_slot():
    task = tickets()
    example = task.split("eval")[0]
    fields = dict(example.fields)
    assert set(fields) == {"subject", "body", "product"}  # the target column is not a field
    request = render("Name the category.", example, PromptFormat(), template=task.template)
    (user,) = request.message_dicts()
    assert user["content"] == (f"Product: {fields['product']}\nSubject: {fields['subject']}\n"
                               f"Message: {fields['body']}\n\nName the category.")
    assert example.input.startswith("Product: ") and "{instruction}" not in example.input


def test_a_system_template_becomes_the_system_message_and_braces_that_are_not_slots_stay():
    template = Template("Ticket: {subject} {{json}} {\"a\": 1}\n{instruction}", system="You sort {product} tickets.")
    task = tickets(template=template)
    example = task.split("eval")[0]
    messages = render("Be brief.", example, PromptFormat(), template=task.template).message_dicts()
    assert messages[0] == {"role": "system", "content": f"You sort {dict(example.fields)['product']} tickets."}
    assert '{json} {"a": 1}' in messages[1]["content"] and messages[1]["content"].endswith("Be brief.")
    base = render("Be brief.", example, PromptFormat(chat=False), template=task.template)
    assert base.prompt.startswith("You sort") and base.prompt.endswith("Be brief.")


def test_optimizing_the_system_prompt_puts_the_candidate_in_the_system_message():
    template = Template(TEMPLATE.replace("{instruction}", "").strip(), system="You label tickets.", optimize="system")
    task = tickets(template=template)
    messages = render("CANDIDATE", task.split("eval")[0], PromptFormat(), template=task.template).message_dicts()
    assert messages[0] == {"role": "system", "content": "CANDIDATE"} and "CANDIDATE" not in messages[1]["content"]
    assert template.phrase == "as the system prompt"
    assert "[system] <Prompt>" in template.show(task.split("eval")[0], "<Prompt>")


def test_system_prompt_search_on_the_fake_optimizer_keeps_the_edit_budget():
    """Scripted scorer: right ('billing') only when its system message says 'carefully'.
    Scripted optimizer: proposes the starting system prompt plus 'carefully'."""
    template = Template(TEMPLATE.replace("{instruction}", "").strip(), system="You label support tickets.",
                        optimize="system")
    task = tickets(template=template, metric=build_metric("contains"))
    task.initial_instruction = "You label support tickets."  # what TaskSpec sets from --system-template
    seen_systems = []

    def scorer_script(request, i):
        system = dict(request.messages).get("system", "")
        seen_systems.append(system)
        return dict(task_targets).get(last_user(request), "none") if "carefully" in system else "none"

    task_targets = [(e.input, e.target) for s in ("train", "eval", "test") for e in task.splits[s]]
    optimizer = ScriptedLLM(script=lambda r, i: "<START>You label support tickets carefully.<END>")
    cfg = GPOConfig(selection="full", num_search_epochs=1, opt_batch_size=8, num_generated_instructions_in_each_step=1,
                    learning_rate_name="w_lr", decay_strategy="fixed", initial_step_size=2, final_step_size=1,
                    momentum_para_name="-", momentum_selection_name="-", momentum_update_name="-")
    gpo = GPO(cfg, optimizer, Evaluator(ScriptedLLM(script=scorer_script), PromptFormat(), second_round=False))
    result = asyncio.run(gpo.optimize(task))
    assert result.initial_prompt == "You label support tickets."
    assert result.final_prompt == "You label support tickets carefully." and result.final_eval == 1.0
    assert "You label support tickets carefully." in seen_systems
    update = [r for r in optimizer.requests if "Put the new prompt between" in last_user(r)][0]
    assert "as the system prompt" in last_user(update) and "Change at most 2 words" in last_user(update)
    assert "[system] <Prompt>" in last_user(update)  # the exemplars show where the prompt goes


# ---------------------------------------------------------------- metrics

def test_regex_and_json_schema_metrics_on_fixed_outputs():
    ex = Example("q", "billing")
    regex = build_metric(r"regex:^(billing|technical|account|shipping)\.?$")
    assert [regex(o, ex) for o in ("billing", "shipping.", "It is billing", "")] == [1.0, 1.0, 0.0, 0.0]
    schema = build_metric(f"json:{DATA / 'ticket_schema.json'}")
    outputs = ['{"category": "billing"}', '```json\n{"category": "account"}\n```', '{"category": "sales"}',
               '{"label": "billing"}', "billing", "[1, 2"]
    assert [schema(o, ex) for o in outputs] == [1.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    assert build_metric("json")("[1, 2]", ex) == 1.0
    contains = build_metric("contains")
    assert contains("I think: Billing.", ex) == 1.0 and contains("shipping", ex) == 0.0


def test_a_python_metric_from_a_file_scores_through_the_evaluator():
    metric = build_metric(f"python:{DATA / 'ticket_metric.py'}:first_word_category")
    task = tickets(metric=metric)
    by_input = {e.input: e.target for s in ("eval",) for e in task.splits[s]}
    replies = iter(["{t} it is", "maybe {t}", "sales"] * 20)
    scorer = ScriptedLLM(script=lambda r, i: next(replies).format(t=by_input[last_user(r)]))
    ev = asyncio.run(Evaluator(scorer, PromptFormat()).evaluate(task, "", "eval"))
    assert [r.score for r in ev.records][:3] == [1.0, 0.5, 0.0]
    assert scorer.usage.calls == ev.n  # no second round: the reply is scored as written
    # a metric may give feedback with its score: kept in the record (the feedback gradient shows it)
    task.metric = build_metric(f"python:{DATA / 'ticket_metric.py'}:category_with_feedback")
    replies = iter(["{t} it is", "maybe {t}", "sales"] * 20)
    ev = asyncio.run(Evaluator(scorer, PromptFormat()).evaluate(task, "", "eval"))
    assert [r.score for r in ev.records][:3] == [1.0, 0.5, 0.0]
    assert ev.records[0].feedback is None and "the category is" in ev.records[2].feedback


@pytest.mark.parametrize("spec,message", [
    ("python:no_such_module_xyz:f", "cannot import no_such_module_xyz (ModuleNotFoundError"),
    (f"python:{DATA / 'ticket_metric.py'}:nope", "has no function 'nope'"),
    ("python:/nonexistent/m.py:f", "file not found: /nonexistent/m.py"),
    ("regex:(unclosed", "not a valid regular expression"),
    ("json:/nonexistent/schema.json", "cannot read the schema"),
    ("jsn", "unknown metric 'jsn' (did you mean json"),
])
def test_bad_metrics_are_one_line(spec, message):
    with pytest.raises(TaskError, match=None) as err:
        build_metric(spec)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_python_metric_that_raises_is_named_with_the_example():
    task = tickets(metric=build_metric(f"python:{DATA / 'ticket_metric.py'}:broken"))
    with pytest.raises(TaskError) as err:
        asyncio.run(Evaluator(ScriptedLLM(script=lambda r, i: "x"), PromptFormat()).evaluate(task, "", "eval"))
    assert "metric python:" in str(err.value) and ":broken raised ZeroDivisionError" in str(err.value)
    assert "eval example 0" in str(err.value)


# ---------------------------------------------------------------- the judge

def test_judge_scores_parse_in_their_common_shapes():
    assert parse_score("Good.\nScore: 7") == 0.7
    assert parse_score("**Score:** 9/10") == 0.9
    assert parse_score("score = 0.25") == 0.25
    assert parse_score("I'd say 3/4.") == 0.75
    assert parse_score("Score: 14") == 1.0
    assert parse_score("It meets the rubric.") is None


def test_the_judge_grades_asks_again_once_and_counts_what_it_never_scored():
    """Scripted judge: 'Score: 8' for replies naming the target; for one example it rambles
    and, asked again, still gives no score."""
    task = tickets(metric="judge")
    evals = task.split("eval")
    stubborn = evals[1].input

    def judge_script(request, i):
        text = request.messages[0][1]
        if stubborn in text:
            return "Let me think about this ticket..."
        return "Score: 8" if "Output to grade:\nbilling" in text else "Score: 2"

    judge_llm = ScriptedLLM(script=judge_script)
    evaluator = Evaluator(ScriptedLLM(script=lambda r, i: "billing"), PromptFormat(),
                          judge=Judge(judge_llm, "Name the right category."))
    ev = asyncio.run(evaluator.evaluate(task, "Category?", "eval"))
    assert ev.records[1].score == 0.0 and "[asked again]" in ev.records[1].judge_reply
    assert all(r.score == 0.8 for i, r in enumerate(ev.records) if i != 1)
    assert evaluator.judge.unparsed[task.id] == 1
    assert judge_llm.usage.calls == ev.n + 1  # one grade each, plus one asked again
    assert evaluator.requests[task.id] == ev.n + ev.n + 1  # scorer, judge, the re-ask
    assert evaluator.requests_per_example(task) == 2  # planning counts one grade per example
    rubric_request = judge_llm.requests[0].messages[0][1]
    assert rubric_request.startswith("Name the right category.") and "Reference answer:" in rubric_request


def test_a_search_budget_counts_judge_requests():
    """--scorer-calls-per-task 40 on 10 eval examples: with a judge each scored example costs
    two requests (the reply and its grade), so the budget affords less than without."""
    from gpo.config import Budget

    def search(metric, judge=None):
        task = tickets(metric=metric)
        optimizer = ScriptedLLM(script=lambda r, i: f"<START>Name the category, variant {i}.<END>")
        cfg = GPOConfig(selection="full", num_search_epochs=3, opt_batch_size=4,
                        num_generated_instructions_in_each_step=2, budget=Budget(scorer_calls_per_task=40))
        evaluator = Evaluator(ScriptedLLM(script=lambda r, i: "billing"), PromptFormat(), judge=judge)
        return asyncio.run(GPO(cfg, optimizer, evaluator).optimize(task)), task, evaluator

    judge = Judge(ScriptedLLM(script=lambda r, i: "Score: 5"), "Be right.")
    judged, task, evaluator = search("judge", judge)
    assert len(task.split("eval")) == 10
    # initial eval 10 x 2, the train probe 4 x 2; 2 candidates x 10 x 2 = 40 more do not fit
    assert judged.scorer_requests == 28 and judged.search_ended
    assert judge.requests[task.id] * 2 == evaluator.requests[task.id]  # every scoring graded once (test included)
    plain, _, _ = search(build_metric("contains"))
    assert plain.scorer_requests == 10 + 4 + 2 * 10  # without a judge the candidates fit


def test_data_without_a_target_column_works_with_metrics_that_need_none(tmp_path):
    rows = [{"subject": f"s{i}", "body": f"b{i}", "product": "p"} for i in range(12)]
    data = tmp_path / "no_target.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows))
    task = load_user_task("t", str(data), template=Template(TEMPLATE), metric=build_metric("json"),
                          target_optional=True)
    assert all(e.target == "" for e in task.split("eval"))
    with pytest.raises(TaskError, match="no column 'target'"):
        load_user_task("t", str(data), template=Template(TEMPLATE), metric="exact")


# ---------------------------------------------------------------- bad input

def test_a_template_field_with_no_column_names_the_field_the_columns_and_the_file():
    with pytest.raises(TaskError) as err:
        tickets(template=Template("{subject}\n{customer}\n{instruction}"))
    msg = str(err.value)
    assert "{customer}" in msg and "subject, body, product, label" in msg and str(TICKETS) in msg


def test_a_template_without_the_instruction_slot_is_refused_when_the_instruction_is_optimized():
    with pytest.raises(TaskError, match=r"no \{instruction\} slot"):
        Template("Ticket: {subject}")
    with pytest.raises(TaskError, match="remove {instruction}"):
        Template("Ticket: {subject} {instruction}", optimize="system")
    with pytest.raises(TaskError, match="template file not found: prompts/missing.txt"):
        read_template("prompts/missing.txt")
    assert read_template("Answer in English. Be brief {instruction}") == "Answer in English. Be brief {instruction}"


GPO_CLI = [sys.executable, "-m", "gpo.cli"]
USER = ["optimize", "--dataset", "user", "--data-file", str(TICKETS), "--target-col", "label"]


@pytest.mark.parametrize("args,message", [
    (["--template", "{subject} {customer} {instruction}"], "template field {customer} has no matching column in"),
    (["--template", "Ticket: {subject}"], "has no {instruction} slot"),
    (["--metric", "python:nowhere_xyz:f"], "cannot import nowhere_xyz"),
    (["--metric", "judge"], "--metric judge needs --judge-rubric"),
    (["--template", "missing_template.txt"], "--template file not found: missing_template.txt"),
])
def test_cli_bad_input_is_one_line(args, message):
    proc = subprocess.run(GPO_CLI + USER + args + ["--dry-run"], capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_cli_template_metric_flags_are_for_user_data_only():
    proc = subprocess.run(GPO_CLI + ["optimize", "--task", "navigate", "--metric", "contains", "--dry-run"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "--metric: for your own data (--dataset user)" in proc.stderr


@pytest.mark.model  # the embedded model in a gpo process
def test_a_multi_field_csv_through_a_template_on_the_embedded_model(tmp_path):
    run = tmp_path / "run"
    proc = subprocess.run(GPO_CLI + USER + [
        "--template", str(DATA / "ticket_template.txt"), "--metric", "contains",
        "--initial-instruction", "Which category is this ticket: billing, technical, account or shipping?",
        "--max-examples", "train=4", "--max-examples", "eval=4", "--max-examples", "test=4",
        "--opt-batch-size", "4", "--num-search-epochs", "1", "--num-generated-instructions-in-each-step", "2",
        "--scorer-max-tokens", "16", "--optimizer-max-tokens", "64", "--progress", "quiet", "--run-dir", str(run),
    ], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    assert "test" in proc.stdout and "95% CI" in proc.stdout
    final_test = next(p for p in run.rglob("final.jsonl") if p.parent.name == "test")
    records = [json.loads(line) for line in final_test.read_text().splitlines()[1:]]
    assert len(records) == 4
    assert all(r["prompt"].startswith("[user]\nProduct: ") and "\nSubject: " in r["prompt"] for r in records)
    assert all(r["raw_answer_second_round"] is None for r in records)  # scored as written
