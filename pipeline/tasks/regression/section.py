"""The recipe section of `task.type: regression` (data only)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from pipeline.recipe.tasks import ColumnKind
from pipeline.tasks.sequence_classification.section import SequenceClassificationTask


class RegressionTask(SequenceClassificationTask):
    type: Literal["regression"] = Field(description="The task; selects head, data adapter, metrics.")
    label_column: str = Field("label", description="Column holding the target: one number per row (MSE loss).")

    metric_inputs: ClassVar[tuple[str, ...]] = ("values",)
    default_metrics: ClassVar[list[str] | None] = ["pearson", "spearman", "mse", "mae"]
    label_kind: ClassVar[ColumnKind] = "number"
