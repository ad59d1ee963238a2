"""What `regression` writes per example, and the scores a comparison of runs tests from it."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.evaluation.counts import CountedMetric, ratio, ratio_counts
from pipeline.tasks.records import PredictionRecord


@dataclass
class RegressionRecord(PredictionRecord):
    """The true and the predicted value of one example."""

    label: float
    prediction: float

    def example_score(self) -> tuple[str, float, int]:
        return "mean absolute error", abs(float(self.label) - float(self.prediction)), 1


COMPARED = (
    CountedMetric("mse", lambda r, c: ratio_counts([((x.prediction - x.label) ** 2, 1.0) for x in r]), ratio),
    CountedMetric("mae", lambda r, c: ratio_counts([(abs(x.prediction - x.label), 1.0) for x in r]), ratio),
)
