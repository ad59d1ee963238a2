"""Precision, recall and F1 of multi-label predictions (0/1 vectors over the labels), micro or macro averaged, or
per label."""

import datasets
import evaluate
import numpy as np

import pipeline.evaluation.metrics.classification as classification


def label_counts(predictions: np.ndarray, references: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per label: true positives, predicted positives, actual positives; inputs (examples, labels) of 0/1."""
    return (predictions * references).sum(axis=0), predictions.sum(axis=0), references.sum(axis=0)


class MultiLabelScores(evaluate.Metric):
    """`score` (f1, precision or recall) averaged `micro` (over all label decisions) or `macro` (over labels), or,
    with `per_label`, precision, recall and F1 of every label (named by `label_names`)."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=(self.__doc__ or "").strip(),
            citation="",
            inputs_description="predictions, references: one 0/1 vector over the labels per example",
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("int8")),
                    "references": datasets.Sequence(datasets.Value("int8")),
                }
            ),
        )

    def _compute(self, predictions, references, score="f1", average="micro", per_label=False, label_names=None):
        true_positive, predicted, actual = label_counts(
            np.asarray(predictions, dtype=np.float64), np.asarray(references, dtype=np.float64)
        )
        if average == "micro" and not per_label:
            true_positive, predicted, actual = (
                true_positive.sum(keepdims=True),
                predicted.sum(keepdims=True),
                actual.sum(keepdims=True),
            )
        precision = classification.safe_divide(true_positive, predicted)
        recall = classification.safe_divide(true_positive, actual)
        f1 = classification.safe_divide(2 * precision * recall, precision + recall)
        if per_label:
            names = label_names or [str(i) for i in range(len(f1))]
            return {
                f"per_label/{name}/{key}": float(values[i])
                for i, name in enumerate(names)
                for key, values in (("precision", precision), ("recall", recall), ("f1", f1))
            }
        return {score: float({"f1": f1, "precision": precision, "recall": recall}[score].mean())}
