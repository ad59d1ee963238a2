"""The recipe's `task` section: one class per `task.type`, each with the columns it reads and its default metrics."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from pipeline.recipe.base import Strict


class SequenceClassificationTask(Strict):
    type: Literal["sequence-classification"] = Field(description="The task; selects head, data adapter, metrics.")
    text_column: str = Field("text", description="Column holding the input text.")
    text_pair_column: str | None = Field(None, description="Second text column, for sentence-pair inputs.")
    label_column: str = Field("label", description="Column holding the label (string or integer).")

    default_metrics: ClassVar[list[str]] = ["accuracy", "f1_macro"]


class LanguageModelingTask(Strict):
    type: Literal["language-modeling"] = Field(description="Pretrain on raw text: texts are packed into blocks of model.max_length tokens.")
    objective: Literal["causal", "bidirectional"] = Field(
        description="`causal`: predict each next token (GPT-2 family); `bidirectional`: a forward and a backward "
        "LM, ELMo's objective (family bilstm)."
    )
    text_column: str = Field("text", description="Column holding the raw text; texts are joined with the EOS token.")

    default_metrics: ClassVar[list[str]] = ["perplexity"]

    @property
    def label_column(self) -> None:
        return None


class TokenClassificationTask(Strict):
    type: Literal["token-classification"] = Field(description="The task; selects head, data adapter, metrics.")
    tokens_column: str = Field("tokens", description="Column holding each row's words (a list of strings).")
    tags_column: str = Field("tags", description="Column holding each word's tag (a list, as long as the words).")

    default_metrics: ClassVar[list[str]] = ["accuracy"]

    @property
    def label_column(self) -> None:
        return None  # tags are per word: a holdout is not stratified by them


TASK_TYPES = {
    "sequence-classification": SequenceClassificationTask,
    "token-classification": TokenClassificationTask,
    "language-modeling": LanguageModelingTask,
}
