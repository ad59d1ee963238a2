"""Matthews correlation coefficient, multi-class."""

import pipeline.evaluation.metrics.classification as classification


class MatthewsCorrelation(classification.ClassificationMetric):
    """Matthews correlation coefficient, multi-class."""

    def _compute(self, predictions, references):
        return {"matthews_correlation": classification.matthews_correlation(predictions, references)}
