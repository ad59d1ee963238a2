"""The recipe section of `task.type: language-modeling` (data only)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator

from pipeline.recipe.base import MAX_SIZE
from pipeline.recipe.tasks import ColumnKind, TaskSection


class LanguageModelingTask(TaskSection):
    type: Literal["language-modeling"] = Field(
        description="Pretrain on raw text: texts are packed into blocks of model.max_length tokens."
    )
    objective: Literal["causal", "bidirectional"] = Field(
        description="`causal`: predict each next token (families gpt2, llama); `bidirectional`: a forward and a "
        "backward LM, ELMo's objective (family bilstm)."
    )
    text_column: str = Field("text", description="Column holding the raw text; texts are joined with the EOS token.")

    lengths: list[int] | None = Field(
        None,
        min_length=1,
        description="Also score each eval split packed into blocks of each of these lengths (`perplexity@L`, "
        "`loss@L`, and the loss by position `loss@L/positions A-B`): how a model trained at one length does at longer "
        "ones. Rotary decoders take lengths past their nominal limit; a learned table does not.",
    )
    metric_inputs: ClassVar[tuple[str, ...]] = ("token_nll", "word_nll")
    default_metrics: ClassVar[list[str] | None] = ["perplexity", "word_perplexity"]

    @field_validator("lengths")
    @classmethod
    def _block_lengths(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and (min(value) < 2 or max(value) > MAX_SIZE):
            raise ValueError(f"lengths must be block lengths between 2 and {MAX_SIZE}, got {value}")
        return value

    def scored_lengths(self) -> list[int]:
        return list(self.lengths or [])

    def columns(self) -> dict[str, ColumnKind]:
        return {self.text_column: "text"}
