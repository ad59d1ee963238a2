"""The comparison's interval on fixed inputs (no chance involved): seed noise is counted, a large effect is found,
too few seeds give no interval, and the per-example counts reproduce the scores the runs report."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.evaluation.counts import ExampleCounts, macro_f1, ratio
from pipeline.sweeps.intervals import paired_difference, sequential_confidence
from pipeline.tasks.sequence_classification.records import COMPARED as CLASSIFICATION
from pipeline.tasks.sequence_classification.records import ClassificationRecord
from pipeline.tasks.token_classification.records import COMPARED as TAGGING
from pipeline.tasks.token_classification.records import TaggingRecord

EXAMPLES = 1000


def correct_first(share: float, offset: int = 0) -> ExampleCounts:
    """A run that gets `share` of the test examples right: a block of them starting at `offset` (wrapping round)."""
    right = np.zeros(EXAMPLES)
    right[(np.arange(round(share * EXAMPLES)) + offset) % EXAMPLES] = 1
    return ExampleCounts(np.stack([right, np.ones(EXAMPLES)], axis=1), ratio)


def compare(cell: list[ExampleCounts], baseline: list[ExampleCounts]):
    diffs = [c.total_score() - b.total_score() for c, b in zip(cell, baseline, strict=True)]
    return paired_difference(cell, baseline, diffs)


def test_seed_noise_without_a_true_difference_is_not_called_real():
    # Seed by seed the cell wins, loses, wins by several points: the runs differ a lot, the settings not at all.
    cell = [correct_first(0.80, 0), correct_first(0.70, 300), correct_first(0.78, 600)]
    baseline = [correct_first(0.70, 500), correct_first(0.80, 100), correct_first(0.72, 900)]
    difference = compare(cell, baseline)
    assert difference.seed_differences == pytest.approx([0.10, -0.10, 0.06])
    low, high = difference.examples_only
    assert low > 0  # the interval over test examples alone, models held fixed, would call it real
    ci_low, ci_high = difference.interval()
    assert ci_low < 0 < ci_high
    assert ci_high - ci_low > 5 * (high - low)


def test_a_large_true_difference_is_called_real():
    cell = [correct_first(0.90, 0), correct_first(0.91, 10), correct_first(0.89, 20)]
    baseline = [correct_first(0.60, 0), correct_first(0.62, 10), correct_first(0.59, 20)]
    low, high = compare(cell, baseline).interval()
    assert 0.2 < low < 0.3 < high < 0.4


def test_identical_runs_give_a_zero_width_interval_at_zero():
    runs = [correct_first(0.8, k) for k in (0, 1, 2)]
    difference = compare(runs, runs)
    assert difference.interval() == (0.0, 0.0) and difference.examples_only == (0.0, 0.0)


def test_fewer_than_three_seed_pairs_give_no_interval():
    difference = compare([correct_first(0.9), correct_first(0.91)], [correct_first(0.5), correct_first(0.52)])
    assert difference.interval() is None and difference.examples_only[0] > 0.3


def test_test_noise_the_seeds_share_is_counted():
    # Every seed pair differs in the same 60 examples: no seed noise at all, only which test examples were drawn.
    cell = [correct_first(0.56, 0)] * 4
    baseline = [correct_first(0.50, 0)] * 4
    difference = compare(cell, baseline)
    assert difference.seed_variance == 0
    # Sixty wins out of a thousand: the standard error of the mean difference is about sqrt(0.06 × 0.94 / 1000).
    assert difference.example_variance == pytest.approx(0.06 * 0.94 / EXAMPLES, rel=0.15)
    low, _high = difference.interval()
    assert low == pytest.approx(0.06 - 1.96 * np.sqrt(0.06 * 0.94 / EXAMPLES), abs=0.004)


def test_looking_after_every_added_seed_needs_a_stricter_level():
    assert sequential_confidence(3, 3) == 0.95
    level = sequential_confidence(3, 8)
    assert 0.98 < level < 0.999
    assert sequential_confidence(3, 10) > level


def test_counts_reproduce_the_reported_scores():
    from pipeline.evaluation.metrics.scores import precision_recall_f1

    records = [
        ClassificationRecord(i, gold, guess, [])
        for i, (gold, guess) in enumerate([("a", "a"), ("a", "b"), ("b", "b"), ("c", "a"), ("c", "c"), ("b", "d")])
    ]
    classes = sorted({r.label for r in records} | {r.prediction for r in records})
    ids = {label: i for i, label in enumerate(classes)}
    accuracy, f1 = (metric.of(records, classes).total_score() for metric in CLASSIFICATION)
    assert accuracy == pytest.approx(3 / 6)
    expected = precision_recall_f1([ids[r.prediction] for r in records], [ids[r.label] for r in records], "macro")[2]
    assert f1 == pytest.approx(expected)
    tagged = [TaggingRecord(0, ["x", "y"], ["x", "x"]), TaggingRecord(1, ["y"], ["z"])]
    word_accuracy, tag_f1 = (metric.of(tagged, ["x", "y", "z"]).total_score() for metric in TAGGING[:2])
    assert word_accuracy == pytest.approx(1 / 3)
    assert tag_f1 == pytest.approx(precision_recall_f1([0, 0, 2], [0, 1, 1], "macro")[2])
    assert macro_f1(np.zeros(6)) == 0.0


def test_holm_steps_down_from_the_smallest_p():
    from pipeline.sweeps.intervals import holm

    # m = 4 at 5%: 0.001 <= 0.0125, 0.012 <= 0.0167, 0.03 > 0.025 stops it; 0.04 would pass alone
    assert holm([0.03, 0.001, 0.04, 0.012]) == [False, True, False, True]
    assert holm([]) == []


def test_a_grid_of_identical_cells_keeps_its_family_wise_false_alarm_rate():
    """Simulated sweeps of 13 cells × 2 scores against a baseline, every setting the same (seed noise only, 3 seeds):
    the share of sweeps where any comparison is called real, by each interval alone and after Holm's correction."""
    from pipeline.sweeps.intervals import Difference, holm

    rng = np.random.default_rng(0)
    families, comparisons, seeds = 2000, 26, 3
    raw_alarms = corrected_alarms = 0
    for _ in range(families):
        p_values = []
        for _ in range(comparisons):
            diffs = rng.normal(0, 0.02, seeds)  # the seed term as the product estimates it: var(d) / n
            difference = Difference(list(diffs), float(np.var(diffs, ddof=1) / seeds), 0.0, (0.0, 0.0), EXAMPLES)
            p_values.append(difference.p_value())
        raw_alarms += any(p < 0.05 for p in p_values)
        corrected_alarms += any(holm(p_values))
    assert corrected_alarms / families <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / families)
    assert raw_alarms / families > 0.5  # 26 tests at 5% each: most sweeps would call something real
