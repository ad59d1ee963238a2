"""The scores a comparison tests, each as per-example counts whose sums give the score (`intervals.ExampleCounts`).

Accuracy is correct / examples, macro-F1 a function of per-class true positives, false positives and false
negatives, perplexity's loss summed NLL / tokens: written this way, every bootstrap resample of the test examples is
one matrix product, and the score of the whole split is exactly what the run reported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.sweeps.intervals import ExampleCounts

Record = dict[str, Any]


def ratio(totals: np.ndarray) -> np.ndarray:
    """Column 0 over column 1 (0 where column 1 is 0): accuracy, word accuracy, mean squared error, mean NLL."""
    return np.divide(totals[..., 0], totals[..., 1], out=np.zeros(totals.shape[:-1]), where=totals[..., 1] > 0)


def f1_of(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    denominator = 2 * tp + fp + fn
    return np.divide(2 * tp, denominator, out=np.zeros(np.broadcast(tp, denominator).shape), where=denominator > 0)


def micro_f1(totals: np.ndarray) -> np.ndarray:
    """Totals (..., 3): true positives, false positives, false negatives."""
    return f1_of(totals[..., 0], totals[..., 1], totals[..., 2])


def macro_f1(totals: np.ndarray) -> np.ndarray:
    """Totals (..., 3 × classes): per class (tp, fp, fn); F1 averaged over the classes that occur as gold or
    prediction (as `pipeline.evaluation.metrics.classification` averages over the labels it sees)."""
    per_class = totals.reshape(*totals.shape[:-1], -1, 3)
    tp, fp, fn = per_class[..., 0], per_class[..., 1], per_class[..., 2]
    present = (tp + fp + fn) > 0
    return np.divide(
        (f1_of(tp, fp, fn) * present).sum(axis=-1),
        present.sum(axis=-1),
        out=np.zeros(tp.shape[:-1]),
        where=present.sum(axis=-1) > 0,
    )


def class_counts(pairs: list[list[tuple[str, str]]], classes: list[str]) -> np.ndarray:
    """(examples, 3 × classes): per example, per class, its (gold, predicted) pairs' tp, fp and fn."""
    index = {label: i for i, label in enumerate(classes)}
    counts = np.zeros((len(pairs), len(classes), 3))
    for row, example in enumerate(pairs):
        for gold, guess in example:
            if gold == guess:
                counts[row, index[gold], 0] += 1
            else:
                counts[row, index[guess], 1] += 1
                counts[row, index[gold], 2] += 1
    return counts.reshape(len(pairs), -1)


@dataclass(frozen=True)
class CountedMetric:
    """A compared score: per-example counts from a run's prediction records, and the score of their sums.

    counts(records, classes) → (examples, k); `classes` is the sorted label set of every run compared (so the
    columns of per-class counts line up), gathered by `labels(records)`."""

    name: str
    counts: Callable[[list[Record], list[str]], np.ndarray]
    score: Callable[[np.ndarray], np.ndarray]
    labels: Callable[[list[Record]], set[str]] = lambda records: set()

    def of(self, records: list[Record], classes: list[str]) -> ExampleCounts:
        return ExampleCounts(self.counts(records, classes), self.score)


def _label_pairs(records: list[Record]) -> list[list[tuple[str, str]]]:
    return [[(str(r["label"]), str(r["prediction"]))] for r in records]


def _tag_pairs(records: list[Record]) -> list[list[tuple[str, str]]]:
    return [list(zip(r["tags"], r["predictions"], strict=True)) for r in records]


def _entity_counts(records: list[Record], classes: list[str]) -> np.ndarray:
    rows = []
    for r in records:
        gold, guess = {tuple(e) for e in r["entities"]}, {tuple(e) for e in r["predicted_entities"]}
        rows.append([len(gold & guess), len(guess - gold), len(gold - guess)])
    return np.asarray(rows, dtype=float).reshape(len(records), 3)


def _set_counts(records: list[Record], classes: list[str]) -> np.ndarray:
    rows = []
    for r in records:
        gold, guess = set(r["labels"]), set(r["predicted"])
        rows.append([len(gold & guess), len(guess - gold), len(gold - guess)])
    return np.asarray(rows, dtype=float).reshape(len(records), 3)


def _pair_labels(pairs: Callable[[list[Record]], list[list[tuple[str, str]]]]) -> Callable[[list[Record]], set[str]]:
    return lambda records: {label for example in pairs(records) for pair in example for label in pair}


SEQUENCE_CLASSIFICATION = [
    CountedMetric(
        "accuracy",
        lambda r, c: np.array([[float(x["label"] == x["prediction"]), 1.0] for x in r]).reshape(len(r), 2),
        ratio,
    ),
    CountedMetric("f1_macro", lambda r, c: class_counts(_label_pairs(r), c), macro_f1, _pair_labels(_label_pairs)),
]
TOKEN_CLASSIFICATION = [
    CountedMetric(
        "accuracy",
        lambda r, c: np.array(
            [[sum(g == p for g, p in zip(x["tags"], x["predictions"], strict=True)), len(x["tags"])] for x in r],
            dtype=float,
        ).reshape(len(r), 2),
        ratio,
    ),
    CountedMetric("f1_macro", lambda r, c: class_counts(_tag_pairs(r), c), macro_f1, _pair_labels(_tag_pairs)),
    CountedMetric("entity_f1", _entity_counts, micro_f1),
]
REGRESSION = [
    CountedMetric(
        "mse", lambda r, c: np.array([[(x["prediction"] - x["label"]) ** 2, 1.0] for x in r]).reshape(len(r), 2), ratio
    ),
    CountedMetric(
        "mae", lambda r, c: np.array([[abs(x["prediction"] - x["label"]), 1.0] for x in r]).reshape(len(r), 2), ratio
    ),
]
MULTI_LABEL = [CountedMetric("f1_micro", _set_counts, micro_f1)]
LANGUAGE_MODELING = [
    CountedMetric(
        "loss",
        lambda r, c: np.array([[x["nll"], x["predicted_tokens"]] for x in r], dtype=float).reshape(len(r), 2),
        ratio,
    )
]

COMPARED: dict[str, list[CountedMetric]] = {
    "sequence-classification": SEQUENCE_CLASSIFICATION,
    "token-classification": TOKEN_CLASSIFICATION,
    "regression": REGRESSION,
    "multi-label": MULTI_LABEL,
    "language-modeling": LANGUAGE_MODELING,
}


def compared_metrics(task_type: str, reported: set[str], records: list[Record]) -> list[CountedMetric]:
    """The scores of a task type that the runs reported (and whose records hold what they need)."""
    usable = []
    for metric in COMPARED.get(task_type, []):
        if metric.name not in reported and metric.name != "loss":
            continue
        if metric.name == "entity_f1" and records and "entities" not in records[0]:
            continue
        usable.append(metric)
    return usable
