"""The headroom check: the omnibus test against known cases (identical prompts give p = 1, a
planted difference is found, the statistics agree with their textbook forms), and the probe
through the real Evaluator with a scripted fake scorer (named as such)."""

from __future__ import annotations

import asyncio
import re

import numpy as np
import pytest
from scipy.stats import chi2, friedmanchisquare

from fakes import ScriptedLLM, last_user
from gpo.scoring.evaluate import Evaluator
from gpo.scoring.headroom import FORMATS, probe, probe_prompts
from gpo.scoring.render import PromptFormat
from gpo.scoring.stats import related_samples
from gpo.tasks import AnswerKind, Example, Task


def test_identical_prompts_give_p_one_and_a_planted_difference_is_found():
    rng = np.random.default_rng(0)
    same = rng.integers(0, 2, 40).tolist()
    assert related_samples([same, same, same]).p == 1.0  # nothing to tell apart
    graded = rng.random(40).tolist()
    assert related_samples([graded, graded]).p == 1.0
    planted = [[1] * 30 + [0] * 10, rng.integers(0, 2, 40).tolist(), [0] * 40]
    found = related_samples(planted)
    assert found.test == "cochran-q" and found.p < 0.001
    assert related_samples([rng.random(40).tolist(), (rng.random(40) + 1).tolist()]).p < 0.001


def test_the_statistics_are_cochrans_q_and_friedmans_and_the_p_values_agree_with_chi_square_on_large_samples():
    rng = np.random.default_rng(1)
    graded = rng.random((4, 60))
    graded[0] += 0.15
    ours = related_samples(graded.tolist())
    theirs = friedmanchisquare(*graded)
    assert ours.statistic == pytest.approx(theirs.statistic) and ours.p == pytest.approx(theirs.pvalue, abs=0.02)
    binary = (rng.random((3, 200)) < [[0.5], [0.56], [0.6]]).astype(int)
    q = related_samples(binary.tolist())
    rows, cols, k = binary.sum(axis=0), binary.sum(axis=1), 3  # Q by its textbook formula
    textbook = (k - 1) * (k * (cols ** 2).sum() - cols.sum() ** 2) / (k * rows.sum() - (rows ** 2).sum())
    assert q.statistic == pytest.approx(textbook) and q.p == pytest.approx(chi2.sf(textbook, k - 1), abs=0.03)


def parity_task(n=40):
    ex = lambda k: [Example(f"Is {i} even?", "Yes" if i % 2 == 0 else "No") for i in range(k)]
    return Task("parity", "test", AnswerKind.BOOLEAN, metric="exact",
                splits={"train": ex(12), "eval": ex(n), "test": ex(n), "format": ex(3)})


def run_probe(script, initial="Think.", sample=32):
    evaluator = Evaluator(ScriptedLLM(model="scorer", script=script), PromptFormat(), second_round=False)
    return asyncio.run(probe(evaluator, parity_task(), initial, sample=sample, seed=3))


def test_a_prompt_the_scorer_responds_to_is_found_and_set_beside_the_initial_prompt_and_the_constant():
    def script(request, i):  # scripted: answers right only when told the answer format
        text = last_user(request)
        if FORMATS[AnswerKind.BOOLEAN] in text:
            return "Yes" if int(re.search(r"Is (\d+) even", text).group(1)) % 2 == 0 else "No"
        return "maybe"

    h = run_probe(script)
    assert h.n == 32 and h.moves and h.best == "answer format" and h.scores["answer format"] == 1.0
    assert h.scores["initial"] == 0.0 and h.versus_initial.significant and h.versus_initial.diff == 1.0
    assert h.constant is not None and h.requests == len(h.prompts) * 32
    assert h.verdict().startswith("headroom: prompts move this model on this task by up to 100.0 points")
    again = run_probe(script)
    assert again.as_dict() == h.as_dict()  # the same seed, the same probe


def test_a_scorer_no_prompt_moves_has_no_measurable_headroom():
    h = run_probe(lambda request, i: "Yes" if int(re.search(r"Is (\d+) even", last_user(request)).group(1)) % 3
                  else "No")
    assert not h.moves and h.omnibus.p == 1.0 and h.best == "initial"
    assert h.verdict().startswith("no measurable headroom (p = 1")


def test_the_probe_prompts_are_distinct_and_fixed_by_the_seed():
    task = parity_task()
    prompts = probe_prompts(task, "Think.", seed=5)
    assert list(prompts) == ["initial", "empty", "answer format", "demonstrations A", "demonstrations B"]
    assert prompts == probe_prompts(task, "Think.", seed=5) and prompts != probe_prompts(task, "Think.", seed=6)
    assert list(probe_prompts(task, "", seed=5))[:2] == ["initial", "answer format"]  # an empty initial is the empty probe


def test_prompts_that_only_change_the_answer_format_are_not_called_headroom_above_the_constant():
    h = run_probe(lambda request, i: "No" if FORMATS[AnswerKind.BOOLEAN] in last_user(request) else "maybe")
    assert h.moves and h.best == "answer format" and not h.above_constant  # it always answers 'No'
    share = h.scores["answer format"]  # the sample's share of 'No'
    assert h.verdict().startswith(f"prompts move this model's answers by up to {100 * share:.1f} points")
    assert "no probe is better than the best constant answer" in h.verdict()


def test_gpo_probe_refuses_a_sample_too_small_to_test():
    from fakes import gpo

    proc = gpo("probe", "--sample", "1", check=False)
    assert proc.returncode == 2 and "--sample 1: a probe needs at least 2 eval examples" in proc.stderr


@pytest.mark.model
def test_gpo_probe_on_the_embedded_model_gives_its_figures_and_verdict(tmp_path):
    import json

    from fakes import gpo

    lines = gpo("probe", "--dataset", "synthetic", "--task", "navigate", "--sample", "6", "--json",
                cwd=tmp_path).stdout.splitlines()
    found = json.loads(lines[-1])
    assert found["task"] == "synthetic/navigate" and found["n"] == 6
    assert list(found["scores"])[:3] == ["initial", "empty", "answer format"]
    assert 0 < found["omnibus"]["p"] <= 1 and found["best"] in found["scores"]
    assert found["verdict"].startswith(("headroom:", "prompts move", "no measurable headroom"))
    assert (tmp_path / ".gpo-cache.sqlite").is_file()  # its answers are kept for what runs next
    again = json.loads(gpo("probe", "--dataset", "synthetic", "--task", "navigate", "--sample", "6", "--json",
                           cwd=tmp_path).stdout.splitlines()[-1])
    assert again["cache_hits"] == again["requests"] == found["requests"] > 0  # answered from the cache
    assert again["scores"] == found["scores"]
