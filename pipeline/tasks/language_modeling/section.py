"""The recipe section of `task.type: language-modeling` (data only)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

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

    metric_inputs: ClassVar[tuple[str, ...]] = ("token_nll", "word_nll")
    default_metrics: ClassVar[list[str] | None] = ["perplexity", "word_perplexity"]
    scores_by_length: ClassVar[bool] = True

    def columns(self) -> dict[str, ColumnKind]:
        return {self.text_column: "text"}
