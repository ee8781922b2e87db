"""A two-step program against one flat prompt (issue 27): the tickets CSV in tests/data,
optimized by GPO with the embedded model in every role, once as the README's program
(tests/data/ticket_program.py: a prompt that picks the sentence stating the problem, then
a prompt that names its category) and once as one prompt over the whole ticket. Both runs
use the same splits, metric (tests/data/ticket_metric.py:category_with_feedback),
budget and seed. Reports each run's test gain over its own initial prompts, and the
program's final test score against the flat prompt's, paired on the same test examples,
with 95% intervals and p-values, beside the best constant answer.

    python -m bench.program [--seed 0] [--epochs 2]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bench._record import fingerprint, record

from gpo.api import RunSpec, ScoringSpec, TaskSpec, optimize
from gpo.config import preset
from gpo.run.store import safe_name
from gpo.scoring.constant import verdict
from gpo.scoring.evaluate import Evaluation
from gpo.scoring.stats import Comparison, compare
from gpo.tasks.program import read_prompts

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
METRIC = f"python:{DATA / 'ticket_metric.py'}:category_with_feedback"


def spec_for(args, program: bool) -> RunSpec:
    cfg = preset("gpo", seed=args.seed, num_search_epochs=args.epochs, num_generated_instructions_in_each_step=2,
                 opt_batch_size=4, optimizer_max_tokens=96, gradient_name="feedback",
                 initial_instruction="Name the category of this problem in one word: billing, technical, account or shipping.")
    task = dict(source="user", files=str(DATA / "tickets.csv"), input_col="body", target_col="label", tasks=["tickets"],
                metric=METRIC, seed=args.seed, max_examples={"train": 8, "eval": 8, "test": 12})
    if program:
        task.update(program=f"{DATA / 'ticket_program.py'}:run", program_prompts=read_prompts(DATA / "ticket_prompts.yaml"))
    else:
        task.update(template="Ticket: {body}\n\n{instruction}")
    return RunSpec(tasks=TaskSpec(**task), config=cfg, scoring=ScoringSpec(max_tokens=24), concurrent_tasks=1)


def best_constant_answer(evaluation: Evaluation) -> tuple[str, float]:
    """The one reply that scores highest by the run's metric when given for every test example."""
    from gpo.scoring.metrics import build_metric, metric_result
    from gpo.tasks import Example

    metric = build_metric(METRIC)
    examples = [Example(r.prompt, r.target) for r in evaluation.records]
    scores = {label: sum(metric_result(metric(label, ex))[0] for ex in examples) / len(examples)
              for label in sorted({ex.target for ex in examples})}
    return max(scores.items(), key=lambda kv: kv[1])


def main(args) -> None:
    rows, finals, took = {}, {}, {}
    for name, program in (("program (two prompts)", True), ("flat prompt", False)):
        spec = spec_for(args, program)
        run_dir = Path(args.runs) / f"{'program' if program else 'flat'}-seed{args.seed}-{fingerprint(spec)}"
        start = time.time()
        (result,) = optimize(spec, run_dir, overwrite=True)
        took[name] = time.time() - start
        rows[name] = result
        finals[name] = Evaluation.read(run_dir / "tasks" / safe_name(f"{result.dataset}/{result.task}") / "evals"
                                       / "test" / "final.jsonl")
    program_final, flat_final = finals["program (two prompts)"], finals["flat prompt"]
    versus = compare([r.score for r in flat_final.records], [r.score for r in program_final.records])
    lines = [f"tests/data/tickets.csv (train 8, eval 8, test 12), embedded SmolLM2-135M in every role, GPO "
             f"(feedback gradient), {args.epochs} epochs, 2 candidates a step, seed {args.seed}.", "",
             "| run | steps | test: initial → final | test gain (95% CI, p) | final against the best constant answer "
             "| wall time |", "|---|---|---|---|---|---|"]
    for name, r in rows.items():
        gain = Comparison.from_dict(r.test_comparison).describe() if r.test_comparison else "n/a"
        against = verdict(r.constant["test"]["final"], "test") if r.constant and r.constant.get("test") else "n/a"
        lines.append(f"| {name} | {r.steps_done} | {100 * (r.initial_test or 0):.1f} → {100 * (r.final_test or 0):.1f} "
                     f"| {gain} | {against} | {took[name] / 60:.1f} min |")
    lines += ["", f"The program's final prompts against the flat prompt's final one, paired on the test examples: "
              f"{versus.describe()}."]
    label, share = best_constant_answer(program_final)
    lines.append(f"The best constant answer on test, always replying {label!r}, scores {100 * share:.1f} by the same "
                 f"metric; the program's final prompts score {100 * program_final.score:.1f}, the flat prompt's "
                 f"{100 * flat_final.score:.1f}.")
    record("program", "A program against one flat prompt (issue 27)", "\n".join(lines))


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--runs", default="bench/.cache/program")
    main(p.parse_args())
