"""`multi-label`: any number of labels per text (topics, emotions, tags).

Its recipe section (`section`), prediction record and compared scores (`records`) and its adapter
(`adapter`, imported when a run needs it)."""

from __future__ import annotations

from pipeline.tasks.multi_label.records import COMPARED, MultiLabelRecord
from pipeline.tasks.multi_label.section import MultiLabelTask
from pipeline.tasks.task_type import TaskType


def _adapter() -> type:
    from pipeline.tasks.multi_label.adapter import MultiLabel

    return MultiLabel


TASK = TaskType("multi-label", MultiLabelTask, _adapter, MultiLabelRecord, COMPARED)
