"""The recipe's `task` section: one class per `task.type`, each with the columns it reads and its default metrics."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from pipeline.recipe.base import Strict

# What a column must hold, per row: `text` a string (null: an empty text), `label` a string or integer (never
# missing), `words` a list of strings, `tags` a list of strings or integers as long as the words.
ColumnKind = Literal["text", "label", "words", "tags"]


class TaskSection(Strict):
    """Base of the task sections: the columns a task reads, each with what it must hold, and all different."""

    def columns(self) -> dict[str, ColumnKind]:
        raise NotImplementedError

    @model_validator(mode="after")
    def _distinct_columns(self) -> TaskSection:
        named = [(field, column) for field, column in self.model_dump().items() if field.endswith("_column") and column is not None]
        for i, (field, column) in enumerate(named):
            for other, same in named[:i]:
                if same == column:
                    raise ValueError(f"task.{field} and task.{other} both name column '{column}'; a task cannot read its answer from its input")
        return self


class SequenceClassificationTask(TaskSection):
    type: Literal["sequence-classification"] = Field(description="The task; selects head, data adapter, metrics.")
    text_column: str = Field("text", description="Column holding the input text.")
    text_pair_column: str | None = Field(None, description="Second text column, for sentence-pair inputs.")
    label_column: str = Field("label", description="Column holding the label (string or integer).")

    default_metrics: ClassVar[list[str]] = ["accuracy", "f1_macro"]

    def columns(self) -> dict[str, ColumnKind]:
        pair = {self.text_pair_column: "text"} if self.text_pair_column else {}
        return {self.text_column: "text", **pair, self.label_column: "label"}


class LanguageModelingTask(TaskSection):
    type: Literal["language-modeling"] = Field(description="Pretrain on raw text: texts are packed into blocks of model.max_length tokens.")
    objective: Literal["causal", "bidirectional"] = Field(
        description="`causal`: predict each next token (families gpt2, llama); `bidirectional`: a forward and a backward "
        "LM, ELMo's objective (family bilstm)."
    )
    text_column: str = Field("text", description="Column holding the raw text; texts are joined with the EOS token.")

    default_metrics: ClassVar[list[str]] = ["perplexity"]

    @property
    def label_column(self) -> None:
        return None

    def columns(self) -> dict[str, ColumnKind]:
        return {self.text_column: "text"}


class TokenClassificationTask(TaskSection):
    type: Literal["token-classification"] = Field(description="The task; selects head, data adapter, metrics.")
    tokens_column: str = Field("tokens", description="Column holding each row's words (a list of strings).")
    tags_column: str = Field("tags", description="Column holding each word's tag (a list, as long as the words).")

    default_metrics: ClassVar[list[str]] = ["accuracy"]

    @property
    def label_column(self) -> None:
        return None  # tags are per word: a holdout is not stratified by them

    def columns(self) -> dict[str, ColumnKind]:
        return {self.tokens_column: "words", self.tags_column: "tags"}


TASK_TYPES = {
    "sequence-classification": SequenceClassificationTask,
    "token-classification": TokenClassificationTask,
    "language-modeling": LanguageModelingTask,
}
