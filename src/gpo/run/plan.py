"""What a run will spend, before it runs: calls and tokens as upper bounds (``plan``), and the
wall time on this machine (``estimate_time``, timed on a few requests). Planning needs no
models and no search: each method declares its steps from its config and options."""

from __future__ import annotations

from gpo.config import ConfigError
from gpo.llm import LLM, Request
from gpo.methods import method_class
from gpo.run.build import build_evaluator, build_model, build_prompt_format, load_tasks
from gpo.scoring.evaluate import Evaluator, scoring_requests
from gpo.scoring.render import render
from gpo.run.sources import unpriced_cap
from gpo.run.spec import RunSpec
from gpo.tasks import Task
from gpo.names import DATA_SPLITS


# Token upper bounds. A token is at least one UTF-8 byte (byte-level tokenizers), so bytes
# bound tokens; a chat message adds at most MESSAGE_TOKENS of template. Instructions are
# bounded by max_prompt_words (longer candidates are rejected) of at most WORD_BYTES each.
MESSAGE_TOKENS = 16
WORD_BYTES = 16
META_PROMPT_BYTES = 4000  # the fixed text of the longest meta-prompt template


def _request_bytes(request: Request) -> int:
    if request.messages is None:
        return len((request.prompt or "").encode("utf-8")) + MESSAGE_TOKENS
    return sum(len(text.encode("utf-8")) + MESSAGE_TOKENS for _, text in request.messages)


def _bounds(spec: RunSpec, task: Task) -> dict:
    """Upper bounds on one call's tokens, by role: (prompt, completion)."""
    cfg, scoring = spec.config, spec.scoring
    instruction = " ".join(["w" * (WORD_BYTES - 1)] * cfg.max_prompt_words)
    fmt = build_prompt_format(spec)
    demos = task.splits.get("few_shot", [])
    examples = [e for s in DATA_SPLITS for e in task.split(s)] or task.split("eval")
    first = max((_request_bytes(render(instruction, e, fmt, demos, task.template)) for e in examples), default=0)
    longest = max((len((e.input + e.target).encode("utf-8")) for e in examples), default=0)
    second = first + scoring.max_tokens + len((task.second_round or "").encode("utf-8")) + 2 * MESSAGE_TOKENS
    shown = cfg.format_data_num + cfg.opt_batch_size + cfg.momentum_selection_num + 3
    optimizer_prompt = (META_PROMPT_BYTES + shown * (longest + scoring.max_tokens + len(instruction))
                        + cfg.optimizer_max_tokens)
    judge_prompt = len((spec.tasks.judge_rubric or "").encode("utf-8")) + longest + scoring.max_tokens + 4 * MESSAGE_TOKENS
    return {"first": (first, scoring.max_tokens), "second": (second, scoring.second_round_max_tokens),
            "optimizer": (optimizer_prompt, cfg.optimizer_max_tokens), "judge": (judge_prompt, scoring.judge_max_tokens)}


MIN_PROPOSALS = 3  # a search budget that cannot score this many proposals is refused


def check_search_budget(cap: int, cfg, phases: list[tuple[str, float]], task: str, n_eval: int, per: int) -> None:
    """Refuse a per-task search budget that buys fewer than ``MIN_PROPOSALS`` scored proposals
    after the initial prompt's eval scoring, or none in one of a method's phases, saying what it buys.
    A proposal costs at least one racing block of eval (``race``) or all of eval (``full``)."""
    initial = n_eval * per
    least = per * (min(cfg.race_block, n_eval) if cfg.selection == "race" else n_eval)
    how = f"each needs at least {least} requests " + ("under racing" if cfg.selection == "race" else "on all of eval")
    bought = max(0, cap - initial) // least
    if bought < MIN_PROPOSALS:
        raise ConfigError(f"--scorer-calls-per-task {cap}: after the initial prompt's {initial} eval requests on "
                          f"{task}, it buys {bought} scored proposal{'' if bought == 1 else 's'} ({how}); a search "
                          f"needs at least {MIN_PROPOSALS}: give at least {initial + MIN_PROPOSALS * least}, or fewer "
                          f"eval examples (--max-examples eval=N)")
    for i, (name, share) in enumerate(phases):  # the first phase pays for the initial prompt too
        left = share * cap - (initial if i == 0 else 0)
        if left < least:
            raise ConfigError(f"--scorer-calls-per-task {cap}: the {name} phase gets {share:.0%} of it"
                              f"{', less the initial prompt' if i == 0 else ''}: {max(0, int(left))} requests, "
                              f"which buys no proposal on {task} ({how}); give more, or another share "
                              f"(--method-option instruction_share=...)")


def plan(spec: RunSpec, tasks: list[Task] | None = None) -> dict:
    """Planned scorer and optimizer calls, and upper bounds on tokens and cost, for a run.

    Calls are upper bounds (cache hits, racing and early stops make runs cheaper); tokens
    are bounded from the configured maxima (the scorer's, second round's, optimizer's and
    judge's ``max_tokens``, resample rounds) and from the longest prompt each role can be
    sent (``_bounds``), so every figure a run spends is at most its planned figure."""
    method = method_class(spec.method)
    options, cfg = method.parse_options(spec.method_options), method.configured(spec.config)
    cap = cfg.budget.scorer_calls_per_task
    totals = {"scorer_calls": 0, "optimizer_calls": 0, "optimizer_samples": 0,
              "scorer_tokens": [0, 0], "optimizer_tokens": [0, 0]}
    per_task = []
    for task in tasks if tasks is not None else load_tasks(spec.tasks):
        method.check_task(cfg, options, task)
        second, judge = scoring_requests(task, build_prompt_format(spec), spec.scoring.second_round)
        n_eval, n_test, n_train = (len(task.split(s)) for s in ("eval", "test", "train"))
        steps = method.planned_steps(cfg, options, task)
        if cap is not None and steps:
            check_search_budget(cap, cfg, method.phase_shares(options), task.id, n_eval, second + judge)
        step = method.planned_step(cfg, options, min(cfg.opt_batch_size, n_train), n_eval)
        search = (n_eval + steps * step.examples) * (second + judge)
        if cap is not None:
            search = min(search, cap)
        references = 2 if task.human_instruction else 0  # the human instruction, alone and with the final's demos
        test = (method.planned_test_prompts(cfg, options, task) + references) * n_test * (second + judge)
        judge_calls = (search + test) * judge // (second + judge)
        scorer_calls, opt_calls = search + test - judge_calls, steps * step.optimizer_requests
        samples = steps * step.optimizer_samples
        bound = _bounds(spec, task)
        worst = bound["second"] if second == 2 else bound["first"]  # the longer of a scorer call's two kinds
        totals["scorer_tokens"][0] += scorer_calls * max(bound["first"][0], worst[0])
        totals["scorer_tokens"][1] += scorer_calls * max(bound["first"][1], worst[1])
        totals["optimizer_tokens"][0] += opt_calls * bound["optimizer"][0]
        totals["optimizer_tokens"][1] += samples * bound["optimizer"][1]
        if judge_calls:
            totals["judge_calls"] = totals.get("judge_calls", 0) + judge_calls
            tokens = totals.setdefault("judge_tokens", [0, 0])
            tokens[0] += judge_calls * bound["judge"][0]
            tokens[1] += judge_calls * bound["judge"][1]
        totals["scorer_calls"] += scorer_calls
        totals["optimizer_calls"] += opt_calls
        totals["optimizer_samples"] += samples
        per_task.append({"task": task.id, "steps": steps, "scorer_calls": scorer_calls, "optimizer_calls": opt_calls})
    priced = [(spec.scorer, totals["scorer_tokens"]), (spec.optimizer, totals["optimizer_tokens"])]
    if "judge_tokens" in totals:
        priced.append((spec.judge_model, totals["judge_tokens"]))
    cost = sum((tok[0] * (role.price_prompt or 0) + tok[1] * (role.price_completion or 0)) / 1e6 for role, tok in priced)
    note = ("upper bounds: calls as if nothing were cached or stopped early, tokens from the configured maxima "
            "(tokens counted as bytes, at most); real runs spend less")
    if cfg.selection == "race":
        note += "; with selection=race candidates significantly worse than a step's leader stop early"
    return {"method": spec.method, "tasks": per_task, **totals, "estimated_cost_usd": round(cost, 4), "note": note}


LONG_RUN_S = 3600
PROBE_TOKENS = 32


async def estimate_time(spec: RunSpec, planned: dict, evaluator: Evaluator, optimizer_llm: LLM, task: Task) -> dict:
    """Wall time of a plan on this machine. Models that run in process are timed now on a
    few requests (outside the cache and the usage counts); an endpoint's speed is known
    only once the run is going (the progress view's ETA uses it). ``evaluator``: the run's
    (it renders the requests timed; nothing is scored)."""
    out: dict = {"estimated_wall_s": None}
    seconds, timed, scorer_llm = 0.0, [], evaluator.scorer
    if scorer_llm.in_process:
        n = min(2, len(task.split("eval")))
        requests = evaluator.first_requests(task, method_class(spec.method).initial_prompt_for(spec.config, task), "eval", range(n))
        per_request = sum([await scorer_llm.time_request(r) for r in requests]) / max(1, n)
        seconds += per_request * planned["scorer_calls"]
        timed.append(f"scorer {per_request:.2f} s a request")
    if optimizer_llm.in_process:
        probe = Request.chat("Write one short instruction for a language model.", temperature=0.0,
                             max_tokens=PROBE_TOKENS)
        per_token = await optimizer_llm.time_request(probe) / PROBE_TOKENS
        seconds += per_token * planned["optimizer_tokens"][1]
        timed.append(f"optimizer {1 / per_token:.0f} tokens/s")
    if not timed:
        out["timing"] = "endpoints: timed once the run is going (see the progress view's ETA)"
        return out
    out["estimated_wall_s"] = round(seconds)
    out["timing"] = ", ".join(timed) + (" (timed on this machine; endpoints not included)"
                                        if not (scorer_llm.in_process and optimizer_llm.in_process) else " (timed on this machine)")
    if seconds > LONG_RUN_S:
        out["hint"] = (f"about {format_duration(seconds)}: to shorten it, race candidates (--selection race"
                       f"{', the default' if spec.config.selection == 'race' else ''}), cap each task's search "
                       "(--scorer-calls-per-task N), or score fewer examples (--max-examples eval=N --max-examples test=N)")
    if unpriced_cap(spec.config.budget.max_cost, {"optimizer": spec.optimizer, "scorer": spec.scorer, "judge": spec.judge}):
        free = (f"--max-cost {spec.config.budget.max_cost:g} is ignored: the models run in this process and cost "
                f"nothing (cap their calls instead: --max-scorer-calls N, --scorer-calls-per-task N)")
        out["hint"] = f"{out['hint']}\n{free}" if out.get("hint") else free
    return out


def format_duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


async def plan_with_time(spec: RunSpec, tasks: list[Task] | None = None) -> dict:
    """``plan`` plus the wall-time estimate (the dry run's answer)."""
    tasks = tasks if tasks is not None else load_tasks(spec.tasks)
    planned = plan(spec, tasks)
    scorer_llm, optimizer_llm = build_model(spec.scorer, None), build_model(spec.optimizer, None)
    try:
        return planned | await estimate_time(spec, planned, build_evaluator(spec, scorer_llm), optimizer_llm, tasks[0])
    finally:
        await scorer_llm.aclose()
        await optimizer_llm.aclose()
