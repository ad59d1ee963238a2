"""Scores as per-example counts: accuracy is correct / examples, macro-F1 a function of per-class true positives,
false positives and false negatives, the mean NLL summed NLL / tokens. Written this way, a score of any subset or
resample of the test examples is the score of summed counts (one matrix product per bootstrap resample), and the
score of the whole split is exactly the one the run reported. Each task type lists the scores sweeps compare as
`CountedMetric`s over its prediction records.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# A score of summed counts: totals (..., k) → score (...).
Score = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class ExampleCounts:
    """One run's per-example counts for a score: `counts` (examples, k) whose column sums give the score."""

    counts: np.ndarray
    score: Score

    def total_score(self) -> float:
        return float(self.score(self.counts.sum(axis=0)))


@dataclass(frozen=True)
class CountedMetric:
    """A compared score: per-example counts from a run's prediction records, and the score of their sums.

    counts(records, classes) → (examples, k); `classes` is the sorted label set of every run compared (so that
    per-class columns line up), gathered by `labels(records)`."""

    name: str
    counts: Callable[[Sequence[Any], list[str]], np.ndarray]
    score: Score
    labels: Callable[[Sequence[Any]], set[str]] = lambda records: set()
    needs: str | None = None  # a record field the score needs (None where every record has it)
    per_token: bool = False  # its value depends on how a tokenizer cuts text: not compared across tokenizers

    def of(self, records: Sequence[Any], classes: list[str]) -> ExampleCounts:
        return ExampleCounts(self.counts(records, classes), self.score)

    def applies_to(self, records: Sequence[Any]) -> bool:
        return self.needs is None or (bool(records) and getattr(records[0], self.needs, None) is not None)


def ratio(totals: np.ndarray) -> np.ndarray:
    """Column 0 over column 1 (0 where column 1 is 0): accuracy, word accuracy, mean squared error, mean NLL."""
    return np.divide(totals[..., 0], totals[..., 1], out=np.zeros(totals.shape[:-1]), where=totals[..., 1] > 0)


def ratio_counts(pairs: Sequence[tuple[float, float]]) -> np.ndarray:
    """(examples, 2): each example's numerator and denominator."""
    return np.asarray(pairs, dtype=float).reshape(len(pairs), 2)


def f1_of(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    denominator = 2 * tp + fp + fn
    return np.divide(2 * tp, denominator, out=np.zeros(np.broadcast(tp, denominator).shape), where=denominator > 0)


def micro_f1(totals: np.ndarray) -> np.ndarray:
    """Totals (..., 3): true positives, false positives, false negatives."""
    return f1_of(totals[..., 0], totals[..., 1], totals[..., 2])


def set_counts(pairs: Sequence[tuple[set, set]]) -> np.ndarray:
    """(examples, 3): per example, of its (gold set, predicted set), true positives, false positives, false
    negatives."""
    rows = [[len(gold & guess), len(guess - gold), len(gold - guess)] for gold, guess in pairs]
    return np.asarray(rows, dtype=float).reshape(len(pairs), 3)


def macro_f1(totals: np.ndarray) -> np.ndarray:
    """Totals (..., 3 × classes): per class (tp, fp, fn); F1 averaged over the classes that occur as gold or
    prediction (as `pipeline.evaluation.metrics.scores` averages over the labels it sees)."""
    per_class = totals.reshape(*totals.shape[:-1], -1, 3)
    tp, fp, fn = per_class[..., 0], per_class[..., 1], per_class[..., 2]
    present = (tp + fp + fn) > 0
    return np.divide(
        (f1_of(tp, fp, fn) * present).sum(axis=-1),
        present.sum(axis=-1),
        out=np.zeros(tp.shape[:-1]),
        where=present.sum(axis=-1) > 0,
    )


def class_counts(examples: Sequence[Sequence[tuple[str, str]]], classes: list[str]) -> np.ndarray:
    """(examples, 3 × classes): per example, per class, its (gold, predicted) pairs' tp, fp and fn."""
    index = {label: i for i, label in enumerate(classes)}
    counts = np.zeros((len(examples), len(classes), 3))
    for row, pairs in enumerate(examples):
        for gold, guess in pairs:
            if gold == guess:
                counts[row, index[gold], 0] += 1
            else:
                counts[row, index[guess], 1] += 1
                counts[row, index[gold], 2] += 1
    return counts.reshape(len(examples), -1)


def pair_labels(examples: Sequence[Sequence[tuple[str, str]]]) -> set[str]:
    return {label for pairs in examples for pair in pairs for label in pair}
