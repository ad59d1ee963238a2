"""Precision for single-label classification, averaged macro, micro or weighted."""

import pipeline.evaluation.metrics.classification as classification
import pipeline.evaluation.metrics.scores as scores


class Precision(classification.ClassificationMetric):
    """Precision for single-label classification, averaged macro, micro or weighted."""

    def _compute(self, predictions, references, average="macro"):
        return scores.precision(predictions, references, average)
