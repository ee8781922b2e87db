"""Paired statistics: is prompt B really better than prompt A on the same examples?

``compare(a, b)`` takes the per-example scores of two prompts on the same
examples, in the same order, and returns the mean difference b - a with an
interval and a two-sided p-value. Each interval is the inversion of its own
test, so an interval excludes 0 exactly when p < alpha: a user never sees
"95% CI +2..+64" beside "p = 0.25".

- 0/1 scores (accuracy): McNemar's exact test on the discordant pairs (a binomial
  test of the examples only one prompt gets right). The interval is the exact
  Clopper-Pearson interval of the share of discordant pairs B wins, scaled by a
  Wilson interval of how many pairs are discordant (taking the side of each that
  widens the bound). With no discordant pair it keeps a width (+-0.28 on 10
  examples), where a Wald or bootstrap interval collapses to a point.
- graded scores (ROUGE-L): a sign-flip randomization test of the mean difference
  (exact up to 16 examples, else seeded Monte Carlo), and the interval of shifts
  that this test does not reject. A percentile bootstrap was the first choice,
  but on few examples it is badly anti-conservative: one example gives p = 0, and
  three positive differences give an interval that excludes 0 while the exact
  test says p = 0.25.

- a split-level figure (macro-F1, ``--objective macro_f1``): a paired bootstrap over
  examples (``bootstrap_compare``): the examples are resampled with replacement, the same
  indices for both prompts, ``BOOTSTRAP_SAMPLES`` times (seeded), and the figure's difference
  computed on each resample. The two-sided p-value is twice the smaller share of resampled
  differences on either side of 0 (at most 1); the interval is the percentile interval read
  at the matching ranks, so again it excludes 0 exactly when p < alpha.

``holm`` corrects several comparisons made at once (racing uses it).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import numpy as np

RANDOM_SIGN_VECTORS = 10_000
BOOTSTRAP_SAMPLES = 4_000
EXACT_SIGN_FLIP_MAX = 16  # enumerate all 2^m sign vectors up to this many non-zero differences


@dataclass(frozen=True)
class Comparison:
    """Prompt B against prompt A on n shared examples. ``diff`` = mean(b) - mean(a);
    ``low``..``high`` its interval at level 1 - alpha; ``p`` two-sided."""

    n: int
    mean_a: float
    mean_b: float
    diff: float
    low: float
    high: float
    p: float
    test: str  # "mcnemar-exact", "sign-flip", "bootstrap-paired", or "none" (no shared examples)
    alpha: float = 0.05

    @property
    def significant(self) -> bool:
        return self.p < self.alpha

    def as_dict(self) -> dict:
        return asdict(self) | {"significant": self.significant}

    @classmethod
    def from_dict(cls, d: dict) -> "Comparison":
        return cls(**{k: v for k, v in d.items() if k != "significant"})

    def describe(self, scale: float = 100.0) -> str:
        """'+15.0, 95% CI +3.1..+26.9, p = 0.02', with ', not significant' when it is not."""
        if self.n == 0:
            return "no shared examples"
        level = f"{100 * (1 - self.alpha):.0f}%"
        text = (f"{scale * self.diff:+.1f}, {level} CI {scale * self.low:+.1f}..{scale * self.high:+.1f}, "
                f"{format_p(self.p)}")
        return text if self.significant else text + ", not significant"


def format_p(p: float) -> str:
    if p < 0.001:
        return "p < 0.001"
    return f"p = {p:.3f}" if p < 0.01 else f"p = {p:.2f}"


def is_binary(*score_lists: Sequence[float]) -> bool:
    return all(s in (0.0, 1.0) for scores in score_lists for s in scores)


def compare(a: Sequence[float], b: Sequence[float], *, alpha: float = 0.05, seed: int = 0,
            interval: bool = True) -> Comparison:
    """B against A, paired example by example (see the module docstring for the tests).
    ``interval=False`` skips the interval (racing needs only the p-value)."""
    if len(a) != len(b):
        raise ValueError(f"paired scores need the same examples: {len(a)} scores against {len(b)}")
    n = len(a)
    if n == 0:
        return Comparison(0, 0.0, 0.0, 0.0, float("nan"), float("nan"), 1.0, "none", alpha)
    mean_a, mean_b = sum(a) / n, sum(b) / n
    diff = mean_b - mean_a
    if is_binary(a, b):
        n10 = sum(1 for x, y in zip(a, b) if x == 1 and y == 0)
        n01 = sum(1 for x, y in zip(a, b) if x == 0 and y == 1)
        low, high = mcnemar_interval(n01, n10, n, alpha) if interval else (float("nan"), float("nan"))
        return Comparison(n, mean_a, mean_b, diff, low, high, mcnemar_exact(n01, n10), "mcnemar-exact", alpha)
    d = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    low, high = sign_flip_interval(d, alpha, seed) if interval else (float("nan"), float("nan"))
    return Comparison(n, mean_a, mean_b, diff, low, high, sign_flip_p(d, seed), "sign-flip", alpha)


def bootstrap_compare(a: Sequence, b: Sequence, figure: Callable[[Sequence, np.ndarray], np.ndarray], *,
                      alpha: float = 0.05, seed: int = 0, samples: int = BOOTSTRAP_SAMPLES) -> Comparison:
    """B against A on a figure of the whole split, paired (see the module docstring). ``a`` and
    ``b`` hold each example's item for each prompt, in the same order; ``figure(items, rows)``
    gives the figure of ``items`` resampled by each row of example indices ``rows``."""
    if len(a) != len(b):
        raise ValueError(f"paired items need the same examples: {len(a)} against {len(b)}")
    n = len(a)
    if n == 0:
        return Comparison(0, 0.0, 0.0, 0.0, float("nan"), float("nan"), 1.0, "none", alpha)
    whole = np.arange(n)[None, :]
    mean_a, mean_b = float(figure(a, whole)[0]), float(figure(b, whole)[0])
    rows = np.random.default_rng(seed).integers(0, n, size=(samples, n))
    diffs = figure(b, rows) - figure(a, rows)
    diffs = np.where(np.abs(diffs) < 1e-12, 0.0, diffs)  # a difference of 0 up to rounding is 0
    below, above = float(np.mean(diffs <= 0)), float(np.mean(diffs >= 0))
    rank = max(0, math.ceil(alpha * samples / 2) - 1)  # low > 0 exactly when below < alpha / 2
    ordered = np.sort(diffs)
    low, high = float(ordered[rank]), float(ordered[samples - 1 - rank])
    return Comparison(n, mean_a, mean_b, mean_b - mean_a, low, high, min(1.0, 2 * min(below, above)),
                      "bootstrap-paired", alpha)


def mcnemar_exact(n01: int, n10: int) -> float:
    """Two-sided exact McNemar p: twice the smaller binomial(n01 + n10, 1/2) tail, at most 1."""
    m = n01 + n10
    if m == 0:
        return 1.0
    k = min(n01, n10)
    tail = sum(math.comb(m, i) for i in range(k + 1)) / 2**m
    return min(1.0, 2 * tail)


def wilson(x: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval of a proportion x / n."""
    if n == 0:
        return 0.0, 1.0
    z = _z(alpha)
    p = x / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def binomial_cdf(k: int, m: int, theta: float) -> float:
    """P(X <= k) for X ~ Binomial(m, theta)."""
    if k < 0:
        return 0.0
    if k >= m or theta <= 0:
        return 1.0
    if theta >= 1:
        return 0.0
    logs = [math.lgamma(m + 1) - math.lgamma(i + 1) - math.lgamma(m - i + 1)
            + i * math.log(theta) + (m - i) * math.log1p(-theta) for i in range(k + 1)]
    top = max(logs)
    return min(1.0, math.exp(top) * sum(math.exp(v - top) for v in logs))


def clopper_pearson(x: int, m: int, alpha: float = 0.05) -> tuple[float, float]:
    """Exact interval of a binomial proportion x / m (the inversion of the exact binomial test)."""
    if m == 0:
        return 0.0, 1.0

    def root(f) -> float:  # f increases with theta; where it crosses 0
        lo, hi = 0.0, 1.0
        for _ in range(60):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if f(mid) < 0 else (lo, mid)
        return (lo + hi) / 2

    low = 0.0 if x == 0 else root(lambda t: (1 - binomial_cdf(x - 1, m, t)) - alpha / 2)
    high = 1.0 if x == m else root(lambda t: alpha / 2 - binomial_cdf(x, m, t))
    return low, high


def mcnemar_interval(n01: int, n10: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Interval of p_b - p_a = q (2 theta - 1) for paired 0/1 scores: theta, the share of the
    m = n01 + n10 discordant pairs that B wins, by Clopper-Pearson; q = m / n by Wilson, on the
    side that widens each bound. A bound's sign is theta's against 1/2, so the interval
    excludes 0 exactly when McNemar's exact test rejects."""
    t_low, t_high = clopper_pearson(n01, n01 + n10, alpha)
    q_low, q_high = wilson(n01 + n10, n, alpha)
    low, high = 2 * t_low - 1, 2 * t_high - 1
    return low * (q_low if low > 0 else q_high), high * (q_high if high > 0 else q_low)


def _sign_matrix(n: int, seed: int) -> tuple[np.ndarray, bool]:
    """Every sign vector of length n (exact), or a seeded sample of them."""
    if n <= EXACT_SIGN_FLIP_MAX:
        return np.array(list(itertools.product((1.0, -1.0), repeat=n))), True
    return np.random.default_rng(seed).choice((1.0, -1.0), size=(RANDOM_SIGN_VECTORS, n)), False


def _flip_p(d: np.ndarray, signs: np.ndarray, exact: bool) -> float:
    extreme = int(np.sum(np.abs(signs @ d) >= abs(d.sum()) - 1e-12))
    return extreme / len(signs) if exact else (1 + extreme) / (1 + len(signs))


def sign_flip_p(d: np.ndarray, seed: int = 0) -> float:
    """Two-sided randomization test of mean(d) = 0: under the null each difference's sign is
    a coin flip. Exact up to EXACT_SIGN_FLIP_MAX non-zero differences, else seeded Monte Carlo."""
    nz = d[d != 0]
    if len(nz) == 0:
        return 1.0
    return _flip_p(nz, *_sign_matrix(len(nz), seed))


def sign_flip_interval(d: np.ndarray, alpha: float = 0.05, seed: int = 0) -> tuple[float, float]:
    """The shifts delta that the sign-flip test of d - delta does not reject at alpha, within
    [-1, 1] (the range of a difference of [0, 1] scores): too few examples to reject
    anything give the whole range."""
    signs, exact = _sign_matrix(len(d), seed)
    mean = float(d.mean())

    def bound(outer: float) -> float:
        if _flip_p(d - outer, signs, exact) >= alpha:
            return outer
        rejected, kept = outer, mean
        for _ in range(40):
            mid = (rejected + kept) / 2
            rejected, kept = (mid, kept) if _flip_p(d - mid, signs, exact) < alpha else (rejected, mid)
        return kept

    return bound(-1.0), bound(1.0)


def holm(pvalues: Sequence[float], alpha: float = 0.05) -> list[bool]:
    """Holm's step-down correction: which of m hypotheses tested together are rejected
    while the chance of any false rejection stays at most alpha."""
    order = sorted(range(len(pvalues)), key=lambda i: pvalues[i])
    rejected = [False] * len(pvalues)
    for rank, i in enumerate(order):
        if pvalues[i] >= alpha / (len(pvalues) - rank):
            break
        rejected[i] = True
    return rejected


def _z(alpha: float) -> float:
    """The standard normal quantile 1 - alpha / 2."""
    from statistics import NormalDist

    return NormalDist().inv_cdf(1 - alpha / 2)


PERMUTATIONS = 10_000  # within-example shuffles for the omnibus tests' p-values


@dataclass(frozen=True)
class Omnibus:
    """Whether k prompts scored on the same n examples differ at all. ``statistic`` is
    Cochran's Q (0/1 scores) or Friedman's chi-square (graded scores); ``p`` comes from
    shuffling the prompts' scores within each example (exchangeable when no prompt matters),
    so it holds for small samples, where the chi-square approximation does not."""

    test: str  # "cochran-q" or "friedman"
    statistic: float
    p: float
    n: int  # examples
    k: int  # prompts

    def describe(self) -> str:
        return f"{'Cochran' if self.test == 'cochran-q' else 'Friedman'} test over {self.k} prompts on {self.n} " \
               f"examples, {format_p(self.p)}"


def related_samples(scores: Sequence[Sequence[float]], seed: int = 0, permutations: int = PERMUTATIONS) -> Omnibus:
    """``scores[j][i]``: prompt j on example i. Within each example, shuffling the prompts keeps
    its row total (0/1) or its ranks (graded), so both statistics rise and fall with the sum of
    squared column totals of the values (0/1) or within-example ranks (graded); the p-value is
    the share of shuffles at least as extreme as what was seen (the seen one counted)."""
    from scipy.stats import rankdata

    x = np.asarray(scores, dtype=float).T  # examples x prompts
    n, k = x.shape if x.ndim == 2 else (0, 0)
    binary = is_binary(*scores)
    if n == 0 or k < 2:
        return Omnibus("cochran-q" if binary else "friedman", 0.0, 1.0, n, k)
    values = x if binary else rankdata(x, axis=1)
    seen = float((values.sum(axis=0) ** 2).sum())
    rng, extreme, done = np.random.default_rng(seed), 0, 0
    while done < permutations:  # in chunks, so a large split stays small in memory
        m = min(permutations - done, max(1, 200_000 // (n * k)))
        order = np.argsort(rng.random((m, n, k)), axis=2)
        shuffled = np.take_along_axis(np.broadcast_to(values, (m, n, k)), order, axis=2)
        extreme += int(((shuffled.sum(axis=1) ** 2).sum(axis=1) >= seen - 1e-9).sum())
        done += m
    p = (1 + extreme) / (1 + permutations)
    return Omnibus("cochran-q" if binary else "friedman", _statistic(values, binary), min(1.0, p), n, k)


def _statistic(values: np.ndarray, binary: bool) -> float:
    n, k = values.shape
    columns, rows = values.sum(axis=0), values.sum(axis=1)
    if binary:  # Cochran's Q
        denominator = k * rows.sum() - (rows ** 2).sum()
        return 0.0 if denominator == 0 else float((k - 1) * (k * (columns ** 2).sum() - rows.sum() ** 2) / denominator)
    ties = ((values - (k + 1) / 2) ** 2).sum()  # Friedman's, with ties: the ranks' spread as given
    return 0.0 if ties == 0 else float((k - 1) * ((columns - n * (k + 1) / 2) ** 2).sum() / ties)
