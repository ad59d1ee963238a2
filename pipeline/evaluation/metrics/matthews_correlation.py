"""Matthews correlation coefficient, multi-class."""

import pipeline.evaluation.metrics.classification as classification
import pipeline.evaluation.metrics.scores as scores


class MatthewsCorrelation(classification.ClassificationMetric):
    """Matthews correlation coefficient, multi-class."""

    def _compute(self, predictions, references):
        return scores.matthews_correlation(predictions, references)
