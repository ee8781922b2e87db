"""How a search ends: the final prompt adopted (or the initial one kept) and both set side by side.

The final prompt is the best on eval by ``fitness`` (its score less any length penalty); with
``adopt='significant'`` only if it beats the initial prompt significantly there
(``significant+constant``: and the best constant answer), else the initial prompt stays. With
``adopt='lcb'`` it is the prompt whose paired gain over the initial prompt has the highest lower
bound, each bound Bonferroni-corrected for the prompts the search scored on eval (a simultaneous
bound for every candidate, which is what picking the highest needs; Holm's procedure orders tests
and gives no such bounds), adopted only if that bound is above 0. With ``final_holdout`` the
choice is made the same way on the held-out share of eval, which the search never scored, among
the initial prompt and the ``FINALISTS`` best on eval (the winner's curse stays in eval). Both
prompts are compared on eval and, except after a run-budget stop, on test, beside the best
constant answer and the task's human instruction where it has them.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

from gpo.config import GPOConfig
from gpo.engine.proposals import usable_proposals
from gpo.engine.events import Event
from gpo.engine.hooks import Hooks
from gpo.engine.state import SearchState, TaskResult, stable_seed
from gpo.engine.trajectory import Point
from gpo.prompts.length import cost_per_1000_calls, length_cost, prompt_tokens
from gpo.llm.meter import BudgetSpent
from gpo.scoring.constant import beats_constant, measure
from gpo.scoring.evaluate import Evaluator
from gpo.scoring.reference import human_reference
from gpo.scoring.stats import Comparison, wilson
from gpo.tasks.task import Task


async def finish(evaluator: Evaluator, hooks: Hooks, cfg: GPOConfig, method: str, task: Task, state: SearchState,
                 total: int, stopped: str | None, ended: str | None = None) -> TaskResult:
    """The final prompt is the best on eval (with ``adopt='significant'``: only if it beats
    the initial prompt significantly there, else the initial prompt stays). Both are compared
    on eval and, except after a run-budget stop, which spends nothing more, on test."""
    initial = state.trajectory.points[0]
    chosen = await choose(evaluator, cfg, task, state)
    final, not_adopted = chosen.final, chosen.not_adopted
    eval_cmp = await compare(evaluator, hooks, cfg, task, initial.prompt, final.prompt, "eval")
    yardsticks = {"eval": await yardstick(evaluator, cfg, task, initial.prompt, final.prompt, "eval")}
    try:  # read from the Evaluator (or, after a resume, the response cache): it pays for nothing
        curve, requests_to_gain = await gain_curve(evaluator, cfg, task, state)
    except BudgetSpent:
        curve = requests_to_gain = None
    test_cmp = init_test = final_test = human = None
    if not stopped:
        try:
            test_cmp = await compare(evaluator, hooks, cfg, task, initial.prompt, final.prompt, "test", save=True)
            init_test, final_test = test_cmp.mean_a, test_cmp.mean_b
            yardsticks["test"] = await yardstick(evaluator, cfg, task, initial.prompt, final.prompt, "test")
            human = await human_reference(evaluator, task, final.prompt, "test", cfg.race_alpha,
                                          stable_seed(cfg.seed, task.id, "test", "human"))
        except BudgetSpent as err:  # the search fitted the run budget; test scoring does not
            stopped = f"{err}, before test scoring"
            hooks.event(Event.BUDGET_STOP, task=task.id, reason=stopped, step=state.next_step)
    result = TaskResult(
        dataset=task.dataset, task=task.name, initial_prompt=initial.prompt, initial_eval=initial.score,
        final_prompt=final.prompt, final_eval=final.score, initial_test=init_test,
        final_test=final_test, steps_done=state.next_step, total_steps=total, stopped=stopped,
        method=method, search_ended=ended, scorer_requests=state.scorer_requests,
        scorer_tokens=state.scorer_tokens, optimizer_samples=state.optimizer_samples,
        optimizer_tokens=state.optimizer_tokens, selection=cfg.selection, adopt=cfg.adopt, objective=cfg.objective,
        eval_comparison=eval_cmp.as_dict(), test_comparison=test_cmp.as_dict() if test_cmp else None,
        not_adopted=not_adopted, constant=yardsticks if yardsticks["eval"] else None, human=human, curve=curve,
        chosen_on=chosen.split, adoption=chosen.details, final_tokens=prompt_tokens(final.prompt),
        cost_per_1000_calls=cost_per_1000_calls(final.prompt, getattr(evaluator.scorer.pricing, "prompt", None)),
        requests_to_gain=requests_to_gain, headroom=state.headroom, started_from=state.started_from,
        proposals=sum(len(s.candidates) for s in state.trajectory.steps),
        usable_proposals=sum(usable_proposals(s.candidates) for s in state.trajectory.steps),
        repaired_proposals=sum(usable_proposals([c for c in s.candidates if c.first_rejected])
                               for s in state.trajectory.steps),
    )
    state.done = not stopped
    state.result = result.as_dict()
    hooks.save_state(task, state.to_dict())
    hooks.event(Event.TASK_DONE, **{**result.as_dict(), "task": task.id})
    return result

FINALISTS = 3  # with a holdout: the prompts best on eval that it chooses among, beside the initial one


@dataclass
class Choice:
    final: Point  # the prompt adopted (the initial one where none was)
    not_adopted: dict | None  # the best candidate where the rule kept the initial prompt
    split: str  # where the choice was made: eval, or holdout (``final_holdout``)
    details: dict  # the rule, the prompts it chose among, and for lcb the chosen bound and its correction


def fit(cfg: GPOConfig, prompt: str, figure: float) -> float:
    """A figure of ``prompt`` (a score, a bound) less its length's cost (``length_penalty``)."""
    return figure - length_cost(prompt, cfg.length_penalty, cfg.max_prompt_tokens)


def best_point(cfg: GPOConfig, points: list[Point]) -> Point:
    """The trajectory's best by fitness (the eval score less any length penalty); the first of equals."""
    return max(points, key=lambda p: fit(cfg, p.prompt, p.score))


def finalists(cfg: GPOConfig, state: SearchState, holdout: bool) -> list[str]:
    """The prompts the adoption rule chooses among, the initial one aside: the trajectory's best
    (by fitness); with lcb every prompt scored on all of eval; with a holdout the ``FINALISTS``
    best on eval (for lcb, all of them ranked, capped the same way)."""
    initial = state.trajectory.points[0].prompt
    ranked = sorted((p for p in state.scores if p != initial), key=lambda p: -fit(cfg, p, state.scores[p]))
    if holdout:
        return ranked[:FINALISTS]
    if cfg.adopt == "lcb":
        return ranked
    best = best_point(cfg, state.trajectory.points).prompt
    return [] if best == initial else [best]


async def choose(evaluator: Evaluator, cfg: GPOConfig, task: Task, state: SearchState) -> Choice:
    """The final prompt by the adoption rule (see the module docstring). Where a run budget
    cannot pay for scoring the holdout, the choice falls back to eval, and says so."""
    if cfg.final_holdout and task.splits.get("holdout"):
        try:
            return await _choose(evaluator, cfg, task, state, "holdout")
        except BudgetSpent as err:
            fallback = await _choose(evaluator, cfg, task, state, "eval")
            fallback.details["holdout_unscored"] = str(err)
            return fallback
    return await _choose(evaluator, cfg, task, state, "eval")


async def _choose(evaluator: Evaluator, cfg: GPOConfig, task: Task, state: SearchState, split: str) -> Choice:
    initial = state.trajectory.points[0]
    pool = finalists(cfg, state, split == "holdout")
    details = {"rule": cfg.adopt, "split": split, "finalists": len(pool)}
    if not pool:
        return Choice(initial, None, split, details)
    init_ev, *evs = await evaluator.evaluate_many(task, [initial.prompt, *pool], split)
    seed = stable_seed(cfg.seed, task.id, split)
    if cfg.adopt == "lcb":
        alpha = cfg.race_alpha / len(pool)  # Bonferroni: every bound holds together at 1 - race_alpha
        cmps = [ev.versus(init_ev, alpha=alpha, seed=seed) for ev in evs]
        i = max(range(len(pool)), key=lambda j: fit(cfg, pool[j], cmps[j].low))
        cmp, against = cmps[i], None
        details |= {"correction": "bonferroni", "alpha": alpha, "low": cmp.low}
        ok = cmp.low > 0
    else:
        i = max(range(len(pool)), key=lambda j: fit(cfg, pool[j], evs[j].score))
        cmp = evs[i].versus(init_ev, alpha=cfg.race_alpha, seed=seed)
        against = (await yardstick(evaluator, cfg, task, initial.prompt, pool[i], split) or {}).get("final")
        ok = cfg.adopt == "best" or (cmp.significant and cmp.diff > 0 and
                                     (cfg.adopt != "significant+constant" or beats_constant(against)))
    candidate = Point(pool[i], state.scores[pool[i]], -1, -1)
    found = next((p for p in state.trajectory.points if p.prompt == pool[i]), candidate)
    if ok:
        return Choice(found, None, split, details)
    missed = {"prompt": pool[i], "eval": state.scores[pool[i]], "comparison": cmp.as_dict(),
              "constant": against}
    return Choice(initial, missed, split, details)


async def compare(evaluator: Evaluator, hooks: Hooks, cfg: GPOConfig, task: Task, initial: str, final: str, split: str,
                  save: bool = False) -> Comparison:
    """Final against initial prompt on the whole split, paired example by example.
    (Eval scorings are already in the Evaluator, or in the response cache after a resume.)"""
    init_ev, final_ev = await evaluator.evaluate_many(task, [initial, final], split)
    if save:
        hooks.save_evaluation(task, f"{split}/initial", init_ev)
        hooks.save_evaluation(task, f"{split}/final", final_ev)
    return final_ev.versus(init_ev, alpha=cfg.race_alpha, seed=stable_seed(cfg.seed, task.id, split))

async def yardstick(evaluator: Evaluator, cfg: GPOConfig, task: Task, initial: str, final: str, split: str) -> dict | None:
    """Both prompts on the whole split against its best constant answer (None where the task
    has no closed answer set); their scorings are already in the Evaluator, so it sends nothing."""
    evaluations = await evaluator.evaluate_many(task, [initial, final], split)
    seed = stable_seed(cfg.seed, task.id, split, "constant")
    measured = [measure(task, ev, cfg.extraction, cfg.race_alpha, seed, ev.objective) for ev in evaluations]
    return None if measured[0] is None else dict(zip(("initial", "final"), measured))


async def gain_curve(evaluator: Evaluator, cfg: GPOConfig, task: Task, state: SearchState) -> tuple[list[dict], int | None]:
    """After the initial scoring and after each step: the scorer requests the search had spent,
    the best eval score so far with its 95% interval, and that prompt against the initial one
    (paired); and the requests spent when the gain first became significant (None: never)."""
    points, steps = state.trajectory.points, state.trajectory.steps
    begun = sum(1 for p in points if p.step == -1)  # the initial prompt, and the probe it started from
    marks = [(state.start_requests, begun)] + [(s.scorer_requests, i + 1 + begun) for i, s in enumerate(steps)
                                               if s.scorer_requests is not None]
    initial = await evaluator.evaluate(task, points[0].prompt, "eval")
    curve, first = [], None
    for requests, upto in marks:
        best = max(points[:upto], key=lambda p: p.score)  # the first of equals, as the trajectory's best
        ev = initial if best.prompt == points[0].prompt else await evaluator.evaluate(task, best.prompt, "eval")
        gain = ev.versus(initial, alpha=cfg.race_alpha, seed=stable_seed(cfg.seed, task.id, "curve"))
        low, high = score_interval(ev, cfg.race_alpha)
        curve.append({"requests": requests, "best": ev.score, "low": low, "high": high, "gain": gain.as_dict()})
        if first is None and gain.significant and gain.diff > 0:
            first = requests
    return curve, first


def score_interval(ev, alpha: float) -> tuple[float | None, float | None]:
    """A split's score with its interval: Wilson's for right/wrong scores, the normal one for graded
    scores' mean; none for a figure of the whole split (macro-F1)."""
    scores = [r.score for r in ev.records]
    if ev.objective.split_level or not scores:
        return None, None
    mean, n = sum(scores) / len(scores), len(scores)
    if all(s in (0, 1) for s in scores):
        low, high = wilson(int(sum(scores)), n, alpha)
    else:
        half = NormalDist().inv_cdf(1 - alpha / 2) * (sum((s - mean) ** 2 for s in scores) / max(1, n - 1) / n) ** 0.5
        low, high = mean - half, mean + half
    return max(0.0, min(low, mean)), min(1.0, max(high, mean))  # the rounding of 0 or 1 stays inside
