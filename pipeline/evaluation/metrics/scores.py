"""The built-in scores as plain functions (NumPy, SciPy, seqeval): what a run computes for a known metric name.

The `evaluate` metric scripts beside this file wrap the same functions, so `evaluate.load("…/f1.py")` gives the same
numbers; a run calls the functions directly, since importing `evaluate` costs about 2 s (it imports transformers'
pipelines) and its `compute` writes every prediction to an Arrow table first. Each function takes `predictions` and
`references` and returns the scores a script's `_compute` returns. `evaluate` copies each script into its module
cache, so the scripts import this module absolutely.
"""

from __future__ import annotations

import math
from typing import Any

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


def rates(
    true_positive: np.ndarray, predicted: np.ndarray, actual: np.ndarray, pooled: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall and F1 per class (or label) from its counts; `pooled`: of the summed counts (micro)."""
    if pooled:
        true_positive, predicted, actual = (x.sum(keepdims=True) for x in (true_positive, predicted, actual))
    precision = safe_divide(true_positive, predicted)
    recall = safe_divide(true_positive, actual)
    return precision, recall, safe_divide(2 * precision * recall, precision + recall)


def precision_recall_f1(predictions: list[int], references: list[int], average: str) -> tuple[float, float, float]:
    """Precision, recall and F1 averaged `macro` (unweighted over classes), `micro` or `weighted` (by support)."""
    if average not in AVERAGES:
        raise ValueError(f"average must be one of {AVERAGES}, got {average!r}")
    matrix = confusion_matrix(predictions, references)
    actual = matrix.sum(axis=1).astype(float)
    precision, recall, f1 = rates(
        np.diag(matrix).astype(float), matrix.sum(axis=0).astype(float), actual, pooled=average == "micro"
    )
    actual = actual.sum(keepdims=True) if average == "micro" else actual
    weights = actual / actual.sum() if average == "weighted" else np.full(len(actual), 1 / len(actual))
    return float(precision @ weights), float(recall @ weights), float(f1 @ weights)


def accuracy(predictions: list[int], references: list[int]) -> dict[str, float]:
    matches = [int(p == r) for p, r in zip(predictions, references, strict=True)]
    return {"accuracy": sum(matches) / len(matches) if matches else 0.0}


def precision(predictions: list[int], references: list[int], average: str = "macro") -> dict[str, float]:
    return {"precision": precision_recall_f1(predictions, references, average)[0]}


def recall(predictions: list[int], references: list[int], average: str = "macro") -> dict[str, float]:
    return {"recall": precision_recall_f1(predictions, references, average)[1]}


def f1(predictions: list[int], references: list[int], average: str = "macro") -> dict[str, float]:
    return {"f1": precision_recall_f1(predictions, references, average)[2]}


def matthews_correlation(predictions: list[int], references: list[int]) -> dict[str, float]:
    """Multi-class Matthews correlation coefficient (Gorodkin's R_K); 0 when undefined."""
    matrix = confusion_matrix(predictions, references).astype(float)
    total, correct = matrix.sum(), np.trace(matrix)
    predicted, actual = matrix.sum(axis=0), matrix.sum(axis=1)
    numerator = correct * total - predicted @ actual
    denominator = np.sqrt((total**2 - predicted @ predicted) * (total**2 - actual @ actual))
    return {"matthews_correlation": float(numerator / denominator) if denominator > 0 else 0.0}


def correlation(predictions: list[float], references: list[float], method: str = "pearson") -> dict[str, float]:
    """`pearson` (linear) or `spearman` (rank) correlation; NaN where either side is constant."""
    from scipy import stats

    if len(predictions) < 2 or len(set(predictions)) < 2 or len(set(references)) < 2:
        return {method: math.nan}
    function = stats.pearsonr if method == "pearson" else stats.spearmanr
    return {method: float(function(predictions, references)[0])}


def regression_errors(predictions: list[float], references: list[float], kind: str = "mse") -> dict[str, float]:
    """`mse`: mean of (prediction − reference)²; `mae`: mean of |prediction − reference|."""
    errors = np.asarray(predictions, dtype=np.float64) - np.asarray(references, dtype=np.float64)
    return {kind: float(np.mean(errors**2) if kind == "mse" else np.mean(np.abs(errors)))}


def retrieval_gain(rank: int, measure: str, k: int) -> float:
    """One query's measure from the rank (1 = first) of its one relevant document: `recall` (found in the top k),
    `mrr` (1 / rank within the top k) or `ndcg` (1 / log2(rank + 1) within the top k; the ideal DCG is 1)."""
    if rank > k:
        return 0.0
    return {"recall": 1.0, "mrr": 1.0 / rank, "ndcg": 1.0 / math.log2(rank + 1)}[measure]


def retrieval(predictions: list[int], references: list[int], measure: str = "ndcg", k: int = 10) -> dict[str, float]:
    """The mean over queries of `retrieval_gain` (predictions: each query's relevant rank; references unused)."""
    return {f"{measure}@{k}": float(np.mean([retrieval_gain(int(rank), measure, k) for rank in predictions]))}


def label_counts(predictions: np.ndarray, references: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per label: true positives, predicted positives, actual positives; inputs (examples, labels) of 0/1."""
    return (predictions * references).sum(axis=0), predictions.sum(axis=0), references.sum(axis=0)


def multilabel(
    predictions: list[list[int]],
    references: list[list[int]],
    score: str = "f1",
    average: str = "micro",
    per_label: bool = False,
    label_names: list[str] | None = None,
) -> dict[str, float]:
    """`score` averaged `micro` (over all label decisions) or `macro` (over labels), or with `per_label` the
    precision, recall and F1 of every label."""
    counts = label_counts(np.asarray(predictions, dtype=np.float64), np.asarray(references, dtype=np.float64))
    precisions, recalls, f1s = rates(*counts, pooled=average == "micro" and not per_label)
    if per_label:
        names = label_names or [str(i) for i in range(len(f1s))]
        return {
            f"per_label/{name}/{key}": float(values[i])
            for i, name in enumerate(names)
            for key, values in (("precision", precisions), ("recall", recalls), ("f1", f1s))
        }
    return {score: float({"f1": f1s, "precision": precisions, "recall": recalls}[score].mean())}


ENTITY_AVERAGES = ("micro avg", "macro avg", "weighted avg")


def entities(predictions: list[list[str]], references: list[list[str]]) -> dict[str, Any]:
    """Entity-level precision, recall and F1 (a predicted entity counts only when its span and type both match,
    seqeval's default mode), micro-averaged, and F1 per entity type."""
    from seqeval.metrics import classification_report

    report = classification_report(references, predictions, output_dict=True, zero_division=0)
    micro = report.get("micro avg", {"precision": 0.0, "recall": 0.0, "f1-score": 0.0})
    scores = {"entity_precision": micro["precision"], "entity_recall": micro["recall"], "entity_f1": micro["f1-score"]}
    for entity_type, row in report.items():
        if entity_type not in ENTITY_AVERAGES:
            scores[f"entity_f1/{entity_type}"] = row["f1-score"]
    return scores


def perplexity(predictions: list[float], references: list[int]) -> dict[str, float]:
    """exp(Σ summed token NLL / Σ predicted tokens), the NLL in nats."""
    tokens = sum(references)
    return {"perplexity": math.exp(sum(predictions) / tokens) if tokens else float("nan")}


def word_perplexity(predictions: list[float], references: list[float]) -> dict[str, float]:
    """exp(Σ summed token NLL / Σ words of text), the NLL in nats."""
    words = sum(references)
    return {"word_perplexity": math.exp(sum(predictions) / words) if words > 0 else float("nan")}
