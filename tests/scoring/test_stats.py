"""Paired statistics against values computed by hand, edge cases included."""

import math

import numpy as np
import pytest

from gpo.scoring.stats import Comparison, clopper_pearson, compare, holm, mcnemar_exact, sign_flip_p, wilson


def test_mcnemar_exact_tails():
    assert mcnemar_exact(0, 6) == pytest.approx(2 / 64)  # six discordant pairs, all one way
    assert mcnemar_exact(8, 2) == pytest.approx(2 * (1 + 10 + 45) / 1024)
    assert mcnemar_exact(2, 8) == mcnemar_exact(8, 2)
    assert mcnemar_exact(5, 5) == 1.0  # capped at 1
    assert mcnemar_exact(0, 0) == 1.0  # no discordant pair: no evidence


def test_wilson_and_clopper_pearson_match_textbook_values():
    low, high = wilson(0, 10)
    assert low == pytest.approx(0.0, abs=1e-12) and high == pytest.approx(0.2775, abs=1e-4)
    assert wilson(5, 10) == (pytest.approx(0.2366, abs=1e-4), pytest.approx(0.7634, abs=1e-4))
    assert clopper_pearson(0, 10) == (0.0, pytest.approx(1 - 0.025 ** (1 / 10)))  # closed form at x = 0
    assert clopper_pearson(10, 10) == (pytest.approx(0.025 ** (1 / 10)), 1.0)
    assert clopper_pearson(5, 10) == (pytest.approx(0.1871, abs=1e-4), pytest.approx(0.8129, abs=1e-4))


def test_binary_comparison_uses_mcnemar_on_discordant_pairs():
    a = [1, 1, 0, 0, 1, 0, 1, 0]
    b = [1, 1, 1, 1, 1, 1, 1, 0]  # three examples only b gets right, none only a gets right
    c = compare(a, b)
    assert c.test == "mcnemar-exact"
    assert c.diff == pytest.approx(3 / 8)
    assert c.p == pytest.approx(2 / 8)
    assert not c.significant
    # by hand: theta in [0.025^(1/3), 1], q = 3/8 in Wilson(3, 8); each bound takes the widening side of q
    q_low, q_high = wilson(3, 8)
    assert c.low == pytest.approx((2 * 0.025 ** (1 / 3) - 1) * q_high)
    assert c.high == pytest.approx(q_high)
    assert c.low < 0 < c.diff < c.high  # not significant, and the interval says so too


def test_interval_excludes_zero_exactly_when_the_test_rejects():
    for n01 in range(13):
        for n10 in range(13 - n01):
            n = n01 + n10 + 3
            a = [0] * n01 + [1] * n10 + [1, 0, 1]
            b = [1] * n01 + [0] * n10 + [1, 0, 1]
            c = compare(a, b)
            assert (c.low > 0 or c.high < 0) == c.significant, (n01, n10, c)
            assert -1 <= c.low <= c.diff <= c.high <= 1
    rng = np.random.default_rng(0)
    for _ in range(30):
        a, b = rng.random(12).round(2), rng.random(12).round(2) + rng.choice([0.0, 0.3])
        c = compare(list(a), list(np.minimum(b, 1.0)))
        assert (c.low > 0 or c.high < 0) == c.significant, c


def test_no_discordant_pair_keeps_a_width():
    c = compare([1.0] * 10, [1.0] * 10)
    assert c.diff == 0 and c.p == 1.0 and not c.significant
    assert (c.low, c.high) == (pytest.approx(-0.2775, abs=1e-4), pytest.approx(0.2775, abs=1e-4))


def test_significant_binary_difference():
    a = [0] * 20
    b = [1] * 12 + [0] * 8
    c = compare(a, b)
    assert c.p == pytest.approx(2 / 2**12)
    assert c.significant and c.low > 0
    assert c.describe().startswith("+60.0, 95% CI +")
    assert "not significant" not in c.describe()


def test_graded_scores_use_sign_flip_and_bootstrap():
    a = [0.2, 0.4, 0.6]
    b = [0.3, 0.5, 0.9]  # differences 0.1, 0.1, 0.3: all positive
    c = compare(a, b, seed=3)
    assert c.test == "sign-flip"
    assert c.diff == pytest.approx(0.5 / 3)
    assert c.p == pytest.approx(2 / 8)  # of the 8 sign vectors, +++ and --- are as extreme
    assert (c.low, c.high) == (-1.0, 1.0)  # three examples cannot reject any shift at 0.05: 2/8 >= 0.05
    big = compare([0.2] * 6 + [0.4] * 6, [0.5] * 6 + [0.6] * 6, seed=3)  # all twelve differences positive
    assert big.p == pytest.approx(2 / 2**12) and 0 < big.low <= big.diff <= big.high
    assert compare(a, b, seed=3) == c  # seeded


def test_sign_flip_by_hand_and_monte_carlo():
    assert sign_flip_p(np.array([0.5, 0.25])) == pytest.approx(0.5)
    assert sign_flip_p(np.array([0.0, 0.0])) == 1.0
    d = np.array([0.1] * 30)  # Monte Carlo branch: only the all-plus and all-minus vectors are as extreme
    p = sign_flip_p(d, seed=1)
    assert p == pytest.approx(1 / 10_001, abs=3 / 10_001)


def test_one_example_and_no_example():
    one = compare([0.2], [0.9])
    assert one.n == 1 and one.p == 1.0 and (one.low, one.high) == (-1.0, 1.0)
    one_binary = compare([0], [1])
    assert one_binary.p == 1.0 and -1 <= one_binary.low < 0 < one_binary.high <= 1
    none = compare([], [])
    assert none.n == 0 and none.p == 1.0 and math.isnan(none.low)
    assert none.describe() == "no shared examples"
    with pytest.raises(ValueError, match="same examples"):
        compare([1, 0], [1])


def test_holm_step_down():
    assert holm([0.01, 0.04, 0.03]) == [True, False, False]  # 0.01 < 0.05/3; 0.03 >= 0.05/2 stops
    assert holm([0.01, 0.02]) == [True, True]  # 0.01 < 0.025, then 0.02 < 0.05
    assert holm([]) == []


def test_describe_and_round_trip():
    c = Comparison(n=20, mean_a=0.3, mean_b=0.45, diff=0.15, low=0.031, high=0.269, p=0.02, test="mcnemar-exact")
    assert c.describe() == "+15.0, 95% CI +3.1..+26.9, p = 0.02"
    flat = Comparison(n=20, mean_a=0.3, mean_b=0.3, diff=0.0, low=-0.2, high=0.2, p=1.0, test="mcnemar-exact")
    assert flat.describe() == "+0.0, 95% CI -20.0..+20.0, p = 1.00, not significant"
    assert Comparison.from_dict(c.as_dict()) == c
    assert Comparison(n=5, mean_a=0, mean_b=1, diff=1, low=0.5, high=1, p=0.0004, test="x").describe().endswith("p < 0.001")
