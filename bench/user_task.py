"""A user's own task with an LLM judge (issue 16): the tickets CSV in tests/data through
its template, scored by the embedded model as judge against tests/data/ticket_rubric.txt,
optimized by GPO with the embedded model in every role. Reports the test gain with its
95% interval and p-value (paired on the same test examples), the judge's requests and
how many of its replies had no score.

    python -m bench.user_task [--seed 0] [--epochs 2]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from bench._record import fingerprint, record

from gpo.api import RunSpec, ScoringSpec, TaskSpec, optimize
from gpo.config import preset
from gpo.scoring.stats import Comparison

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
INITIAL = "Which category is this ticket: billing, technical, account or shipping?"


def asked(role: dict) -> int:
    return role["calls"] + role["cache_hits"]


def main(args) -> None:
    start = time.time()
    cfg = preset("gpo", seed=args.seed, num_search_epochs=args.epochs, num_generated_instructions_in_each_step=2,
                 opt_batch_size=4, initial_instruction=INITIAL, optimizer_max_tokens=96)
    spec = RunSpec(
        tasks=TaskSpec(source="user", files=str(DATA / "tickets.csv"), target_col="label", tasks=["tickets"],
                       template=(DATA / "ticket_template.txt").read_text(), metric="judge",
                       judge_rubric=(DATA / "ticket_rubric.txt").read_text(), seed=args.seed,
                       max_examples={"train": 8, "eval": 8, "test": 12}),
        config=cfg, scoring=ScoringSpec(max_tokens=24, judge_max_tokens=args.judge_max_tokens),
        cache=args.cache, concurrent_tasks=1,
    )
    run_dir = Path(args.runs) / f"seed{args.seed}-{fingerprint(spec)}"  # other flags: other runs
    (result,) = optimize(spec, run_dir, overwrite=True)  # a fresh run each time
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    usage = [e for e in events if e["event"] == "usage"][-1]
    test = Comparison.from_dict(result.test_comparison).describe() if result.test_comparison else "n/a"
    evalc = Comparison.from_dict(result.eval_comparison).describe() if result.eval_comparison else "n/a"
    judge = usage["judge"]
    scored = usage["scorer"]["calls"] + usage["scorer"]["cache_hits"]
    if judge["unparsed"] >= scored:
        reading = ("The 135M judge never wrote a score line, not even when asked again (it repeats the output it "
                   "was shown), so every grade is 0 and no prompt can differ: the table shows the machinery "
                   "(template, judge requests cached and budgeted like any scoring, unscored replies counted, "
                   "significance stated), not a judgement. A capable judge model (--judge-model) is needed for "
                   "real figures.")
    else:
        reading = ("A 135M judge grades loosely, and 12 test examples cannot separate prompts: read the gain "
                   "with its interval.")
    body = f"""tests/data/tickets.csv (32 tickets: subject, body, product → label), template
tests/data/ticket_template.txt, `--metric judge` with tests/data/ticket_rubric.txt; the embedded
SmolLM2-135M as scorer, optimizer and judge (judge ≤ {args.judge_max_tokens} tokens, greedy). Splits capped at
train 8 / eval 8 / test 12, GPO preset, {args.epochs} epochs × batch 4, 2 candidates a step, seed {args.seed}.
Initial prompt: "{INITIAL}".

| | eval (8) | test (12) |
|---|---|---|
| initial prompt | {100 * result.initial_eval:.1f} | {100 * (result.initial_test or 0):.1f} |
| final prompt | {100 * result.final_eval:.1f} | {100 * (result.final_test or 0):.1f} |
| gain | {evalc} | {test} |

Final prompt: {result.final_prompt!r}

Requests as a fresh run sends them (paid now + served from the response cache): judge {asked(judge)}, scorer
{asked(usage['scorer'])}, optimizer {asked(usage['optimizer'])}. Judge replies without a score: {judge['unparsed']}
(each asked once more, then scored 0). Wall time of this invocation {time.time() - start:.0f} s
(responses already in bench/.cache are instant; delete it for a cold run).

{reading}"""
    record("user-task-judge", "A user's task with an LLM judge, embedded model (issue 16)", body)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--judge-max-tokens", type=int, default=64)
    p.add_argument("--runs", default="bench/.cache/user_task")
    p.add_argument("--cache", default="bench/.cache/user_task.sqlite")
    main(p.parse_args())
