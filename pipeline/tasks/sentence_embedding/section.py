"""The recipe section of `task.type: sentence-embedding` (data only)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from pipeline.recipe.tasks import ColumnKind, TaskSection


class SentenceEmbeddingTask(TaskSection):
    """A bi-encoder: the recipe's encoder, a pooling, optionally normalised, trained so that each anchor's vector is
    closest to its positive's (in-batch negatives), or so that cosine similarities follow given scores (CoSENT)."""

    type: Literal["sentence-embedding"] = Field(description="The task; selects the pooling, loss and scoring.")
    anchor_column: str = Field("anchor", description="Column holding each pair's query (anchor) text.")
    positive_column: str = Field("positive", description="Column holding the text that answers the anchor.")
    negative_column: str | None = Field(
        None,
        description="Column holding a hard negative per pair (a text close to the anchor that does not answer it).",
    )
    score_column: str | None = Field(
        None,
        description="Column holding a similarity score per pair (an STS set): trained with CoSENT, scored by the "
        "correlation of cosine similarity and score. Null: pairs, trained with in-batch negatives, scored by "
        "retrieval.",
    )
    pairs_from_first_line: str | None = Field(
        None,
        description="Make the pairs from one text column: its first line is the anchor (a title), the rest the "
        "positive (the article). Replaces `anchor_column` and `positive_column`.",
    )
    documents: Literal["collection", "split"] = Field(
        "collection",
        description="What each query of an eval split searches: every distinct positive of the data's splits (the "
        "`collection`, taken before any `data.max_*_samples` limit, so runs on fewer examples search the same "
        "documents) or only its own split's (`split`).",
    )
    pooling: Literal["mean", "cls", "max", "last"] = Field(
        "mean",
        description="One vector per text from the encoder's last hidden states: their `mean` over real tokens, the "
        "first token's (`cls`), their `max`, or the `last` real token's (decoders).",
    )
    normalize: bool = Field(True, description="Scale each vector to unit length (cosine similarity = dot product).")
    scale: float = Field(20.0, gt=0, le=1000, description="The inverse temperature of the losses' cosine similarities.")

    metric_inputs: ClassVar[tuple[str, ...]] = ("ranks", "values")
    default_metrics: ClassVar[list[str] | None] = None  # retrieval measures for pairs, correlations for scored pairs
    retrieval_metrics: ClassVar[list[str]] = ["ndcg@10", "mrr@10", "recall@1", "recall@10"]
    correlation_metrics: ClassVar[list[str]] = ["spearman", "pearson"]

    @model_validator(mode="after")
    def _one_way_to_pairs(self) -> SentenceEmbeddingTask:
        if self.score_column is not None and self.negative_column is not None:
            raise ValueError("task.negative_column applies to pairs trained with in-batch negatives, not scored pairs")
        return self

    def check_training(self, train: Any) -> None:
        """In-batch negatives need two pairs in a forward pass: with one, the only candidate is the positive itself,
        and the loss and its gradient are 0 at every step."""
        together = train.micro_batch_size or train.batch_size
        if self.score_column is None and together < 2:
            field = "train.micro_batch_size" if train.micro_batch_size else "train.batch_size"
            raise ValueError(
                f"{field}: 1 pair per forward pass leaves in-batch negatives nothing to contrast (loss 0): use 2 or "
                "more, or scored pairs (task.score_column, CoSENT)"
            )

    def pair_columns(self) -> tuple[str, str]:
        """The anchor and positive columns the encoded data holds (made from the first line where asked)."""
        return ("anchor", "positive") if self.pairs_from_first_line else (self.anchor_column, self.positive_column)

    def columns(self) -> dict[str, ColumnKind]:
        if self.pairs_from_first_line:
            return {self.pairs_from_first_line: "text"}
        negative = {self.negative_column: "text"} if self.negative_column else {}
        score = {self.score_column: "number"} if self.score_column else {}
        return {self.anchor_column: "text", self.positive_column: "text", **negative, **score}
