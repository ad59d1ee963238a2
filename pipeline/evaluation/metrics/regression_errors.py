"""Mean squared or mean absolute error of predicted values."""

import numpy as np

import pipeline.evaluation.metrics.values as values


class RegressionErrors(values.ValueMetric):
    """`mse`: mean of (prediction − reference)²; `mae`: mean of |prediction − reference|."""

    def _compute(self, predictions, references, kind="mse"):
        errors = np.asarray(predictions, dtype=np.float64) - np.asarray(references, dtype=np.float64)
        return {kind: float(np.mean(errors**2) if kind == "mse" else np.mean(np.abs(errors)))}
