"""The recipe's `task` section: one class per `task.type`, each with the columns it reads and its default metrics."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from pipeline.recipe.base import Strict

# What a column must hold, per row: `text` a string (null: an empty text), `label` a string or integer (never
# missing), `number` a number, `label_set` a list of labels (or one string of them, split by a delimiter),
# `words` a list of strings, `tags` a list of strings or integers as long as the words.
ColumnKind = Literal["text", "label", "number", "label_set", "words", "tags"]


class TaskSection(Strict):
    """Base of the task sections: the columns a task reads, each with what it must hold, and all different.

    `metric_inputs`: the kinds of input the task's predictions give metrics (`pipeline.evaluation.metrics`);
    `default_metrics`: what `eval.metrics: null` means (None: chosen from the data when the run starts).
    """

    metric_inputs: ClassVar[tuple[str, ...]]
    default_metrics: ClassVar[list[str] | None]

    def columns(self) -> dict[str, ColumnKind]:
        raise NotImplementedError

    @model_validator(mode="after")
    def _distinct_columns(self) -> TaskSection:
        named = [
            (field, column)
            for field, column in self.model_dump().items()
            if field.endswith("_column") and column is not None
        ]
        for i, (field, column) in enumerate(named):
            for other, same in named[:i]:
                if same == column:
                    raise ValueError(
                        f"task.{field} and task.{other} both name column '{column}'; a task cannot read its answer from its input"
                    )
        return self


class SequenceClassificationTask(TaskSection):
    type: Literal["sequence-classification"] = Field(description="The task; selects head, data adapter, metrics.")
    text_column: str = Field("text", description="Column holding the input text.")
    text_pair_column: str | None = Field(None, description="Second text column, for sentence-pair inputs.")
    label_column: str = Field("label", description="Column holding the label (string or integer).")

    metric_inputs: ClassVar[tuple[str, ...]] = ("classes",)
    default_metrics: ClassVar[list[str] | None] = ["accuracy", "f1_macro"]
    label_kind: ClassVar[ColumnKind] = "label"

    def columns(self) -> dict[str, ColumnKind]:
        pair = {self.text_pair_column: "text"} if self.text_pair_column else {}
        return {self.text_column: "text", **pair, self.label_column: self.label_kind}


class RegressionTask(SequenceClassificationTask):
    type: Literal["regression"] = Field(description="The task; selects head, data adapter, metrics.")
    label_column: str = Field("label", description="Column holding the target: one number per row (MSE loss).")

    metric_inputs: ClassVar[tuple[str, ...]] = ("values",)
    default_metrics: ClassVar[list[str] | None] = ["pearson", "spearman", "mse", "mae"]
    label_kind: ClassVar[ColumnKind] = "number"


class MultiLabelTask(SequenceClassificationTask):
    type: Literal["multi-label"] = Field(description="The task; selects head, data adapter, metrics.")
    label_column: str = Field(
        "labels", description="Column holding each row's labels: a list, or one string split by `label_delimiter`."
    )
    label_delimiter: str | None = Field(
        None, min_length=1, description="Split a string of labels on this (e.g. `,`); null: the column holds lists."
    )

    metric_inputs: ClassVar[tuple[str, ...]] = ("label_sets",)
    default_metrics: ClassVar[list[str] | None] = [
        "f1_micro",
        "f1_macro",
        "precision_micro",
        "recall_micro",
        "per_label",
    ]
    label_kind: ClassVar[ColumnKind] = "label_set"


class LanguageModelingTask(TaskSection):
    type: Literal["language-modeling"] = Field(
        description="Pretrain on raw text: texts are packed into blocks of model.max_length tokens."
    )
    objective: Literal["causal", "bidirectional"] = Field(
        description="`causal`: predict each next token (families gpt2, llama); `bidirectional`: a forward and a backward "
        "LM, ELMo's objective (family bilstm)."
    )
    text_column: str = Field("text", description="Column holding the raw text; texts are joined with the EOS token.")

    metric_inputs: ClassVar[tuple[str, ...]] = ("token_nll",)
    default_metrics: ClassVar[list[str] | None] = ["perplexity"]

    @property
    def label_column(self) -> None:
        return None

    def columns(self) -> dict[str, ColumnKind]:
        return {self.text_column: "text"}


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

    @property
    def label_column(self) -> None:
        return None  # tags are per word: a holdout is not stratified by them

    def columns(self) -> dict[str, ColumnKind]:
        return {self.tokens_column: "words", self.tags_column: "tags"}


TASK_TYPES = {
    "sequence-classification": SequenceClassificationTask,
    "token-classification": TokenClassificationTask,
    "regression": RegressionTask,
    "multi-label": MultiLabelTask,
    "language-modeling": LanguageModelingTask,
}
