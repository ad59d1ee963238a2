"""`language-modeling`: pretraining (or continued pretraining) on raw text: causal or bidirectional language modeling.

Its recipe section (`section`), prediction record and compared scores (`records`) and its adapter
(`adapter`, imported when a run needs it)."""

from __future__ import annotations

from pipeline.tasks.language_modeling.records import BlockRecord, compared
from pipeline.tasks.language_modeling.section import LanguageModelingTask
from pipeline.tasks.task_type import TaskType


def _adapter() -> type:
    from pipeline.tasks.language_modeling.adapter import LanguageModeling

    return LanguageModeling


TASK = TaskType("language-modeling", LanguageModelingTask, _adapter, BlockRecord, compared)
