"""`regression`: one number per text or text pair (e.g. the similarity score of a sentence pair).

Its recipe section (`section`), prediction record and compared scores (`records`) and its adapter
(`adapter`, imported when a run needs it)."""

from __future__ import annotations

from pipeline.tasks.regression.records import COMPARED, RegressionRecord
from pipeline.tasks.regression.section import RegressionTask
from pipeline.tasks.task_type import TaskType


def _adapter() -> type:
    from pipeline.tasks.regression.adapter import Regression

    return Regression


TASK = TaskType("regression", RegressionTask, _adapter, RegressionRecord, COMPARED)
