"""Accuracy: the fraction of predictions equal to their reference."""

import pipeline.evaluation.metrics.classification as classification


class Accuracy(classification.ClassificationMetric):
    """Accuracy: the fraction of predictions equal to their reference."""

    def _compute(self, predictions, references):
        matches = [int(p == r) for p, r in zip(predictions, references, strict=True)]
        return {"accuracy": sum(matches) / len(matches) if matches else 0.0}
