"""Single-label classification scores from a confusion matrix (NumPy only), shared by the metric scripts.

`evaluate` copies each metric script into its module cache, so the scripts import this module absolutely.
"""

from __future__ import annotations

import datasets
import evaluate
import numpy as np

AVERAGES = ("macro", "micro", "weighted")


def confusion_matrix(predictions: list[int] | np.ndarray, references: list[int] | np.ndarray) -> np.ndarray:
    """Counts `[true_class, predicted_class]` over the union of labels seen in either list."""
    predicted, actual = np.asarray(predictions), np.asarray(references)
    labels, codes = np.unique(np.concatenate([actual, predicted]), return_inverse=True)
    true_codes, guess_codes = codes[: len(actual)], codes[len(actual) :]
    return np.bincount(true_codes * len(labels) + guess_codes, minlength=len(labels) ** 2).reshape(
        len(labels), len(labels)
    )


def safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Element-wise division that gives 0 where the denominator is 0 (sklearn's `zero_division=0`)."""
    return np.divide(numerator, denominator, out=np.zeros_like(numerator, dtype=float), where=denominator > 0)


def precision_recall_f1(predictions: list[int], references: list[int], average: str) -> tuple[float, float, float]:
    """Precision, recall and F1 averaged `macro` (unweighted over classes), `micro` or `weighted` (by support)."""
    if average not in AVERAGES:
        raise ValueError(f"average must be one of {AVERAGES}, got {average!r}")
    matrix = confusion_matrix(predictions, references)
    true_positive = np.diag(matrix).astype(float)
    predicted = matrix.sum(axis=0).astype(float)
    actual = matrix.sum(axis=1).astype(float)
    if average == "micro":
        true_positive, predicted, actual = (
            true_positive.sum(keepdims=True),
            predicted.sum(keepdims=True),
            actual.sum(keepdims=True),
        )
    precision = safe_divide(true_positive, predicted)
    recall = safe_divide(true_positive, actual)
    f1 = safe_divide(2 * precision * recall, precision + recall)
    weights = actual / actual.sum() if average == "weighted" else np.full(len(actual), 1 / len(actual))
    return float(precision @ weights), float(recall @ weights), float(f1 @ weights)


def matthews_correlation(predictions: list[int], references: list[int]) -> float:
    """Multi-class Matthews correlation coefficient (Gorodkin's R_K); 0 when undefined."""
    matrix = confusion_matrix(predictions, references).astype(float)
    total, correct = matrix.sum(), np.trace(matrix)
    predicted, actual = matrix.sum(axis=0), matrix.sum(axis=1)
    numerator = correct * total - predicted @ actual
    denominator = np.sqrt((total**2 - predicted @ predicted) * (total**2 - actual @ actual))
    return float(numerator / denominator) if denominator > 0 else 0.0


class ClassificationMetric(evaluate.Metric):
    """Base of the project's metric scripts: integer class ids in, one score out."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=(self.__doc__ or "").strip(),
            citation="",
            inputs_description="predictions, references: lists of integer class ids",
            features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
        )
