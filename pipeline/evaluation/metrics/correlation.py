"""Pearson or Spearman correlation of predicted and true values (scipy); undefined (a constant side) is nan."""

import math

from scipy import stats

import pipeline.evaluation.metrics.values as values


class Correlation(values.ValueMetric):
    """Correlation of predictions with references: `pearson` (linear) or `spearman` (rank)."""

    def _compute(self, predictions, references, method="pearson"):
        if len(predictions) < 2 or len(set(predictions)) < 2 or len(set(references)) < 2:
            return {method: math.nan}
        function = stats.pearsonr if method == "pearson" else stats.spearmanr
        return {method: float(function(predictions, references)[0])}
