"""`mse`: mean of (prediction − reference)²; `mae`: mean of |prediction − reference|."""

import pipeline.evaluation.metrics.scores as scores
import pipeline.evaluation.metrics.values as values


class RegressionErrors(values.ValueMetric):
    """`mse`: mean of (prediction − reference)²; `mae`: mean of |prediction − reference|."""

    def _compute(self, predictions, references, kind="mse"):
        return scores.regression_errors(predictions, references, kind)
