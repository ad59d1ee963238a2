"""F1 for single-label classification, averaged macro, micro or weighted."""

import pipeline.evaluation.metrics.classification as classification
import pipeline.evaluation.metrics.scores as scores


class F1(classification.ClassificationMetric):
    """F1 for single-label classification, averaged macro, micro or weighted."""

    def _compute(self, predictions, references, average="macro"):
        return scores.f1(predictions, references, average)
