"""`token-classification`: one tag per word of pre-split text (part-of-speech tagging, chunking, named entities).

Its recipe section (`section`), prediction record and compared scores (`records`) and its adapter
(`adapter`, imported when a run needs it)."""

from __future__ import annotations

from pipeline.lazy import Lazy
from pipeline.tasks.task_type import TaskType
from pipeline.tasks.token_classification.records import COMPARED, TaggingRecord
from pipeline.tasks.token_classification.section import TokenClassificationTask

TASK = TaskType(
    "token-classification",
    TokenClassificationTask,
    Lazy("pipeline.tasks.token_classification.adapter:TokenClassification"),
    TaggingRecord,
    COMPARED,
    pipeline_tag="token-classification",
)
