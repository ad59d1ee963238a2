"""`language-modeling`: pretraining (or continued pretraining) on raw text: causal or bidirectional language modeling.

Its recipe section (`section`), prediction record and compared scores (`records`) and its adapter
(`adapter`, imported when a run needs it)."""

from __future__ import annotations

from pipeline.lazy import Lazy
from pipeline.tasks.language_modeling.records import BlockRecord, compared
from pipeline.tasks.language_modeling.section import LanguageModelingTask
from pipeline.tasks.task_type import TaskType

TASK = TaskType(
    "language-modeling",
    LanguageModelingTask,
    Lazy("pipeline.tasks.language_modeling.adapter:LanguageModeling"),
    BlockRecord,
    compared,
    pipeline_tag="text-generation",
    reads_token_table=True,
)
