"""F1 for single-label classification, averaged macro, micro or weighted."""

import pipeline.evaluation.metrics.classification as classification


class F1(classification.ClassificationMetric):
    """F1 for single-label classification, averaged macro, micro or weighted."""

    def _compute(self, predictions, references, average="macro"):
        scores = classification.precision_recall_f1(predictions, references, average)
        return {"f1": scores[2]}
