"""Intervals for the difference between two cells that count both sources of noise.

A cell's score varies for two reasons: which model a seed happened to produce (training noise), and which test
examples happened to be drawn (test noise). Pairing runs by seed does not make training noise cancel (a real
treatment changes the trajectory from the first step), so an interval that resamples the test examples alone,
holding the trained models fixed, is far too narrow: in A/A comparisons it called a non-difference real in up to
13 of 16 cases (`benchmarks/calibration.py`).

Model (a crossed design of seeds s = 1..n and test examples i = 1..N): the per-example difference between the
cell's and the baseline's run of seed s is D[s, i] = μ + a[i] + g[s] + h[s, i], with example effects a (variance
σ²_a), seed effects g (σ²_g) and their interaction h (σ²_h). The mean difference d̄ has variance
σ²_g/n + σ²_h/(nN) + σ²_a/N. Two estimates give it:

- the seed-paired differences d_s (each on the whole test set) vary by σ²_g + σ²_h/N: their variance over n,
  `seed_variance`, estimates the first two terms, with n − 1 degrees of freedom;
- a paired bootstrap over test examples (every run scored on the same resample) gives the variance of one seed's
  difference, (σ²_a + σ²_h)/N, and of the mean over seeds, (σ²_a + σ²_h/n)/N; their contrast isolates σ²_a/N,
  `example_variance`, the test noise that seeds cannot average away (the method of moments for crossed random
  effects; it also holds for scores that are no mean over examples, such as macro-F1, through the bootstrap).

The interval is d̄ ± t(df) · sqrt(seed_variance + example_variance), df by Welch–Satterthwaite (the bootstrap term
counts as exact). With fewer than 3 paired seeds no interval is given: one or two seeds cannot say how much a
seed moves the score. A two-level percentile bootstrap (resampling seeds, then examples) was measured too: with
3–5 seeds its interval is about [min d_s, max d_s], which excludes zero whenever every seed agrees in sign (25% of
A/A comparisons at 3 seeds), so it is not used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import stats

from pipeline.evaluation.counts import ExampleCounts

MIN_PAIRED_SEEDS = 3
RESAMPLES = 2000
CONFIDENCE = 0.95


def resample_weights(examples: int, resamples: int, seed: int) -> np.ndarray:
    """(resamples, examples): how often each test example is drawn in each bootstrap resample (rows sum to N)."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(examples, np.full(examples, 1 / examples), size=resamples).astype(np.float64)


def bootstrap_differences(cell: list[ExampleCounts], baseline: list[ExampleCounts], weights: np.ndarray) -> np.ndarray:
    """(seeds, resamples): each seed pair's difference of scores on every resample of the test examples."""
    rows = []
    for mine, theirs in zip(cell, baseline, strict=True):
        rows.append(mine.score(weights @ mine.counts) - theirs.score(weights @ theirs.counts))
    return np.asarray(rows)


@dataclass(frozen=True)
class Difference:
    """The cell minus the baseline on one score, from seed-paired runs, with the variance of each source."""

    seed_differences: list[float]  # d_s, the difference of the reported scores, seed by seed
    seed_variance: float  # var(d_s) / n: training noise (and the test noise each seed sees alone)
    example_variance: float  # σ²_a / N: the test-set noise the seeds share
    examples_only: tuple[float, float]  # percentile interval over test resamples, models held fixed
    examples: int

    @property
    def mean(self) -> float:
        return float(np.mean(self.seed_differences))

    @property
    def pairs(self) -> int:
        return len(self.seed_differences)

    def degrees_of_freedom(self) -> float:
        return satterthwaite(self.seed_variance, self.example_variance, self.pairs)

    def interval(self, confidence: float = CONFIDENCE) -> tuple[float, float] | None:
        """The two-source interval of the mean difference, or None with fewer than `MIN_PAIRED_SEEDS` pairs."""
        if self.pairs < MIN_PAIRED_SEEDS:
            return None
        return self.mean - self.half_width(self.pairs, confidence), self.mean + self.half_width(self.pairs, confidence)

    def p_value(self) -> float | None:
        """Two-sided p of a zero difference under the interval's t (None where there is no interval): what Holm's
        correction over a sweep's comparisons orders."""
        if self.pairs < MIN_PAIRED_SEEDS:
            return None
        spread = math.sqrt(self.seed_variance + self.example_variance)
        if spread == 0:
            return 0.0 if self.mean != 0 else 1.0
        statistic, df = abs(self.mean) / spread, self.degrees_of_freedom()
        return float(2 * (stats.norm.sf(statistic) if math.isinf(df) else stats.t.sf(statistic, df)))

    def half_width(self, pairs: int, confidence: float = CONFIDENCE) -> float:
        """The interval's half-width with `pairs` seed pairs (more than it has: a projection, if the variances stay
        as estimated)."""
        seed_variance = self.seed_variance * self.pairs / pairs
        df = satterthwaite(seed_variance, self.example_variance, pairs)
        return t_quantile(confidence, df) * math.sqrt(seed_variance + self.example_variance)


def holm(p_values: list[float], level: float = CONFIDENCE) -> list[bool]:
    """Holm's step-down correction: which of `p_values` are real while the chance of calling any non-difference
    among them real stays at most 1 − `level` (family-wise). Ordered from the smallest p, the i-th of m is real while
    p ≤ (1 − level) / (m − i), and every later one is not once one fails."""
    alpha, order = 1 - level, sorted(range(len(p_values)), key=p_values.__getitem__)
    real = [False] * len(p_values)
    for rank, index in enumerate(order):
        if p_values[index] > alpha / (len(p_values) - rank):
            break
        real[index] = True
    return real


def satterthwaite(seed_variance: float, example_variance: float, pairs: int) -> float:
    """Welch–Satterthwaite degrees of freedom: the seed term has n − 1, the bootstrap term counts as exact."""
    if seed_variance <= 0:
        return math.inf
    return (seed_variance + example_variance) ** 2 * (pairs - 1) / seed_variance**2


def t_quantile(confidence: float, df: float) -> float:
    """The two-sided `confidence` quantile of Student's t (the normal one for infinite df)."""
    upper = 1 - (1 - confidence) / 2
    return float(stats.norm.ppf(upper) if math.isinf(df) else stats.t.ppf(upper, df))


def paired_difference(
    cell: list[ExampleCounts],
    baseline: list[ExampleCounts],
    seed_differences: list[float],
    seed: int = 0,
    resamples: int = RESAMPLES,
) -> Difference:
    """The `Difference` of seed-paired runs (cell[s] against baseline[s], scored on the same test examples)."""
    examples = len(cell[0].counts)
    weights = resample_weights(examples, resamples, seed)
    per_seed = bootstrap_differences(cell, baseline, weights)  # (n, R)
    mean_over_seeds = per_seed.mean(axis=0)
    n = len(seed_differences)
    each, together = float(per_seed.var(axis=1, ddof=1).mean()), float(mean_over_seeds.var(ddof=1))
    shared = together - (each - together) / (n - 1) if n > 1 else together
    low, high = np.percentile(mean_over_seeds, [100 * (1 - CONFIDENCE) / 2, 100 * (1 + CONFIDENCE) / 2])
    seed_variance = float(np.var(seed_differences, ddof=1)) / n if n > 1 else 0.0
    return Difference(list(seed_differences), seed_variance, max(0.0, shared), (float(low), float(high)), examples)


@lru_cache(maxsize=32)
def sequential_confidence(first: int, last: int, confidence: float = CONFIDENCE, simulations: int = 20_000) -> float:
    """The per-look confidence level that keeps the overall false-"real" rate at 1 − `confidence` when a cell is
    looked at after `first`, `first` + 1, ..., `last` paired seeds and stopped as soon as its interval excludes zero
    (a Pocock boundary for Student's t, found by simulating seed differences with no true effect).

    Looking again after every added seed and stopping at the first interval that excludes zero would otherwise call a
    non-difference real far more often than the nominal 5%."""
    if first >= last:
        return confidence
    rng = np.random.default_rng(0)
    draws = rng.standard_normal((simulations, last))
    sizes = np.arange(first, last + 1)
    cumulative, squares = np.cumsum(draws, axis=1), np.cumsum(draws**2, axis=1)
    means = cumulative[:, sizes - 1] / sizes
    variances = (squares[:, sizes - 1] - sizes * means**2) / (sizes - 1)
    t_values = np.abs(means) / np.sqrt(variances / sizes)
    low, high = confidence, 1 - 1e-6
    for _ in range(40):  # bisection on the per-look level
        level = (low + high) / 2
        limits = stats.t.ppf(1 - (1 - level) / 2, sizes - 1)
        rate = float(np.mean((t_values > limits).any(axis=1)))
        low, high = (level, high) if rate > 1 - confidence else (low, level)
    return high
