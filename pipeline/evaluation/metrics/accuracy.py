"""Accuracy: the fraction of predictions equal to their reference."""

import pipeline.evaluation.metrics.classification as classification
import pipeline.evaluation.metrics.scores as scores


class Accuracy(classification.ClassificationMetric):
    """Accuracy: the fraction of predictions equal to their reference."""

    def _compute(self, predictions, references):
        return scores.accuracy(predictions, references)
