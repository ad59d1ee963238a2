"""Correlation of predictions with references: `pearson` (linear) or `spearman` (rank)."""

import pipeline.evaluation.metrics.scores as scores
import pipeline.evaluation.metrics.values as values


class Correlation(values.ValueMetric):
    """Correlation of predictions with references: `pearson` (linear) or `spearman` (rank)."""

    def _compute(self, predictions, references, method="pearson"):
        return scores.correlation(predictions, references, method)
