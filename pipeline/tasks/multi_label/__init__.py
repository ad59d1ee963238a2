"""`multi-label`: any number of labels per text (topics, emotions, tags).

Its recipe section (`section`), prediction record and compared scores (`records`) and its adapter
(`adapter`, imported when a run needs it)."""

from __future__ import annotations

from pipeline.lazy import Lazy
from pipeline.tasks.multi_label.records import COMPARED, MultiLabelRecord
from pipeline.tasks.multi_label.section import MultiLabelTask
from pipeline.tasks.task_type import TaskType

TASK = TaskType(
    "multi-label",
    MultiLabelTask,
    Lazy("pipeline.tasks.multi_label.adapter:MultiLabel"),
    MultiLabelRecord,
    COMPARED,
    pipeline_tag="text-classification",
)
