"""Optimizers compared on the same engine: methods x tasks x seeds under an equal
budget of scorer requests per task, written as a Table-5-shaped markdown table
(mean ± std over seeds per dataset group, per-task detail, the calls and tokens
each method used) and, with --few-shot, a Table-6-shaped one (instruction only
vs instruction + few-shot demonstrations).

Every method gets the same scorer, splits, answer extraction, initial prompt and
search budget (``Budget.scorer_calls_per_task``: requests counted as a fresh run
pays them, so a rerun served from the cache ends in the same place). Results go
to a JSON-lines file as each run finishes, so an interrupted benchmark keeps
what it has; rerunning the same command skips finished runs (each run is keyed by a
fingerprint of all its settings, so other flags never reuse them) and rebuilds the tables.

Lite scale, embedded SmolLM2 in both roles, 2 CPU cores (the defaults):

    python -m bench.compare

Paper scale against any OpenAI-compatible endpoint (a key in OPENAI_API_KEY):

    python -m bench.compare --scorer-model llama-2-7b-chat --scorer-base-url http://host:8000/v1 \\
        --optimizer-model gpt-3.5-turbo --optimizer-base-url https://api.openai.com/v1 \\
        --tasks bbh:all mmlu:all gsm8k wsc webnlg --train 0 --eval 0 --test 0 \\
        --budget 0 --epochs 3 --batch 8 --candidates 8 --scorer-max-tokens 256 --second-round --selection full

(``--selection full`` scores every candidate on the whole eval split, as the paper did; the default races.)
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import time
from collections import defaultdict
from pathlib import Path
from typing import Callable

from bench._record import DATA_DIR, fingerprint, record

from gpo.api import ModelSpec, RunSpec, ScoringSpec, TaskSpec, optimize
from gpo.config import preset
from gpo.methods import method_class
from gpo.run.store import safe_name
from gpo.scoring.evaluate import Evaluation
from gpo.scoring.stats import compare

# The paper's lite BBH, one MMLU subject and WSC. GSM8K is left out of the default: the 135M model
# answers no GSM8K question right with any prompt (BENCHMARKS.md, scorer baselines), so on this
# machine it would only cost time; add `gsm8k` with a real scorer.
LITE_TASKS = ["bbh:navigate", "bbh:object_counting", "bbh:word_sorting", "bbh:movie_recommendation",
              "mmlu:high_school_geography", "wsc"]
METHODS = ["empty", "cot", "ape", "apo", "opro", "pe2", "evoprompt-ga", "evoprompt-de", "gpo"]
# The lite default leaves evoprompt-de out to fit the 2-core time (it is tested end to end; add it with --methods).
LITE_METHODS = [m for m in METHODS if m != "evoprompt-de"]
FIXED = {"empty", "cot"}  # no search: one run serves every seed (a greedy scorer gives the same scores)
GROUPS = ["bbh", "mmlu", "gsm8k", "wsc", "webnlg"]


def by_dataset(tasks: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for t in tasks:
        dataset, _, name = t.partition(":")
        out[dataset].append(name or "all")
    return out


def run_key(method: str, seed: int, dataset: str, few_shot: bool) -> str:
    return f"{method}|{seed}|{dataset}|{'few-shot' if few_shot else 'instruction'}"


def build_spec(args, method: str, seed: int, dataset: str, names: list[str], few_shot: bool,
               preset_name: str = "gpo") -> RunSpec:
    """One method (or one preset of GPO) on one dataset's tasks. A preset other than ``gpo``
    keeps its own candidate selection (the paper's presets score every candidate)."""
    caps = {k: v for k, v in (("train", args.train), ("eval", args.eval), ("test", args.test)) if v}
    selection = dict(selection=args.selection, race_block=args.race_block) if preset_name == "gpo" else {}
    cfg = preset(preset_name, seed=seed, num_search_epochs=args.epochs, opt_batch_size=args.batch,
                 num_generated_instructions_in_each_step=args.candidates, optimizer_max_tokens=args.optimizer_max_tokens,
                 evaluate_generated_ins_on_few_shot=few_shot, few_shot_number=args.shots, train_probe=False,
                 budget={"scorer_calls_per_task": args.budget or None}, **selection)
    return RunSpec(
        tasks=TaskSpec(source="gpo", dataset=dataset, tasks=names, data_dir=args.data_dir, max_examples=caps or None),
        config=cfg, method=method,
        optimizer=ModelSpec(args.optimizer_model, args.optimizer_base_url, concurrency=args.concurrency),
        scorer=ModelSpec(args.scorer_model, args.scorer_base_url, concurrency=args.concurrency),
        scoring=ScoringSpec(max_tokens=args.scorer_max_tokens, second_round=args.second_round),
        cache=args.cache, concurrent_tasks=args.concurrent_tasks,
    )


def planned(args, label: str, fields: dict, spec: RunSpec) -> tuple[str, dict, Callable[[], list[dict]]]:
    """A (key, fields, run) entry of a bench's plan. The key, and the run's directory, carry a
    fingerprint of every setting of the run, so a rerun with other flags reuses nothing."""
    key = f"{label}|{fingerprint(spec)}"
    return key, fields, functools.partial(one_run, spec, Path(args.runs) / key.replace("|", "-"))


def one_run(spec: RunSpec, run_dir: Path) -> list[dict]:
    """The rows of a run's results, with per-example test scores of the initial and final prompts."""
    rows = []
    for r in optimize(spec, run_dir):
        tests = run_dir / "tasks" / safe_name(f"{r.dataset}/{r.task}") / "evals" / "test"
        scores = {}
        for which in ("initial", "final"):
            path = tests / f"{which}.jsonl"
            if path.exists():  # per-example test scores, for paired comparisons pooled over seeds
                scores[which] = [rec.score for rec in Evaluation.read(path).records]
        rows.append(r.as_dict() | {"test_scores": scores})
    return rows


def run_plan(results: str, plan: list[tuple[str, dict, Callable[[], list[dict]]]]) -> dict[str, dict]:
    """Every row of the results file, after running each planned (key, fields, run) not in it
    yet. Each row is appended as its run finishes, so an interrupted benchmark keeps what it has."""
    out = Path(results)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = {}
    if out.exists():
        for line in out.read_text().splitlines():
            row = json.loads(line)
            done[row["key"]] = row
    start = time.time()
    for i, (key, fields, run) in enumerate(plan, 1):
        if key in done:
            continue
        t0 = time.time()
        done[key] = row = {"key": key, **fields, "results": run(), "wall_s": round(time.time() - t0, 1)}
        with open(out, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        print(f"[{i}/{len(plan)}] {key}: {row['wall_s']:.0f}s (total {(time.time() - start) / 60:.1f} min)", flush=True)
    return done


def collect(args) -> list[dict]:
    settings = [False] + ([True] if args.few_shot else [])
    plan = []
    for few_shot in settings:
        methods = args.methods if not few_shot else [m for m in args.methods if m in args.few_shot_methods]
        tasks = args.tasks if not few_shot else [t for t in args.tasks if t.partition(":")[0] in args.few_shot_datasets]
        for dataset, names in by_dataset(tasks).items():
            for method in methods:
                for seed in ([args.seeds[0]] if method in FIXED else args.seeds):
                    fields = {"method": method, "seed": seed, "dataset": dataset, "few_shot": few_shot}
                    spec = build_spec(args, method, seed, dataset, names, few_shot)
                    plan.append(planned(args, run_key(method, seed, dataset, few_shot), fields, spec))
    done = run_plan(args.results, plan)
    return [done[key] for key, _, _ in plan]


def ms(values: list[float]) -> str:
    values = [100 * v for v in values]
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} ± {statistics.pstdev(values):.1f}"


def tables(rows: list[dict], args) -> str:
    """Table 5 (groups and per task), usage, and Table 6 if few-shot rows exist."""
    # score[setting][method][group or task][seed] -> test score (group: mean over its tasks)
    per_task: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(dict)))
    usage: dict = defaultdict(lambda: defaultdict(list))
    for row in rows:
        setting = "few-shot" if row["few_shot"] else "instruction"
        for r in row["results"]:
            if r["final_test"] is None:
                continue
            per_task[setting][row["method"]][f"{r['dataset']}/{r['task']}"][row["seed"]] = r["final_test"]
            if setting == "instruction":
                for k in ("scorer_requests", "scorer_tokens", "optimizer_samples", "optimizer_tokens"):
                    usage[row["method"]][k].append(r.get(k, 0))
                usage[row["method"]]["changed"].append(r["final_prompt"] != r["initial_prompt"])
                usage[row["method"]]["eval_gain"].append(r["final_eval"] - r["initial_eval"])
                usage[row["method"]]["wall_s"].append(row["wall_s"] / max(1, len(row["results"])))
    seeds = args.seeds

    def group_scores(setting: str, method: str, group: str) -> list[float]:
        tasks = [t for t in per_task[setting][method] if t.split("/")[0] == group]
        if not tasks:
            return []
        runs = seeds if method not in FIXED else [seeds[0]]
        return [statistics.mean(per_task[setting][method][t][s] for t in tasks) for s in runs
                if all(s in per_task[setting][method][t] for t in tasks)]

    inst = per_task["instruction"]
    methods = [m for m in args.methods if m in inst]
    groups = [g for g in GROUPS if any(group_scores("instruction", m, g) for m in methods)]
    head = "| method | " + " | ".join(groups) + " | avg |\n|---|" + "---|" * (len(groups) + 1)
    lines = [head]
    for m in methods:
        cells = [ms(group_scores("instruction", m, g)) or "-" for g in groups]
        per_seed = [group_scores("instruction", m, g) for g in groups]
        avg = [statistics.mean(col) for col in zip(*per_seed)] if all(per_seed) else []
        lines.append(f"| {m} | " + " | ".join(cells) + f" | {ms(avg) if avg else '-'} |")
    table5 = "\n".join(lines)

    all_tasks = sorted({t for m in methods for t in inst[m]})
    detail = ["| task | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
    for t in all_tasks:
        cells = [ms([inst[m][t][s] for s in sorted(inst[m][t])]) if t in inst[m] else "-" for m in methods]
        detail.append(f"| {t} | " + " | ".join(cells) + " |")

    use = ["| method | scorer requests / task | scorer tokens / task | optimizer samples / task | "
           "optimizer tokens / task | wall s / task (this machine) | final ≠ initial | eval gain (points) |",
           "|---|---|---|---|---|---|---|---|"]
    for m in methods:
        u = usage[m]
        use.append(f"| {m} | {statistics.mean(u['scorer_requests']):.1f} | {statistics.mean(u['scorer_tokens']):,.0f} | "
                   f"{statistics.mean(u['optimizer_samples']):.1f} | {statistics.mean(u['optimizer_tokens']):,.0f} | "
                   f"{statistics.mean(u['wall_s']):.0f} | {sum(u['changed'])}/{len(u['changed'])} | "
                   f"{100 * statistics.mean(u['eval_gain']):+.1f} |")
    out = [table5, "", "Per task (test accuracy %, mean ± std over seeds):", "", "\n".join(detail), "",
           gains_table(rows, methods, seeds), "",
           "What each method used, per task and seed (search only; scorer requests include the initial prompt's "
           "eval scoring and count cache hits, so they are what a fresh run pays). \"final ≠ initial\" counts the "
           "task-seed runs whose search found a prompt that beat the initial one on eval (ties keep the initial "
           "prompt); the eval gain is the mean improvement on eval, where the prompt was selected:", "", "\n".join(use)]
    fs = per_task["few-shot"]
    if fs:
        cols = [m for m in args.methods if m in fs]
        t6 = ["| evaluation setting | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
        fs_groups = [g for g in groups if any(group_scores("few-shot", m, g) for m in cols)]
        for setting, label in (("instruction", "instruction only"), ("few-shot", f"instruction + {args.shots} demos")):
            cells = []
            for m in cols:
                per_seed = [group_scores(setting, m, g) for g in fs_groups]
                per_seed = [p for p in per_seed if p]
                cells.append(ms([statistics.mean(col) for col in zip(*per_seed)]) if per_seed else "-")
            t6.append(f"| {label} | " + " | ".join(cells) + " |")
        out += ["", f"Table 6 shape, on {', '.join(fs_groups)}: test accuracy under each evaluation setting; with "
                "demos, prompts are optimized and tested with the demonstrations in the scorer's input.", "",
                "\n".join(t6)]
    return "\n".join(out)


def gains_table(rows: list[dict], methods: list[str], seeds: list[int]) -> str:
    """Each method's final prompt against the searches' initial prompt, and against gpo's final
    prompt, paired on the same test examples and pooled over tasks and seeds."""
    finals: dict = defaultdict(dict)  # method -> (task, seed) -> per-example test scores
    initial: dict = {}
    for row in rows:
        if row["few_shot"]:
            continue
        for r in row["results"]:
            scores = r.get("test_scores") or {}
            if "final" not in scores:
                continue
            task = f"{r['dataset']}/{r['task']}"
            for seed in (seeds if row["method"] in FIXED else [row["seed"]]):  # a fixed row serves every seed
                finals[row["method"]][(task, seed)] = scores["final"]
            if row["method"] not in FIXED and "initial" in scores:
                initial[(task, row["seed"])] = scores["initial"]  # the same prompt (CoT) for every search
    keys = sorted(initial)
    if not keys:
        return "(no per-example test scores in the results file)"

    def pooled(method: str) -> list[float] | None:
        if not all(k in finals[method] for k in keys):
            return None
        return [x for k in keys for x in finals[method][k]]

    base = [x for k in keys for x in initial[k]]
    gpo = pooled("gpo") if "gpo" in finals else None
    lines = ["| method | test gain over the initial prompt (points) | against gpo (points) |", "|---|---|---|"]
    for m in methods:
        mine = pooled(m)
        if mine is None:
            continue
        versus = "-" if m == "gpo" or gpo is None else compare(gpo, mine, seed=1).describe()
        lines.append(f"| {m} | {compare(base, mine, seed=1).describe()} | {versus} |")
    n_examples = len(base)
    return (f"Gains, paired on the same test examples and pooled over {len(keys)} task-seed runs ({n_examples} "
            "scored examples; the seeds reuse the same test examples, so the intervals are somewhat narrower "
            "than independent examples would give). The initial prompt is every search's starting prompt, "
            "\"Let's think step by step.\" (the cot row); \"against gpo\" is the method minus gpo. 95% intervals, "
            "McNemar's exact test for accuracy, a sign-flip test for graded scores; \"not significant\" where p ≥ 0.05:\n\n" + "\n".join(lines))


def add_model_options(p: argparse.ArgumentParser) -> None:
    """The models and how many requests run at once (shared with bench/ablations.py)."""
    p.add_argument("--optimizer-model", default="embedded")
    p.add_argument("--optimizer-base-url", default=None)
    p.add_argument("--scorer-model", default="embedded")
    p.add_argument("--scorer-base-url", default=None)
    p.add_argument("--concurrency", type=int, default=None)
    p.add_argument("--concurrent-tasks", type=int, default=1)


def main(args) -> None:
    for m in args.methods:
        method_class(m)  # unknown names fail before anything runs
    start = time.time()
    rows = collect(args)
    wall = sum(r["wall_s"] for r in rows) / 60
    body = f"""Scorer {args.scorer_model}, optimizer {args.optimizer_model}; tasks {', '.join(args.tasks)}; splits capped at train
{args.train or 'all'} / eval {args.eval or 'all'} / test {args.test or 'all'} (file order); search budget
{args.budget or 'unlimited'} scorer requests per task; at most {args.epochs} epochs of batch {args.batch},
{args.candidates} candidates per step, candidate selection {args.selection}; scorer ≤ {args.scorer_max_tokens} tokens, second round
{'on' if args.second_round else 'off'}; seeds {', '.join(map(str, args.seeds))}; initial prompt "Let's think step by
step." for every method. Test accuracy (%), mean ± std over seeds of the dataset-group mean (empty and cot
have no search and a greedy scorer, so one run stands for every seed). The final prompt is chosen on eval only.
Wall time {wall:.0f} min for these rows, summed over runs, on this machine (this invocation:
{(time.time() - start) / 60:.0f} min; finished runs are skipped on a rerun).

{tables(rows, args)}"""
    print(body)
    if not args.no_record:
        record(args.section, args.title, body)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--methods", nargs="+", default=LITE_METHODS)
    p.add_argument("--tasks", nargs="+", default=LITE_TASKS, help="dataset:task (or a bare dataset: gsm8k, wsc, webnlg)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--data-dir", default=DATA_DIR)
    p.add_argument("--train", type=int, default=8, help="cap (0: whole split)")
    p.add_argument("--eval", type=int, default=16)
    p.add_argument("--test", type=int, default=16)
    p.add_argument("--budget", type=int, default=64, help="scorer requests per task for each search (0: unlimited)")
    p.add_argument("--selection", choices=["race", "full"], default="race")
    p.add_argument("--race-block", type=int, default=8)
    p.add_argument("--epochs", type=int, default=6, help="upper bound on steps; the budget usually ends the search first")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--candidates", type=int, default=2)
    p.add_argument("--scorer-max-tokens", type=int, default=48)
    p.add_argument("--second-round", action=argparse.BooleanOptionalAction, default=False)
    p.add_argument("--optimizer-max-tokens", type=int, default=64)
    p.add_argument("--few-shot", action=argparse.BooleanOptionalAction, default=True, help="also the Table 6 setting")
    p.add_argument("--few-shot-methods", nargs="+", default=["empty", "cot", "gpo"])
    p.add_argument("--few-shot-datasets", nargs="+", default=["bbh"], help="datasets of --tasks used for Table 6")
    p.add_argument("--shots", type=int, default=3)
    add_model_options(p)
    p.add_argument("--cache", default="bench/.cache/compare.sqlite")
    p.add_argument("--runs", default="bench/.cache/compare_runs")
    p.add_argument("--results", default="bench/.cache/compare_results.jsonl")
    p.add_argument("--no-record", action="store_true", help="print only; do not write BENCHMARKS.md")
    p.add_argument("--section", default="compare-lite")
    p.add_argument("--title", default="Optimizers compared on the same engine, lite scale (issue 6)")
    main(p.parse_args())
