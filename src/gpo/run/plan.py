"""What a run will spend, before it runs: calls and tokens as upper bounds (``plan``), and the
wall time on this machine (``estimate_time``, timed on a few requests). Planning needs no
models and no search: each method declares its steps from its config and options."""

from __future__ import annotations

from dataclasses import dataclass

from gpo.config import SIZES, ConfigError
from gpo.llm import LLM, Request
from gpo.llm.resolve import SMALL_PARAMETERS
from gpo.methods import method_class
from gpo.run.build import build_prompt_format, load_tasks, run_config
from gpo.scoring.evaluate import Evaluator, scoring_requests
from gpo.scoring.headroom import SAMPLE, probe_prompts
from gpo.scoring.render import render
from gpo.run.sources import unpriced_cap
from gpo.run.spec import RunSpec
from gpo.engine.adoption import FINALISTS
from gpo.engine.merge import SHOWN as MERGE_SHOWN
from gpo.tasks import Task
from gpo.tasks.task import hold_out
from gpo.names import DATA_SPLITS, HOLDOUT


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
    if cfg.merge:  # a merge's meta-prompt: two prompts, and SHOWN examples each wins
        shown = max(shown, 2 * MERGE_SHOWN + 2)
    optimizer_prompt = (META_PROMPT_BYTES + shown * (longest + scoring.max_tokens + len(instruction))
                        + cfg.optimizer_max_tokens)
    judge_prompt = len((spec.tasks.judge_rubric or "").encode("utf-8")) + longest + scoring.max_tokens + 4 * MESSAGE_TOKENS
    return {"first": (first, scoring.max_tokens), "second": (second, scoring.second_round_max_tokens),
            "optimizer": (optimizer_prompt, cfg.optimizer_max_tokens), "judge": (judge_prompt, scoring.judge_max_tokens)}


def probe_requests(cfg, method, task: Task) -> int:
    """The headroom check's examples scored: each probe prompt on its sample of eval, and a probe
    that beats the initial prompt on all of eval (it is where the search starts)."""
    n_eval = len(task.split("eval"))
    prompts = probe_prompts(task, method.initial_prompt_for(cfg, task), cfg.seed)
    return len(prompts) * min(SAMPLE, n_eval) + n_eval


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


def _probing(cfg, method, task: Task, steps: int, per: int) -> tuple[int, int]:
    """The headroom check's requests (outside the search budget), and how many of them a run never
    sends twice: the initial prompt's and its start's sample, scored again on all of eval."""
    if not (cfg.probe and steps and task.program is None):
        return 0, 0
    return probe_requests(cfg, method, task) * per, 2 * min(SAMPLE, len(task.split("eval"))) * per


def _reached(cap: int | None, steps: int, step, n_eval: int, per: int) -> int:
    """The steps a capped search is expected to reach: its cap spent on candidates scored on all of
    eval (racing cannot stop candidates that tie, as they do where no prompt moves the scorer)."""
    return steps if cap is None else min(steps, -(-max(0, cap - n_eval * per) // max(1, step.examples * per)))


def plan(spec: RunSpec, tasks: list[Task] | None = None) -> dict:
    """Planned scorer and optimizer calls, and upper bounds on tokens and cost, for a run.

    Calls are upper bounds (cache hits, racing and early stops make runs cheaper); tokens
    are bounded from the configured maxima (the scorer's, second round's, optimizer's and
    judge's ``max_tokens``, resample rounds) and from the longest prompt each role can be
    sent (``_bounds``), so every figure a run spends is at most its planned figure."""
    method = method_class(spec.method)
    options, cfg = method.parse_options(spec.method_options), method.configured(spec.config)
    cap = cfg.budget.scorer_calls_per_task
    totals = {"scorer_calls": 0, "optimizer_calls": 0, "optimizer_samples": 0, "scorer_tokens": [0, 0],
              "optimizer_tokens": [0, 0], "expected_scorer_calls": 0, "expected_optimizer_calls": 0,
              "expected_optimizer_samples": 0}
    per_task, loaded = [], tasks if tasks is not None else load_tasks(spec.tasks)
    for task in (hold_out(t, cfg.final_holdout, cfg.seed) for t in loaded):  # with the eval its search sees
        method.check_task(cfg, options, task)
        second, judge = scoring_requests(task, build_prompt_format(spec), spec.scoring.second_round)
        n_eval, n_test, n_train = (len(task.split(s)) for s in ("eval", "test", "train"))
        steps = method.planned_steps(cfg, options, task)
        if cap is not None and steps:
            check_search_budget(cap, cfg, method.phase_shares(options), task.id, n_eval, second + judge)
        step = method.planned_step(cfg, options, min(cfg.opt_batch_size, n_train), n_eval)
        search = (n_eval + steps * step.examples + cfg.merge * n_eval) * (second + judge)
        search = search if cap is None else min(search, cap)
        probing, repeated = _probing(cfg, method, task, steps, second + judge)
        search += probing
        # beside the final prompt's: the human instruction alone and with its demos, and the choice on a holdout
        extra = (2 if task.human_instruction else 0) * n_test + (1 + FINALISTS) * len(task.splits.get(HOLDOUT) or ())
        test = (method.planned_test_prompts(cfg, options, task) * n_test + extra) * (second + judge)
        judge_calls = (search + test) * judge // (second + judge)
        asked = steps * step.optimizer_samples + cfg.merge  # each sample may be asked for again, one by one
        scorer_calls, samples = search + test - judge_calls, asked * (1 + cfg.repair)
        opt_calls = steps * step.optimizer_requests + cfg.merge + asked * cfg.repair
        reached = _reached(cap, steps, step, n_eval, second + judge)
        totals["expected_optimizer_samples"] += reached * step.optimizer_samples
        totals["expected_optimizer_calls"] += reached * step.optimizer_requests
        totals["expected_scorer_calls"] += scorer_calls - repeated
        bound = _bounds(spec, task)
        worst = bound["second"] if second == 2 else bound["first"]  # the longer of a scorer call's two kinds
        totals["scorer_tokens"] = [t + scorer_calls * max(a, b) for t, a, b in zip(totals["scorer_tokens"], bound["first"], worst)]
        totals["optimizer_tokens"] = [t + n * b for t, n, b in zip(totals["optimizer_tokens"], (opt_calls, samples),
                                                                   bound["optimizer"])]
        if judge_calls:
            totals["judge_calls"] = totals.get("judge_calls", 0) + judge_calls
            totals["judge_tokens"] = [t + judge_calls * b for t, b in zip(totals.get("judge_tokens", (0, 0)), bound["judge"])]
        totals["scorer_calls"] += scorer_calls
        totals["optimizer_calls"] += opt_calls
        totals["optimizer_samples"] += samples
        per_task.append({"task": task.id, "steps": steps, "scorer_calls": scorer_calls, "optimizer_calls": opt_calls,
                         **({"left_out": dict(task.left_out)} if task.left_out else {})})
    priced = [(spec.scorer, totals["scorer_tokens"]), (spec.optimizer, totals["optimizer_tokens"])]
    if "judge_tokens" in totals:
        priced.append((spec.judge_model, totals["judge_tokens"]))
    cost = sum((tok[0] * (role.price_prompt or 0) + tok[1] * (role.price_completion or 0)) / 1e6 for role, tok in priced)
    note = ("upper bounds: calls as if nothing were cached or stopped early, tokens from the configured maxima "
            "(tokens counted as bytes, at most); real runs spend less" + "; with selection=race candidates "
            "significantly worse than a step's leader stop early" * (cfg.selection == "race"))
    return {"method": spec.method, "size": spec.size, "tasks": per_task, **totals,
            **({"replies": replies(spec)} if totals["optimizer_samples"] else {}),
            "estimated_cost_usd": round(cost, 4), "note": note, **left_out_note(per_task, spec.size)}


def replies(spec: RunSpec) -> str:
    """How the optimizer is asked for new prompts, and its replies held and repaired, in one line."""
    cfg, run = spec.config, run_config(spec)
    if run.optimizer_size == "small":
        size = "the short meta-prompt for a small optimizer" + (
            "" if cfg.optimizer_size else f" (default for the embedded model and a GGUF of under "
                                            f"{SMALL_PARAMETERS / 1e9:g}B parameters; --optimizer-size large: the paper's)")
    else:
        size = "the paper's meta-prompt"
    if cfg.constrained_replies is None:
        how = ("replies constrained to one tagged prompt (default for llama.cpp models in process with the paper's "
               "meta-prompt; --no-constrained-replies to free them)" if run.constrained_replies else
               "free replies (--constrained-replies to hold them to one tagged prompt)")
    else:
        how = "replies constrained to one tagged prompt" if cfg.constrained_replies else "free replies"
    again = (f"a reply that is no prompt is asked for again {cfg.repair} time{'s' * (cfg.repair > 1)}, told why "
             "(--repair 0: never)" if cfg.repair else "unusable replies are not asked for again")
    return f"optimizer: {size}, {how}; {again}"


def left_out_note(per_task: list[dict], size: str | None) -> dict:
    """What the caps left unused, in one line (empty where they left nothing)."""
    parts = [f"{t['task']}: " + ", ".join(f"{split} {n:,}" for split, n in t["left_out"].items())
             for t in per_task if t.get("left_out")]
    if not parts:
        return {}
    why, more = ((f"the {size} size's caps", "--budget heavy or full, or --max-examples SPLIT=N") if size in SIZES
                 else ("the run's split caps", "--max-examples SPLIT=N"))
    return {"unused": f"examples left unused by {why} (each split's first examples as loaded are scored; your "
                      f"own data file's rows are shuffled with the seed first): {'; '.join(parts)}; use more with {more}"}


LONG_RUN_S = 3600
PROBE_TOKENS = 32
COUNTING = "Count from 1 to 100 in words, separated by commas."  # a reply that runs to PROBE_TOKENS
BYTES_PER_TOKEN = 4  # English text, for the expected size of a prompt bounded in bytes


@dataclass
class Rates:
    """One in-process model's speed on this machine, timed outside the cache and the usage counts:
    seconds per prompt token read and per token generated (a warm model; a request's prompt is
    read once, then its reply generated token by token)."""

    prompt: float
    token: float

    def seconds(self, prompt_tokens: float, reply_tokens: float) -> float:
        return self.prompt * prompt_tokens + self.token * reply_tokens


async def time_model(llm: LLM) -> Rates:
    """``llm``'s rates. The first request warms the model up and is not counted."""
    await llm.time_request(Request.chat("Hello.", temperature=0.0, max_tokens=1))
    read, (one,) = await llm.time_request(Request.chat(COUNTING + " Begin.", temperature=0.0, max_tokens=1))
    spent, (counted,) = await llm.time_request(Request.chat(COUNTING, temperature=0.0, max_tokens=PROBE_TOKENS))
    return Rates(prompt=read / max(1, one.prompt_tokens), token=spent / max(1, counted.completion_tokens))


@dataclass
class Timing:
    """What ``measure`` found on this machine: the in-process models' rates (None: an endpoint), and
    real scorer requests of the kinds of prompt a search scores, each round's mean prompt tokens,
    reply tokens and seconds (``second``: None where the task has no second round)."""

    scorer: Rates | None = None
    first: tuple[float, float, float] | None = None  # (prompt tokens, reply tokens, seconds), means
    second: tuple[float, float, float] | None = None
    optimizer: Rates | None = None


async def _sent(llm: LLM, requests: list[Request]) -> tuple[list, tuple[float, float, float] | None]:
    """Each request sent once (outside the cache): its sample, and the mean prompt tokens, reply tokens
    and seconds of them all."""
    timed = [(seconds, samples[0]) for seconds, samples in [await llm.time_request(r) for r in requests]]
    if not timed:
        return [], None
    n = len(timed)
    return [s for _, s in timed], (sum(s.prompt_tokens for _, s in timed) / n, sum(s.completion_tokens for _, s in timed) / n,
                                   sum(t for t, _ in timed) / n)


def _mean(rows: list[tuple[float, float, float]]) -> tuple[float, float, float] | None:
    return tuple(sum(column) / len(rows) for column in zip(*rows)) if rows else None  # type: ignore[return-value]


async def _rounds(evaluator: Evaluator, task: Task, prompt: str, n: int) -> tuple:
    """``prompt``'s first ``n`` eval requests sent once, each round's means (``_sent``)."""
    chosen = range(min(n, len(task.split("eval"))))
    firsts = evaluator.first_requests(task, prompt, "eval", chosen)
    replies, first = await _sent(evaluator.scorer, firsts)
    if not (replies and evaluator.uses_second_round(task)):
        return first, None
    examples = task.split("eval")
    seconds = [evaluator.second_request(task, examples[i], r, s.text) for i, r, s in zip(chosen, firsts, replies)]
    return first, (await _sent(evaluator.scorer, seconds))[1]


async def measure(spec: RunSpec, evaluator: Evaluator, optimizer_llm: LLM, task: Task, n: int = 1) -> Timing:
    """Time the in-process models, and send each probe prompt's first ``n`` eval requests (both
    rounds) outside the cache and the usage counts (``evaluator``: the run's; it renders them)."""
    timing = Timing()
    if evaluator.scorer.in_process:
        timing.scorer = await time_model(evaluator.scorer)
        initial = method_class(spec.method).initial_prompt_for(spec.config, task)
        # the kinds of prompt a search scores (a small model answers them very differently: the initial
        # prompt may ramble to the token limit where one with demonstrations answers in a word)
        sent = [await _rounds(evaluator, task, prompt, n) for prompt in probe_prompts(task, initial, spec.config.seed).values()]
        timing.first, timing.second = (_mean([r[i] for r in sent if r[i]]) for i in (0, 1))
    if optimizer_llm.in_process:
        timing.optimizer = await time_model(optimizer_llm)
    return timing


def wall(spec: RunSpec, planned: dict, task: Task, timing: Timing) -> tuple[float, float]:
    """(expected, upper bound) seconds of a plan's work, from what ``measure`` timed.

    The bound: every planned call (``plan``'s upper bounds) with its longest prompt (tokens
    counted as bytes) and a reply of the full token limit. The expectation: the same scorer calls
    but those a run never sends twice (a capped search spends its cap), each round taking as long
    as the probe prompts' real requests took (the initial prompt, the empty one, an answer-format
    instruction, the initial prompt with demonstrations: the kinds a search scores); the optimizer
    calls of the steps a capped search is expected to reach (``plan``), their prompts a quarter of
    the bound (about 4 bytes a token) and their replies the full token limit (small optimizers
    fill it)."""
    bound, expected, upper = _bounds(spec, task), 0.0, 0.0
    if timing.scorer:
        calls, rates = planned.get("expected_scorer_calls", planned["scorer_calls"]), timing.scorer
        rounds = [r for r in (timing.first, timing.second) if r]
        expected += calls * (sum(seconds for _, _, seconds in rounds) / len(rounds) if rounds
                             else rates.seconds(bound["first"][0] / BYTES_PER_TOKEN, bound["first"][1]))
        most = bound["second"] if timing.second else bound["first"]
        upper += planned["scorer_calls"] * rates.seconds(max(most[0], bound["first"][0]), max(most[1], bound["first"][1]))
    if timing.optimizer:
        rates, (prompt, most) = timing.optimizer, bound["optimizer"]
        calls, samples = planned.get("expected_optimizer_calls", 0), planned.get("expected_optimizer_samples", 0)
        expected += calls * rates.prompt * prompt / BYTES_PER_TOKEN + samples * rates.token * most
        upper += planned["optimizer_calls"] * rates.prompt * prompt + planned["optimizer_samples"] * rates.token * most
        if planned.get("judge_calls") and spec.judge is None:  # the judge is the optimizer's model
            judge_prompt, judge_most = bound["judge"]
            expected += planned["judge_calls"] * rates.seconds(judge_prompt / BYTES_PER_TOKEN, judge_most)
            upper += planned["judge_calls"] * rates.seconds(judge_prompt, judge_most)
    return expected, upper


async def estimate_time(spec: RunSpec, planned: dict, evaluator: Evaluator, optimizer_llm: LLM, task: Task) -> dict:
    """Wall time of a plan's work on this machine (the search and the test scoring, not loading the
    models): ``estimated_wall_s``, what to expect, and ``upper_wall_s``, a bound it should not pass
    (``wall``). Models that run in process are timed now on a few requests (``measure``); an
    endpoint's speed is known only once the run is going (the progress view's ETA uses it)."""
    out: dict = {"estimated_wall_s": None, "upper_wall_s": None}
    timing = await measure(spec, evaluator, optimizer_llm, task)
    replies = " and ".join(f"{r[1]:.0f}" for r in (timing.first, timing.second) if r)
    timed = ([f"scorer {1 / timing.scorer.token:.0f} tokens/s, replies of {replies or '?'} tokens (the probe prompts')"]
             if timing.scorer else []) + ([f"optimizer {1 / timing.optimizer.token:.0f} tokens/s"] if timing.optimizer else [])
    if not timed:
        out["timing"] = "endpoints: timed once the run is going (see the progress view's ETA)"
        return out
    expected, upper = wall(spec, planned, task, timing)
    out.update(estimated_wall_s=round(expected), upper_wall_s=round(upper))
    out["timing"] = ", ".join(timed) + (" (timed on this machine; endpoints not included)"
                                        if not (timing.scorer and timing.optimizer) else " (timed on this machine)")
    if expected > LONG_RUN_S:
        out["hint"] = (f"about {format_duration(expected)}: to shorten it, choose a smaller size (--budget light, or "
                       f"a time such as --budget 20m), cap each task's search (--scorer-calls-per-task N), or score "
                       f"fewer examples (--max-examples eval=N --max-examples test=N)")
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
