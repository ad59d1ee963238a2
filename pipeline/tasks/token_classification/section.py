"""The recipe section of `task.type: token-classification` (data only)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from pipeline.recipe.tasks import ColumnKind, TaskSection


class TokenClassificationTask(TaskSection):
    type: Literal["token-classification"] = Field(description="The task; selects head, data adapter, metrics.")
    tokens_column: str = Field("tokens", description="Column holding each row's words (a list of strings).")
    tags_column: str = Field("tags", description="Column holding each word's tag (a list, as long as the words).")
    label_pieces: Literal["first", "all"] = Field(
        "first",
        description="Which pieces of a word learn its tag: the `first` (the rest are ignored) or `all` (a B- tag "
        "becomes I- on the later pieces). Scores always count words, by their first piece.",
    )

    metric_inputs: ClassVar[tuple[str, ...]] = ("classes", "tag_sequences")
    default_metrics: ClassVar[list[str] | None] = None  # entity F1 for BIO-style tags, else accuracy and macro-F1

    def columns(self) -> dict[str, ColumnKind]:
        return {self.tokens_column: "words", self.tags_column: "tags"}
