"""What `multi-label` writes per example, and the scores a comparison of runs tests from it."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.evaluation.counts import CountedMetric, micro_f1, set_counts
from pipeline.tasks.records import PredictionRecord


@dataclass
class MultiLabelRecord(PredictionRecord):
    """The true and the predicted labels of one example, and every label's probability."""

    labels: list[str]
    predicted: list[str]
    probabilities: dict[str, float]

    def example_score(self) -> tuple[str, float, int]:
        return "exact match", float(set(self.labels) == set(self.predicted)), 1


COMPARED = (
    CountedMetric("f1_micro", lambda r, c: set_counts([(set(x.labels), set(x.predicted)) for x in r]), micro_f1),
)
