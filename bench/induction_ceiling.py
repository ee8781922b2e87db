"""How much there is to find on instruction induction with the embedded scorer (issue 39): the
human-written instruction, alone and with k train demonstrations, against the initial prompt.

No search runs here. For each of the 12 tasks, on the same test examples: "Let's think step by
step." (the searches' initial prompt), the task's first human instruction alone, and the human
instruction with k demonstrations drawn from train by each seed. Each is paired against the initial
prompt (McNemar's exact test) and, where the answers are a closed set, against the best constant
answer (``gpo.scoring.constant``). A task counts as having room when the human instruction with
demonstrations gains significantly over both in every seed: that is the gain a search that reaches
the human reference would show. Issue 39's first target asks for such a gain on 6 of the 12.

    python -m bench.induction_ceiling [--k 3] [--seeds 0 1 2] [--test 40]
"""

from __future__ import annotations

import argparse
import asyncio
import random

from bench._record import publish
from bench.induction import DATA_DIR

from gpo.api import ModelSpec, RunSpec, ScoringSpec, TaskSpec, evaluate_async
from gpo.config import preset
from gpo.run.build import load_tasks
from gpo.scoring.constant import beats_constant, measure
from gpo.scoring.demos import with_demos
from gpo.tasks.induction import DATASET, TASKS

INITIAL = "Let's think step by step."


def spec(args, task: str) -> RunSpec:
    return RunSpec(tasks=TaskSpec(source="gpo", dataset=DATASET, tasks=[task], data_dir=args.data_dir,
                                  max_examples={"test": args.test}),
                   config=preset("gpo"), method="gpo", optimizer=ModelSpec("embedded"), scorer=ModelSpec("embedded"),
                   scoring=ScoringSpec(max_tokens=args.scorer_max_tokens, second_round=None), cache=args.cache)


def one_task(args, name: str) -> tuple[str, bool]:
    """The task's table row, and whether the human instruction with demonstrations has room in every seed."""
    s = spec(args, name)
    task = load_tasks(s.tasks)[0]
    shown = {seed: random.Random(seed).sample(task.splits["train"], args.k) for seed in args.seeds}
    prompts = [INITIAL, task.human_instruction] + [with_demos(task.human_instruction, shown[seed]) for seed in args.seeds]
    evals = [ev for _, ev, _ in asyncio.run(evaluate_async(s, prompts, "test", tasks=[task]))]
    initial, alone, *withs = evals
    cells, room = [], []
    for ev in [alone, *withs]:
        gain = ev.versus(initial)
        up = gain.significant and gain.diff > 0 and beats_constant(measure(task, ev))
        room.append(up)
        cells.append(f"{100 * ev.score:.1f} ({gain.describe()})")
    constant = measure(task, initial)
    best = f"{constant['constant']!r} {100 * constant['constant_score']:.1f}" if constant else "-"
    return f"| {name} | {100 * initial.score:.1f} | {best} | {' | '.join(cells)} |", all(room[1:])


def main(args) -> None:
    rows, room = [], []
    for name in args.tasks:
        row, has_room = one_task(args, name)
        rows.append(row)
        if has_room:
            room.append(name)
        print(row, flush=True)
    seeds = " | ".join(f"human + {args.k} demos, seed {s}" for s in args.seeds)
    body = "\n".join([
        f"Scorer: the embedded SmolLM2-135M-Instruct (greedy, at most {args.scorer_max_tokens} tokens a reply); per "
        f"task the first {args.test} test examples; k = {args.k} demonstrations drawn from train by each seed. "
        f"Execution accuracy (%) on test; each cell's gain is against the initial prompt \"{INITIAL}\", paired "
        f"(McNemar's exact test, 95% interval). No search runs: this is the gain a search that reaches the human "
        f"instruction with demonstrations would show.", "",
        f"| task | initial | best constant answer | human alone | {seeds} |",
        "|---|---|---|---|" + "---|" * len(args.seeds), *rows, "",
        f"The human instruction with {args.k} demonstrations gains significantly over the initial prompt and the "
        f"constant answer in every seed on {len(room)} of {len(args.tasks)} tasks"
        f"{': ' + ', '.join(room) if room else ''}.",
    ])
    publish(args, body)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    p.add_argument("--tasks", nargs="+", default=list(TASKS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--k", type=int, default=3)
    p.add_argument("--test", type=int, default=40)
    p.add_argument("--scorer-max-tokens", type=int, default=48)
    p.add_argument("--data-dir", default=DATA_DIR)
    p.add_argument("--cache", default="bench/.cache/induction.sqlite")
    p.add_argument("--no-record", action="store_true")
    p.add_argument("--section", default="induction-ceiling")
    p.add_argument("--title", default="Instruction induction: how much the human instruction with demonstrations "
                                      "gains on the embedded scorer, 12 tasks (issue 39)")
    return p


if __name__ == "__main__":
    main(parser().parse_args())
