"""`sequence-classification`: one label per text or text pair (topic, sentiment, genre...).

Its recipe section (`section`), prediction record and compared scores (`records`) and its adapter
(`adapter`, imported when a run needs it), and its classical baseline (`classical`)."""

from __future__ import annotations

from typing import Any

from pipeline.tasks.sequence_classification.records import COMPARED, ClassificationRecord
from pipeline.tasks.sequence_classification.section import SequenceClassificationTask
from pipeline.tasks.task_type import TaskType


def _adapter() -> type:
    from pipeline.tasks.sequence_classification.adapter import SequenceClassification

    return SequenceClassification


def _classical(recipe: Any) -> dict[str, Any] | None:
    from pipeline.tasks.sequence_classification.classical import classical_baseline

    return classical_baseline(recipe)


TASK = TaskType(
    "sequence-classification", SequenceClassificationTask, _adapter, ClassificationRecord, COMPARED, _classical
)
