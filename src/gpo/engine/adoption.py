"""How a search ends: the final prompt adopted (or the initial one kept) and both set side by side.

The final prompt is the best on eval; with ``adopt='significant'`` only if it beats the initial
prompt significantly there (``significant+constant``: and the best constant answer), else the
initial prompt stays. Both are compared on eval and, except after a run-budget stop, on test,
beside the best constant answer and the task's human instruction where it has them.
"""

from __future__ import annotations

from statistics import NormalDist

from gpo.config import GPOConfig
from gpo.engine.actions import usable_proposals
from gpo.engine.events import Event
from gpo.engine.hooks import Hooks
from gpo.engine.state import SearchState, TaskResult, stable_seed
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
    best, initial = state.trajectory.best(), state.trajectory.points[0]
    eval_cmp = await compare(evaluator, hooks, cfg, task, initial.prompt, best.prompt, "eval")
    yardsticks = {"eval": await yardstick(evaluator, cfg, task, initial.prompt, best.prompt, "eval")}
    final, not_adopted = best, None
    against_constant = (yardsticks["eval"] or {}).get("final")  # None: no closed answer set
    if best.prompt != initial.prompt and cfg.adopt != "best":
        if not eval_cmp.significant or (cfg.adopt == "significant+constant" and not beats_constant(against_constant)):
            final, not_adopted = initial, {"prompt": best.prompt, "eval": best.score, "comparison": eval_cmp.as_dict(),
                                           "constant": against_constant}
            eval_cmp = await compare(evaluator, hooks, cfg, task, initial.prompt, initial.prompt, "eval")
            yardsticks["eval"] = await yardstick(evaluator, cfg, task, initial.prompt, initial.prompt, "eval")
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
        requests_to_gain=requests_to_gain, headroom=state.headroom, started_from=state.started_from,
        proposals=sum(len(s.candidates) for s in state.trajectory.steps),
        usable_proposals=sum(usable_proposals(s.candidates) for s in state.trajectory.steps),
    )
    state.done = not stopped
    state.result = result.as_dict()
    hooks.save_state(task, state.to_dict())
    hooks.event(Event.TASK_DONE, **{**result.as_dict(), "task": task.id})
    return result

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
