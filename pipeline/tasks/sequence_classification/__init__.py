"""`sequence-classification`: one label per text or text pair (topic, sentiment, genre...).

Its recipe section (`section`), prediction record and compared scores (`records`) and its adapter
(`adapter`, imported when a run needs it), and its
classical baselines (`classical`: TF-IDF, Doc2Vec, a frozen encoder's mean vector)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pipeline.tasks.sequence_classification.records import COMPARED, ClassificationRecord
from pipeline.tasks.sequence_classification.section import SequenceClassificationTask
from pipeline.tasks.task_type import TaskType


def _adapter() -> type:
    from pipeline.tasks.sequence_classification.adapter import SequenceClassification

    return SequenceClassification


def _classical(recipe: Any, methods: Sequence[str], frozen_features: Any = None) -> list[dict[str, Any]]:
    from pipeline.tasks.sequence_classification.classical import classical_baselines

    return classical_baselines(recipe, methods, frozen_features)


TASK = TaskType(
    "sequence-classification",
    SequenceClassificationTask,
    _adapter,
    ClassificationRecord,
    COMPARED,
    _classical,
    {"tfidf": None, "doc2vec": ("gensim", "vectors"), "frozen-mean": None},
)
