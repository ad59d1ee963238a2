"""`token-classification`: one tag per word of pre-split text (part-of-speech tagging, chunking, named entities).

Its recipe section (`section`), prediction record and compared scores (`records`) and its adapter
(`adapter`, imported when a run needs it)."""

from __future__ import annotations

from pipeline.tasks.task_type import TaskType
from pipeline.tasks.token_classification.records import COMPARED, TaggingRecord
from pipeline.tasks.token_classification.section import TokenClassificationTask


def _adapter() -> type:
    from pipeline.tasks.token_classification.adapter import TokenClassification

    return TokenClassification


TASK = TaskType("token-classification", TokenClassificationTask, _adapter, TaggingRecord, COMPARED)
