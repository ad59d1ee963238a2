"""The recipe section of `task.type: multi-label` (data only)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from pipeline.recipe.tasks import ColumnKind
from pipeline.tasks.sequence_classification.section import SequenceClassificationTask


class MultiLabelTask(SequenceClassificationTask):
    type: Literal["multi-label"] = Field(description="The task; selects head, data adapter, metrics.")
    label_column: str = Field(
        "labels", description="Column holding each row's labels: a list, or one string split by `label_delimiter`."
    )
    label_delimiter: str | None = Field(
        None, min_length=1, description="Split a string of labels on this (e.g. `,`); null: the column holds lists."
    )

    threshold: float = Field(0.5, gt=0, lt=1, description="A label is predicted when its probability reaches this.")
    metric_inputs: ClassVar[tuple[str, ...]] = ("label_sets",)
    default_metrics: ClassVar[list[str] | None] = [
        "f1_micro",
        "f1_macro",
        "precision_micro",
        "recall_micro",
        "per_label",
    ]
    label_kind: ClassVar[ColumnKind] = "label_set"
