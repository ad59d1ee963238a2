"""What `sequence-classification` writes per example, and the scores a comparison of runs tests from it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.evaluation.counts import CountedMetric, class_counts, macro_f1, pair_labels, ratio, ratio_counts
from pipeline.tasks.records import PredictionRecord


@dataclass
class ClassificationRecord(PredictionRecord):
    """The gold and predicted label of one example, and the probability of every class (in label order)."""

    label: str
    prediction: str
    probabilities: list[float]

    def example_score(self) -> tuple[str, float, int]:
        return "accuracy", float(self.label == self.prediction), 1

    def confusion_pairs(self) -> list[tuple[str, str]]:
        return [(self.label, self.prediction)]


def _pairs(records: Sequence[ClassificationRecord]) -> list[list[tuple[str, str]]]:
    return [record.confusion_pairs() for record in records]


COMPARED = (
    CountedMetric("accuracy", lambda r, c: ratio_counts([(float(x.label == x.prediction), 1.0) for x in r]), ratio),
    CountedMetric("f1_macro", lambda r, c: class_counts(_pairs(r), c), macro_f1, lambda r: pair_labels(_pairs(r))),
)
