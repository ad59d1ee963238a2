"""The recipe section of `task.type: sequence-classification` (data only)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from pipeline.recipe.tasks import ColumnKind, TaskSection


class SequenceClassificationTask(TaskSection):
    type: Literal["sequence-classification"] = Field(description="The task; selects head, data adapter, metrics.")
    text_column: str = Field("text", description="Column holding the input text.")
    text_pair_column: str | None = Field(None, description="Second text column, for sentence-pair inputs.")
    label_column: str = Field("label", description="Column holding the label (string or integer).")

    metric_inputs: ClassVar[tuple[str, ...]] = ("classes",)
    default_metrics: ClassVar[list[str] | None] = ["accuracy", "f1_macro"]
    label_kind: ClassVar[ColumnKind] = "label"

    def stratify_column(self) -> str | None:
        return self.label_column

    def columns(self) -> dict[str, ColumnKind]:
        pair = {self.text_pair_column: "text"} if self.text_pair_column else {}
        return {self.text_column: "text", **pair, self.label_column: self.label_kind}
