"""``gpo report``: a self-contained HTML page (charts inlined) plus the PNG charts.

Per task: eval score per step with every candidate as a point (those racing
stopped early at their partial mean), the word budget
against the measured edit distance of candidates, and the chosen prompt's
evolution as a word diff per step. The results table gives each gain with its
interval and p-value, and, on closed-answer tasks, the final prompt against the best
constant answer with both prompts' answer shares; the page names the selection and
adoption rules.
Then usage and cost.
"""

from __future__ import annotations

import base64
import difflib
import html
import json
from pathlib import Path

from gpo.engine.proposals import rejection_counts
from gpo.engine.events import Event, of, task_result
from gpo.engine.outcome import Outcome, outcome
from gpo.engine.state import TaskResult
from gpo.engine.trajectory import Candidate
from gpo.methods import method_class
from gpo.names import ROLES
from gpo.run.store import REPORT_FILE, read_events, read_spec
from gpo.scoring.objective import describe_classes
from gpo.scoring.demos import split_demos
from gpo.scoring.stats import Comparison


def _load_states(run_dir: Path) -> dict[str, dict]:
    states = {}
    for path in sorted((run_dir / "tasks").glob("*/state.json")):
        states[path.parent.name] = json.loads(path.read_text(encoding="utf-8"))
    return states


def _axes(height: float):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(7, height), dpi=110)


def _finish(fig, ax, path: Path, title: str, xlabel: str, ylabel: str) -> Path:
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _scores_chart(name: str, state: dict, out: Path) -> Path:
    traj = state["trajectory"]
    fig, ax = _axes(3.6)
    xs = [s["global_step"] + 1 for s in traj["steps"] for c in s["candidates"] if c.get("score") is not None]
    ys = [100 * c["score"] for s in traj["steps"] for c in s["candidates"] if c.get("score") is not None]
    ax.scatter(xs, ys, s=14, alpha=0.45, color="#7a8fb8", label="candidates (eval)")
    raced = [(s["global_step"] + 1, 100 * c["race_estimate"]) for s in traj["steps"] for c in s["candidates"]
             if c.get("race_estimate") is not None]
    if raced:
        ax.scatter(*zip(*raced), s=18, marker="x", alpha=0.6, color="#999999",
                   label="stopped by racing (mean on the examples scored)")
    scores = [100 * p["score"] for p in traj["points"]]
    ax.plot(range(len(scores)), scores, marker="o", color="#1f4e9c", label="chosen prompt (eval)")
    best = [max(scores[: i + 1]) for i in range(len(scores))]
    ax.plot(range(len(scores)), best, linestyle="--", color="#2a9d4b", label="best so far (eval)")
    tests = [(s["global_step"] + 1, 100 * s["test_score"]) for s in traj["steps"] if s.get("test_score") is not None]
    if tests:
        ax.plot(*zip(*tests), marker="s", color="#c0392b", label="chosen prompt (test)")
    return _finish(fig, ax, out / f"{name}-scores.png", f"{name}: scores per step", "step (0 = initial prompt)", "score (%)")


def _curve_chart(name: str, state: dict, out: Path) -> Path | None:
    """The best eval score so far, with its 95% interval, against the scorer requests spent."""
    curve = (state.get("result") or {}).get("curve")
    if not curve:
        return None
    fig, ax = _axes(3.2)
    xs, ys = [p["requests"] for p in curve], [100 * p["best"] for p in curve]
    if all(p["low"] is not None for p in curve):
        ax.fill_between(xs, [100 * p["low"] for p in curve], [100 * p["high"] for p in curve], step="post",
                        alpha=0.2, color="#2a9d4b", label="95% interval")
    ax.step(xs, ys, where="post", marker="o", color="#2a9d4b", label="best so far (eval)")
    gained = state["result"].get("requests_to_gain")
    if gained is not None:
        ax.axvline(gained, linestyle=":", color="#c0392b", label="first significant gain over the initial prompt")
    return _finish(fig, ax, out / f"{name}-curve.png", f"{name}: gain per scorer request", "scorer requests spent",
                   "score (%)")


def _budget_chart(name: str, state: dict, out: Path) -> Path | None:
    steps = state["trajectory"]["steps"]
    if not steps:
        return None
    fig, ax = _axes(3.2)
    budget = [(s["global_step"] + 1, s["step_size"]) for s in steps if s.get("step_size") is not None]
    if budget:
        ax.plot(*zip(*budget), marker="_", markersize=14, color="#8e44ad", label="word budget (step size)")
    xs = [s["global_step"] + 1 for s in steps for c in s["candidates"] if c.get("edit_distance") is not None]
    ys = [c["edit_distance"] for s in steps for c in s["candidates"] if c.get("edit_distance") is not None]
    ax.scatter(xs, ys, s=14, alpha=0.5, color="#e67e22", label="measured words changed (candidates)")
    return _finish(fig, ax, out / f"{name}-budget.png", f"{name}: edit budget vs measured edit distance", "step", "words")


def _demos_html(prompt: str) -> str:
    """A prompt's demonstrations (gpo.scoring.demos), folded under their count; '' for none."""
    demos = split_demos(prompt)[1]
    if not demos:
        return ""
    items = "".join(f"<li>{html.escape(d.input)}<br>→ {html.escape(d.target)}</li>" for d in demos)
    return f"<details><summary>{len(demos)} demonstrations</summary><ol>{items}</ol></details>"


def _prompt_html(prompt: str) -> str:
    return html.escape(split_demos(prompt)[0]) + _demos_html(prompt)


def _word_diff(a: str, b: str) -> str:
    aw, bw = a.split(), b.split()
    parts = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=aw, b=bw).get_opcodes():
        if op == "equal":
            parts.append(html.escape(" ".join(aw[i1:i2])))
        if op in ("delete", "replace"):
            parts.append(f"<del>{html.escape(' '.join(aw[i1:i2]))}</del>")
        if op in ("insert", "replace"):
            parts.append(f"<ins>{html.escape(' '.join(bw[j1:j2]))}</ins>")
    return " ".join(parts)


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.1f}"


def _gain(c: Comparison | None) -> str:
    """A comparison as text; not significant ones greyed and labelled so."""
    if c is None:
        return "-"
    style = "" if c.significant else " class='ns'"
    return f"<span{style}>{html.escape(c.describe())}</span>"


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


CSS = """
body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;color:#222;line-height:1.45}
h1{font-size:1.6em} h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.6em 0} td,th{border:1px solid #ddd;padding:.3em .6em;text-align:left;vertical-align:top}
img{max-width:100%;display:block;margin:.6em 0} del{background:#fbd5d5;text-decoration:line-through} ins{background:#d4f5d4;text-decoration:none}
.ns{color:#777} .prompt{font-family:ui-monospace,monospace;white-space:pre-wrap;background:#f6f8fa;padding:.5em;border-radius:4px}
"""


def _task_accounts(events: list[dict]) -> list[str]:
    """What each task's search paid for (the meter's account of it; cache hits are free)."""
    paid = {e["task"]: e["paid"] for e in of(events, Event.TASK_USAGE)}  # the latest of each task
    if len(paid) < 2:
        return []
    rows = ["<h3>Paid, per task</h3><table><tr><th>task</th><th>calls</th><th>tokens</th><th>cost (USD)</th></tr>"]
    for task, roles in paid.items():
        calls = sum(r["calls"] for r in roles.values())
        tokens = sum(r["prompt_tokens"] + r["completion_tokens"] for r in roles.values())
        rows.append(f"<tr><td>{html.escape(task)}</td><td>{calls}</td><td>{tokens}</td>"
                    f"<td>{sum(r['cost'] for r in roles.values()):.4f}</td></tr>")
    return rows + ["</table>"]


def _components(state: dict) -> list[str]:
    """A program's search: each named prompt's own trajectory (the texts its steps chose,
    with the program's eval score then)."""
    parts = state.get("parts") or {}
    out = []
    for name, part in parts.items():
        rows = "".join(f"<tr><td>{i}</td><td>{100 * p['score']:.1f}</td><td class='prompt'>{html.escape(p['prompt'])}</td></tr>"
                       for i, p in enumerate(part["trajectory"]["points"]))
        out.append(f"<h3>Prompt {html.escape(name)}: its steps</h3>"
                   f"<table><tr><th>#</th><th>eval</th><th>text</th></tr>{rows}</table>")
    return out


def _rejections(state: dict) -> list[str]:
    """How many candidates were set aside, and why, over the task's steps."""
    counts: dict[str, int] = {}
    steps = state["trajectory"]["steps"]
    for step in steps:
        for kind, n in rejection_counts([Candidate(**c) for c in step["candidates"]]).items():
            counts[kind] = counts.get(kind, 0) + n
    total = sum(len(step["candidates"]) for step in steps)
    if not total:
        return []
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{n}</td></tr>" for k, n in counts.items())
    return [f"<h3>Candidates set aside</h3><p>{sum(counts.values())} of {total} candidates were not scored in full "
            f"(a reply that is not an instruction is screened out before it is scored).</p>"
            f"<table><tr><th>reason</th><th>candidates</th></tr>{rows}</table>"]


def _yardstick_note(r: TaskResult, said: Outcome) -> str:
    """The final prompt against the best constant answer (as the outcome words it), and the
    answer shares and per-class figures of both prompts: how a collapse to one answer shows."""
    if not r.constant:
        return ""
    split = r.yardstick_split
    measured = r.constant[split]
    shares = lambda m: ", ".join(f"{html.escape(repr(a))} {100 * s:.0f}%" for a, s in m["answers"])
    classes = "".join(f". Per class, {which}: {html.escape(describe_classes(measured[which]['classes']))}"
                      for which in ("initial", "final") if measured[which].get("classes"))
    return (f"<br><small>{html.escape(said.yardstick[0])}. Answers on {split}: "
            f"initial {shares(measured['initial'])}; final {shares(measured['final'])}{classes}</small>")


def write_report(run_dir: str | Path) -> Path:
    run_dir = Path(run_dir)
    spec, events, states = read_spec(run_dir), read_events(run_dir), _load_states(run_dir)
    charts = run_dir / "charts"
    charts.mkdir(exist_ok=True)
    body = [f"<h1>gpo run report</h1><p>{html.escape(str(run_dir))}</p>", _settings(spec)]
    body += _results(of(events, Event.TASK_DONE))
    for name, state in states.items():
        body += _task_section(name, state, charts)
    body += _usage(events)
    page = f"<!doctype html><html><head><meta charset='utf-8'><title>gpo report</title><style>{CSS}</style></head><body>{''.join(body)}</body></html>"
    path = run_dir / REPORT_FILE
    path.write_text(page, encoding="utf-8")
    return path


def _settings(spec: dict) -> str:
    """The run's settings, as a table: models, the method's own, selection, adoption, sizes."""
    cfg = spec.get("config", {})
    method = spec.get("method", "gpo")
    rows = [("method", method + (f" {spec['method_options']}" if spec.get("method_options") else "")),
            ("scorer", spec["scorer"]["model"]), ("optimizer", spec["optimizer"]["model"])]
    rows += method_class(method).report_rows(cfg)  # the method's own settings
    rows.append(("candidate selection", f"{cfg.get('selection', 'full')}" + (
        f" (paired tests at alpha {cfg.get('race_alpha')}, Holm-corrected, blocks of {cfg.get('race_block')})"
        if cfg.get("selection", "full") == "race" else " (every candidate scored on the whole eval split)")))
    rows.append(("final prompt adopted", {"best": "best: the highest eval mean",
                                          "significant": f"significant: only if better than the initial prompt on eval "
                                                         f"at alpha {cfg.get('race_alpha')}",
                                          "significant+constant": f"significant+constant: only if better than the "
                                                                  f"initial prompt and than the best constant answer "
                                                                  f"on eval at alpha {cfg.get('race_alpha')}, without "
                                                                  f"collapsing to one answer",
                                          "lcb": f"lcb: the highest lower bound of the gain over the initial prompt, "
                                                 f"Bonferroni-corrected for the prompts scored, at alpha "
                                                 f"{cfg.get('race_alpha')}"}[cfg.get("adopt", "best")]
                 + (f"; chosen on a held-out {cfg['final_holdout']:.0%} of eval" if cfg.get("final_holdout") else "")))
    if cfg.get("pool", "best") != "best":
        rows.append(("pool", f"{cfg['pool']}: a step updates a prompt drawn from the per-example frontier"
                             + (f"; up to {cfg['merge']} merges" if cfg.get("merge") else "")))
    if cfg.get("length_penalty") or cfg.get("max_prompt_tokens"):
        rows.append(("prompt length", f"penalty {cfg.get('length_penalty', 0)}, cap "
                                      f"{cfg.get('max_prompt_tokens') or 'none'} tokens"))
    if cfg.get("objective", "accuracy") != "accuracy":
        rows.append(("objective", f"{cfg['objective']}: eval and test figures are macro-F1, compared by a paired "
                                  f"bootstrap over examples"))
    rows.append(("epochs x batch x candidates", f"{cfg.get('num_search_epochs')} x {cfg.get('opt_batch_size')} x {cfg.get('num_generated_instructions_in_each_step')}"))
    return "<table>" + "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows) + "</table>"


def _results(results: list[dict]) -> list[str]:
    """Each task's figures and gains, its final prompt, and what happened to it (as the outcome words it)."""
    if not results:
        return []
    body = ["<h2>Results</h2><table><tr><th>task</th><th>eval: initial → final</th><th>eval gain</th>"
            "<th>test: initial → final</th><th>test gain</th><th>final prompt</th></tr>"]
    for record in results:
        r = task_result(record)
        said = outcome(r)
        note = f"<br><small>{html.escape(said.summary)}</small>" if said.kind.startswith("kept") else ""
        note += _yardstick_note(r, said)
        for line in (said.adoption, said.human, said.length, said.headroom):
            if line:
                note += f"<br><small>{html.escape(line)}</small>"
        body.append(f"<tr><td>{html.escape(record['task'])}</td><td>{_pct(r.initial_eval)} → {_pct(r.final_eval)}</td>"
                    f"<td>{_gain(said.gains.get('eval'))}</td>"
                    f"<td>{_pct(r.initial_test)} → {_pct(r.final_test)}</td>"
                    f"<td>{_gain(said.gains.get('test'))}</td>"
                    f"<td class='prompt'>{_prompt_html(r.final_prompt)}{note}</td></tr>")
    body.append("</table><p><small>Gains are final minus initial prompt, paired on the same examples, with a 95% "
                "interval and a two-sided p-value (McNemar's exact test for accuracy, a sign-flip test for graded "
                "scores, a paired bootstrap over examples for macro-F1). The eval gain is measured on the split the final prompt was chosen on, so it leans "
                "optimistic; the test gain is the unbiased check.</small></p>")
    return body


def _task_section(name: str, state: dict, charts: Path) -> list[str]:
    """A task's charts, its prompt's evolution word by word, its components and its set-aside replies."""
    body = [f"<h2>{html.escape(name)}</h2>", _img(_scores_chart(name, state, charts))]
    for chart in (_curve_chart(name, state, charts), _budget_chart(name, state, charts)):
        if chart:
            body.append(_img(chart))
    body.append("<h3>Prompt evolution</h3><table><tr><th>step</th><th>eval</th><th>change from the previous prompt</th></tr>")
    points = state["trajectory"]["points"]
    for i, p in enumerate(points):
        instruction = split_demos(p["prompt"])[0]
        diff = (html.escape(instruction) if i == 0 else
                _word_diff(split_demos(points[i - 1]["prompt"])[0], instruction)) + _demos_html(p["prompt"])
        body.append(f"<tr><td>{i}</td><td>{100 * p['score']:.1f}</td><td class='prompt'>{diff}</td></tr>")
    body.append("</table>")
    return body + _components(state) + _rejections(state)


def _usage(events: list[dict]) -> list[str]:
    """What the run paid, by role (and by endpoint or replica), and by task."""
    usage = of(events, Event.USAGE)
    if not usage:
        return []
    u = usage[-1]
    body = ["<h2>Usage</h2><table><tr><th>role</th><th>calls</th><th>cache hits</th><th>prompt tokens</th><th>completion tokens</th><th>cost (USD)</th></tr>"]
    for role in [r for r in ROLES if r in u]:
        r = u[role]
        cached = r.get("cached_prompt_tokens") or 0  # read from a prompt cache (an endpoint's, or the embedded model's prefix cache)
        prompt = f"{r['prompt_tokens']}" + (f" ({cached} from a prompt cache)" if cached else "")
        body.append(f"<tr><td>{role}</td><td>{r['calls']}</td><td>{r['cache_hits']}</td><td>{prompt}</td>"
                    f"<td>{r['completion_tokens']}</td><td>{r['cost']:.4f}</td></tr>")
        for name, m in (r.get("members") or {}).items():  # endpoints of a fleet, replicas of a pool
            body.append(f"<tr><td>&nbsp;&nbsp;{html.escape(name)}</td><td>{m['calls']}</td><td></td>"
                        f"<td>{m['prompt_tokens']}</td><td>{m['completion_tokens']}</td><td></td></tr>")
    body.append("</table>")
    body += _task_accounts(events)
    if u.get("judge", {}).get("unparsed"):
        body.append(f"<p>Judge replies without a score (asked again once, then scored 0): "
                    f"{u['judge']['unparsed']}</p>")
    return body
