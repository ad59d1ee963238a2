"""Precision for single-label classification, averaged macro, micro or weighted."""

import pipeline.evaluation.metrics.classification as classification


class Precision(classification.ClassificationMetric):
    """Precision for single-label classification, averaged macro, micro or weighted."""

    def _compute(self, predictions, references, average="macro"):
        scores = classification.precision_recall_f1(predictions, references, average)
        return {"precision": scores[0]}
