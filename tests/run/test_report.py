"""The HTML report, rendered in headless Chromium: charts show, no broken images."""

import asyncio
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from fakes import ScriptedLLM, config, echo_scorer, plus_task, replies
from gpo.api import RunSpec
from gpo.methods.gpo.method import GPO
from gpo.run.report import write_report
from gpo.run.store import RunStore
from gpo.scoring import Evaluator

CHECK = """<script>
window.addEventListener('load', () => {
  const imgs = [...document.images];
  const ok = imgs.filter(i => i.complete && i.naturalWidth > 100).length;
  document.body.setAttribute('data-images', ok + '/' + imgs.length);
});
</script></body>"""


def scripted_run(run_dir: Path) -> Path:
    """A small run directory made with the scripted fakes (fast, no model)."""
    table = [["a ++", "b +", "c +++", "d"], ["e ++++", "f", "g ++", "h +"], ["i", "j +++++", "k", "l"]]
    cfg = config(num_search_epochs=3, learning_rate_name="w_lr", decay_strategy="cosine", test_each_step=True)
    store = RunStore(run_dir)
    store.write_spec(RunSpec(config=cfg).to_dict())
    scorer = echo_scorer()
    result = asyncio.run(GPO(cfg, ScriptedLLM(script=replies(table)), Evaluator(scorer, second_round=False),
                             hooks=store).optimize(plus_task(n_train=8)))
    store.event("task_done", **{**result.as_dict(), "task": "test/plus"})
    store.event("usage", optimizer={"calls": 3, "cache_hits": 0, "prompt_tokens": 10, "completion_tokens": 5, "cost": 0.0},
                scorer={"calls": 9, "cache_hits": 1, "prompt_tokens": 90, "completion_tokens": 50, "cost": 0.0})
    for task, calls in (("test/plus", 9), ("test/other", 4)):  # what api.optimize writes after each task
        store.event("task_usage", task=task, paid={
            "scorer": {"calls": calls, "samples": calls, "prompt_tokens": 10 * calls, "completion_tokens": calls,
                       "cost": 0.01 * calls},
            "optimizer": {"calls": 1, "samples": 4, "prompt_tokens": 100, "completion_tokens": 20, "cost": 0.5}})
    store.close()
    return run_dir


def test_report_contents(tmp_path):
    html = write_report(scripted_run(tmp_path / "run")).read_text()
    assert html.count("<img") == 3 and "<del>" in html and "<ins>" in html  # scores, gain per request, budget
    assert list((tmp_path / "run" / "charts").glob("*-curve.png"))  # the gain per request, drawn
    assert "J +++++" in html and "Usage" in html
    assert "candidate selection" in html and "every candidate scored on the whole eval split" in html
    assert "final prompt adopted" in html and "best: the highest eval mean" in html
    assert html.count("95% CI") >= 2 and "p = " in html  # eval and test gains with their uncertainty
    assert "Paid, per task" in html
    assert "<td>test/other</td><td>5</td><td>164</td><td>0.5400</td>" in html  # scorer 4 calls + optimizer 1


def test_report_renders_in_headless_chromium(tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.skip("chromium not installed (.ci/run installs it)")
    page = write_report(scripted_run(tmp_path / "run"))
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text().replace("</body>", CHECK))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000"]
    dom = subprocess.run([chromium, *flags, "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120).stdout
    m = re.search(r'data-images="(\d+)/(\d+)"', dom)
    assert m, dom[:500]
    ok, total = map(int, m.groups())
    assert total == 3 and ok == total  # every chart decoded and shown
    shot = tmp_path / "report.png"
    subprocess.run([chromium, *flags, f"--screenshot={shot}", "--window-size=1000,1400", page.as_uri()],
                   capture_output=True, timeout=120)
    assert shot.is_file() and shot.stat().st_size > 20_000
