"""What `token-classification` writes per sentence, and the scores a comparison of runs tests from it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.evaluation.counts import (
    CountedMetric,
    class_counts,
    macro_f1,
    micro_f1,
    pair_labels,
    ratio,
    ratio_counts,
    set_counts,
)
from pipeline.tasks.records import PredictionRecord


@dataclass
class TaggingRecord(PredictionRecord):
    """The gold and predicted tag of every scored word of one sentence; for BIO-style tags also its gold and predicted
    entities as [type, first word, last word]."""

    tags: list[str]
    predictions: list[str]
    entities: list[list] | None = None
    predicted_entities: list[list] | None = None

    def example_score(self) -> tuple[str, float, int]:
        return (
            "word accuracy",
            float(sum(g == p for g, p in zip(self.tags, self.predictions, strict=True))),
            len(self.tags),
        )

    def confusion_pairs(self) -> list[tuple[str, str]]:
        return list(zip(self.tags, self.predictions, strict=True))


def _pairs(records: Sequence[TaggingRecord]) -> list[list[tuple[str, str]]]:
    return [record.confusion_pairs() for record in records]


def _entities(records: Sequence[TaggingRecord]) -> list[tuple[set, set]]:
    return [({tuple(e) for e in x.entities or []}, {tuple(e) for e in x.predicted_entities or []}) for x in records]


COMPARED = (
    CountedMetric("accuracy", lambda r, c: ratio_counts([(x.example_score()[1], len(x.tags)) for x in r]), ratio),
    CountedMetric("f1_macro", lambda r, c: class_counts(_pairs(r), c), macro_f1, lambda r: pair_labels(_pairs(r))),
    CountedMetric("entity_f1", lambda r, c: set_counts(_entities(r)), micro_f1, needs="entities"),
)
