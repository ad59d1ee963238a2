"""`regression`: one number per text or text pair (e.g. the similarity score of a sentence pair).

Its recipe section (`section`), prediction record and compared scores (`records`) and its adapter
(`adapter`, imported when a run needs it)."""

from __future__ import annotations

from pipeline.lazy import Lazy
from pipeline.tasks.regression.records import COMPARED, RegressionRecord
from pipeline.tasks.regression.section import RegressionTask
from pipeline.tasks.task_type import TaskType

TASK = TaskType(
    "regression",
    RegressionTask,
    Lazy("pipeline.tasks.regression.adapter:Regression"),
    RegressionRecord,
    COMPARED,
    pipeline_tag="text-classification",
)
