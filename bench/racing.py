"""Racing against scoring everything: the same decisions for fewer scorer requests?

1. Records. Real GPO searches on the embedded model score every candidate on the
   whole eval split (``selection=full``), so each step leaves its candidates'
   per-example records on disk.
2. Replay. Both rules are replayed on those records, racing under many seeded
   example orders and block sizes: how often racing picks the winner that full
   scoring picks (or one not significantly worse on the whole split), and the
   share of scorer requests it needs. Target: the same decision in at least 90%
   of steps with at most 40% of the requests.
3. Live (``--live``). Race and full at an equal search budget of scorer requests
   per task, on lite BBH, several seeds: test accuracy of the final prompts with
   intervals, and race against full paired on the same test examples.

Lite scale on the embedded SmolLM2 in both roles (the defaults), 2 CPU cores:

    python -m bench.racing --live

Against real models, e.g. (key in OPENAI_API_KEY):

    python -m bench.racing --live --scorer-model llama-3.1-8b --scorer-base-url http://host:8000/v1 \\
        --optimizer-model gpt-4o-mini --optimizer-base-url https://api.openai.com/v1 --candidates 8 --steps 6
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path

from bench._record import DATA_DIR, fingerprint, record

from gpo.api import ModelSpec, RunSpec, ScoringSpec, TaskSpec, optimize
from gpo.config import preset
from gpo.engine.state import stable_seed
from gpo.run.store import safe_name
from gpo.scoring.evaluate import Evaluation
from gpo.scoring.racing import least_scorings, race
from gpo.scoring.stats import compare

LITE_BBH = ["navigate", "object_counting", "word_sorting", "movie_recommendation"]


def spec(args, selection: str, seed: int, steps: int, budget: int | None, test: int, tasks: list[str]) -> RunSpec:
    cfg = preset("gpo", seed=seed, selection=selection, race_alpha=args.alpha, race_block=args.block,
                 num_search_epochs=steps, opt_batch_size=args.batch,
                 num_generated_instructions_in_each_step=args.candidates, optimizer_max_tokens=args.optimizer_max_tokens,
                 train_probe=False, budget={"scorer_calls_per_task": budget})
    caps = {"train": args.batch, "test": test} | ({"eval": args.eval} if args.eval else {})
    return RunSpec(
        tasks=TaskSpec(source="gpo", dataset="bbh", tasks=tasks, data_dir=args.data_dir, max_examples=caps),
        config=cfg,
        optimizer=ModelSpec(args.optimizer_model, args.optimizer_base_url),
        scorer=ModelSpec(args.scorer_model, args.scorer_base_url),
        scoring=ScoringSpec(max_tokens=args.scorer_max_tokens, second_round=False),
        cache=args.cache, concurrent_tasks=1,
    )


def read_records(path: Path) -> list[float]:
    """Per-example scores of a stored whole-split evaluation, in split order."""
    return [r.score for r in Evaluation.read(path).records]


def step_records(run_dir: Path) -> list[dict]:
    """Every step of every task whose new candidates were scored on the whole split."""
    steps = []
    for state_path in sorted(run_dir.glob("tasks/*/state.json")):
        state = json.loads(state_path.read_text())
        evals = state_path.parent / "evals" / "eval"
        for s in state["trajectory"]["steps"]:
            scores = {}
            for c in s["candidates"]:
                if c["rejected"] is None and not c["reused"] and c["text"] not in scores:
                    path = evals / f"step{s['global_step']:03d}-{stable_seed(c['text']):08x}.jsonl"
                    scores[c["text"]] = read_records(path)
            if len(scores) >= 2:
                steps.append({"task": state_path.parent.name, "step": s["global_step"], "scores": scores})
    return steps


def replay(step: dict, block: int, alpha: float, seed: int) -> tuple[bool, bool, float]:
    """(same winner, same or not significantly worse, share of full's requests) for one order."""
    scores = step["scores"]
    prompts = list(scores)
    n = len(next(iter(scores.values())))

    def best(candidates):
        return max(candidates, key=lambda p: sum(scores[p]))  # first in generation order on ties

    async def fetch(alive, indices):
        return {p: [scores[p][i] for i in indices] for p in alive}

    result = asyncio.run(race(prompts, n, fetch, block=block, alpha=alpha, seed=seed))
    full_winner, race_winner = best(prompts), best(result.finished)
    worse = compare(scores[full_winner], scores[race_winner], alpha=alpha, interval=False)
    same = race_winner == full_winner
    return same, same or not (worse.significant and worse.diff < 0), result.examples_scored / (len(prompts) * n)


def replay_table(steps: list[dict], args) -> tuple[str, dict[int, tuple[float, float]]]:
    """The table, and per block (same or not significantly worse, share of full's requests)."""
    figures = {}
    lines = ["| block | steps raced | orders each | same winner | same or not significantly worse | "
             "requests vs full (mean) | least possible | candidates per step |", "|---|---|---|---|---|---|---|---|"]
    k = statistics.mean(len(s["scores"]) for s in steps)
    for block in args.blocks:
        outcomes = [replay(s, block, args.alpha, seed) for s in steps for seed in range(args.orders)]
        same = sum(o[0] for o in outcomes) / len(outcomes)
        fine = sum(o[1] for o in outcomes) / len(outcomes)
        share = statistics.mean(o[2] for o in outcomes)
        floor = statistics.mean(least_scorings(len(s["scores"]), n := len(next(iter(s["scores"].values()))), block)
                                / (len(s["scores"]) * n) for s in steps)
        figures[block] = (fine, share)
        lines.append(f"| {block} | {len(steps)} | {args.orders} | {100 * same:.1f}% | {100 * fine:.1f}% | "
                     f"{100 * share:.1f}% | {100 * floor:.1f}% | {k:.1f} |")
    return "\n".join(lines) + (
        "\n\n\"Least possible\": every candidate but the winner stopped after its first block, the most racing "
        "can save with this many candidates. The rest of the gap is the candidates themselves: where they score "
        "alike (or all 0), no paired test can separate them and racing rightly scores them in full."), figures


def per_step_detail(steps: list[dict], args) -> str:
    lines = ["| task | step | candidates' eval scores (whole split, %) | requests vs full, block "
             f"{args.blocks[0]} |", "|---|---|---|---|"]
    for s in steps:
        share = statistics.mean(replay(s, args.blocks[0], args.alpha, seed)[2] for seed in range(args.orders))
        scores = ", ".join(f"{100 * statistics.mean(v):.0f}" for v in s["scores"].values())
        lines.append(f"| {s['task']} | {s['step']} | {scores} | {100 * share:.0f}% |")
    return "\n".join(lines)


def live(args) -> tuple[str, dict[str, float]]:
    """Race and full at an equal search budget: final prompts' test scores, paired; and
    each rule's mean search requests per task."""
    finals: dict[str, dict[tuple, list[float]]] = {"race": {}, "full": {}}
    initials: dict[tuple, list[float]] = {}
    used: dict[str, list[int]] = {"race": [], "full": []}
    for seed in args.live_seeds:
        for rule in ("race", "full"):
            run = spec(args, rule, seed, args.live_epochs, args.budget, args.test, args.live_tasks)
            run_dir = Path(args.runs) / f"live-{rule}-{seed}-{fingerprint(run)}"  # other flags: other runs
            t0 = time.time()
            results = optimize(run, run_dir)
            print(f"live {rule} seed {seed}: {time.time() - t0:.0f}s", flush=True)
            for r in results:
                tdir = run_dir / "tasks" / safe_name(f"bbh/{r.task}") / "evals" / "test"
                finals[rule][(r.task, seed)] = read_records(tdir / "final.jsonl")
                initials[(r.task, seed)] = read_records(tdir / "initial.jsonl")
                used[rule].append(r.scorer_requests)
    keys = sorted(initials)
    pooled = {rule: [x for k in keys for x in finals[rule][k]] for rule in finals}
    base = [x for k in keys for x in initials[k]]
    lines = ["| rule | test accuracy (pooled) | gain over the initial prompt | scorer requests / task (search) |",
             "|---|---|---|---|"]
    for rule in ("full", "race"):
        gain = compare(base, pooled[rule], alpha=args.alpha, seed=1)
        lines.append(f"| {rule} | {100 * statistics.mean(pooled[rule]):.1f} | {gain.describe()} | "
                     f"{statistics.mean(used[rule]):.0f} |")
    versus = compare(pooled["full"], pooled["race"], alpha=args.alpha, seed=2)
    return ("\n".join(lines) + f"\n\nRace against full, paired on the same test examples: {versus.describe()}.",
            {rule: statistics.mean(used[rule]) for rule in used})


def main(args) -> None:
    start = time.time()
    run_dirs = []
    for seed in args.seeds:
        run = spec(args, "full", seed, args.steps, None, 4, args.tasks)
        run_dir = Path(args.runs) / f"records-{seed}-{fingerprint(run)}"  # other flags: other runs
        t0 = time.time()
        optimize(run, run_dir)
        print(f"records seed {seed}: {time.time() - t0:.0f}s", flush=True)
        run_dirs.append(run_dir)
    steps = [s for d in run_dirs for s in step_records(d)]
    if not steps:
        raise SystemExit("no step had two or more candidates scored on the whole split; raise --candidates or --steps")
    table, figures = replay_table(steps, args)
    fine, share = figures[args.blocks[0]]
    targets = [(f"block {args.blocks[0]}: the same or a not significantly worse decision in {100 * fine:.1f}% of "
                f"steps, ≥ 90%", fine >= 0.9),
               (f"block {args.blocks[0]}: {100 * share:.1f}% of full's requests, ≤ 40%", share <= 0.4)]
    body = f"""Scorer {args.scorer_model}, optimizer {args.optimizer_model}; bbh {', '.join(args.tasks)}; eval
{args.eval or 'whole split (48)'} examples; GPO (the default recipe) with {args.candidates} candidates per step,
{args.steps} steps per task, batch {args.batch}, seeds {', '.join(map(str, args.seeds))}; scorer ≤
{args.scorer_max_tokens} tokens, no second round; racing at alpha = {args.alpha}, Holm-corrected per block.

**Replay.** Every step's new candidates were scored on the whole eval split once (selection=full); both rules
are replayed on those per-example records, racing under {args.orders} seeded example orders per step. "Same or
not significantly worse": racing's winner is full's, or is not significantly worse than it on the whole split
(paired exact test). Requests: the (candidate, example) scorings racing asks for, as a share of full's.
Target: the same decision in at least 90% of steps with at most 40% of the requests.

{table}

Per step (block {args.blocks[0]}):

{per_step_detail(steps, args)}
"""
    if args.live:
        live_table, used = live(args)
        targets.append((f"at an equal search budget race sent {used['race']:.0f} search requests per task against "
                        f"full's {used['full']:.0f}, no more", used["race"] <= used["full"]))
        body += f"""
**Live, at an equal search budget** of {args.budget} scorer requests per task (eval whole split, test capped at
{args.test} examples, up to {args.live_epochs} steps), seeds {', '.join(map(str, args.live_seeds))}, bbh
{', '.join(args.live_tasks)}. Test
scores are pooled over tasks and seeds (each seed reuses the same test examples, so the pooled interval is
somewhat narrower than independent examples would give):

{live_table}
"""
    body += f"\nWall time {(time.time() - start) / 60:.0f} min on this machine (cached responses are reused on a rerun)."
    if args.no_record:
        print(body)
    else:
        record("racing", "Racing against full scoring (issue 11)", body, targets=targets)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", nargs="+", default=LITE_BBH)
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds of the record searches")
    p.add_argument("--live-seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--live-tasks", nargs="+", default=LITE_BBH)
    p.add_argument("--data-dir", default=DATA_DIR)
    p.add_argument("--eval", type=int, default=0, help="cap on eval (0: the whole split)")
    p.add_argument("--test", type=int, default=32, help="test cap for --live")
    p.add_argument("--steps", type=int, default=3, help="steps per task for the records")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--candidates", type=int, default=4)
    p.add_argument("--blocks", type=int, nargs="+", default=[8, 16])
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--block", type=int, default=8, help="racing block for --live")
    p.add_argument("--orders", type=int, default=200, help="seeded example orders per step in the replay")
    p.add_argument("--live", action="store_true", help="also race against full at an equal budget")
    p.add_argument("--budget", type=int, default=160, help="--live: scorer requests per task for each search")
    p.add_argument("--live-epochs", type=int, default=6, help="--live: upper bound on steps (the budget ends it)")
    p.add_argument("--scorer-max-tokens", type=int, default=48)
    p.add_argument("--optimizer-max-tokens", type=int, default=96)
    p.add_argument("--optimizer-model", default="embedded")
    p.add_argument("--optimizer-base-url", default=None)
    p.add_argument("--scorer-model", default="embedded")
    p.add_argument("--scorer-base-url", default=None)
    p.add_argument("--cache", default="bench/.cache/racing.sqlite")
    p.add_argument("--runs", default="bench/.cache/racing_runs")
    p.add_argument("--no-record", action="store_true")
    main(p.parse_args())
