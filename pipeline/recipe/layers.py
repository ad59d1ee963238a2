"""The recipe's `layers` section: a policy for each input layer, the encoder body and the head."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from pipeline.recipe.base import MAX_SIZE, Strict, existing_path


class LayerPolicy(Strict):
    policy: Literal["freeze", "finetune"] = Field(
        "finetune", description="`freeze`: no gradient, no optimizer state; `finetune`: trained."
    )
    lr_multiplier: float = Field(1.0, gt=0, description="This layer's learning rate is `train.lr` times this.")
    unfreeze_at_step: int | None = Field(
        None, gt=0, description="Gradual unfreezing: a frozen layer becomes trainable after this optimizer step."
    )
    unfreeze_at_epoch: int | None = Field(
        None, gt=0, description="Gradual unfreezing: a frozen layer becomes trainable after this many epochs."
    )

    @model_validator(mode="before")
    @classmethod
    def _from_shorthand(cls, value: Any) -> Any:
        return {"policy": value} if isinstance(value, str) else value

    def _only_with_replace(self, names: tuple[str, ...]) -> None:
        # Compared with the defaults, not with what was typed, so a saved resolved recipe loads again.
        stray = [name for name in names if getattr(self, name) != type(self).model_fields[name].default]
        if self.policy != "replace" and stray:
            raise ValueError(f"{', '.join(stray)} only apply with policy: replace")
        when = [name for name in ("unfreeze_at_step", "unfreeze_at_epoch") if getattr(self, name) is not None]
        if when and self.policy == "finetune":
            raise ValueError(f"{when[0]} applies to a frozen layer (policy: freeze, or replace with then: freeze)")
        if len(when) == 2:
            raise ValueError("set unfreeze_at_step or unfreeze_at_epoch, not both")


REPLACE_TOKEN_FIELDS = (
    "then",
    "init",
    "std",
    "vectors",
    "vectors_vocab",
    "vectors_format",
    "fallback",
    "width",
    "transfer",
)


class TokenEmbeddingPolicy(LayerPolicy):
    policy: Literal["freeze", "finetune", "replace"] = Field(
        "finetune", description="`freeze`, `finetune`, or `replace` the table (then `then` applies to the new one)."
    )
    then: Literal["freeze", "finetune"] = Field("finetune", description="replace: train or freeze the new table.")
    init: Literal["random", "vectors", "transfer"] | None = Field(
        None,
        description="replace: a fresh random table, static word `vectors` aligned to the vocabulary, or `transfer` the "
        "pretrained table to a new tokenizer (`model.tokenizer: {build: ...}`): shared tokens copied, the others "
        "composed.",
    )
    transfer: Literal["mean", "weighted"] = Field(
        "mean",
        description="init: transfer: a new token not in the old vocabulary is the `mean` of the old rows of the pieces "
        "the old tokenizer splits it into, or (`weighted`, needs `vectors`) a similarity-weighted mix of old tokens "
        "whose "
        "static vectors are closest to its own (as FOCUS and WECHSEL do).",
    )
    std: float | None = Field(None, gt=0, description="replace/random: normal std (default: the old table's std).")
    vectors: str | None = Field(
        None, description="replace/vectors: GloVe/word2vec text (.txt/.vec/.gz), word2vec .bin, fastText .bin, or .npy."
    )
    vectors_vocab: str | None = Field(
        None, description="replace/vectors: the words of a .npy matrix (lines or parquet)."
    )
    vectors_format: Literal["auto", "text", "word2vec_binary", "fasttext", "npy"] = Field(
        "auto", description="replace/vectors: file format; auto goes by the file name (and fastText's magic number)."
    )
    fallback: Literal["random", "mean", "subword"] = Field(
        "random", description="replace/vectors: row for a token the file lacks (subword: mean of its known parts)."
    )
    width: Literal["project", "pad"] = Field(
        "project", description="replace/vectors narrower than the model: a learned linear projection, or zero-padding."
    )

    @field_validator("vectors", "vectors_vocab")
    @classmethod
    def _vector_files_exist(cls, value: str | None) -> str | None:
        return None if value is None else existing_path(value, "file")

    @model_validator(mode="after")
    def _replace_fields(self) -> TokenEmbeddingPolicy:
        self._only_with_replace(REPLACE_TOKEN_FIELDS)
        if self.policy == "replace" and self.init is None:
            raise ValueError("policy: replace needs init: random, vectors or transfer")
        if (self.init == "vectors" or self.transfer == "weighted") and self.vectors is None:
            raise ValueError(
                f"{'init: vectors' if self.init == 'vectors' else 'transfer: weighted'} needs a vectors file"
            )
        if self.transfer == "weighted" and self.init != "transfer":
            raise ValueError("transfer: weighted applies to init: transfer")
        is_npy = self.vectors_format == "npy" or (self.vectors_format == "auto" and str(self.vectors).endswith(".npy"))
        if self.init == "vectors" and is_npy and self.vectors_vocab is None:
            raise ValueError("a .npy matrix needs vectors_vocab (its words, one per row: text lines or parquet)")
        return self


class PositionPolicy(LayerPolicy):
    policy: Literal["freeze", "finetune", "replace"] = Field(
        "finetune", description="`freeze`, `finetune`, or `replace` the absolute position table."
    )
    then: Literal["freeze", "finetune"] = Field(
        "finetune", description="replace/learned or extend: train or freeze it."
    )
    init: Literal["sinusoidal", "learned", "extend", "none"] | None = Field(
        None,
        description="replace: fixed `sinusoidal` buffer, fresh `learned` table, `extend` the pretrained one, "
        "or `none` (no position signal).",
    )
    max_positions: int | None = Field(
        None, gt=0, le=MAX_SIZE, description="replace: rows of the new table (default: as before)."
    )
    extend_mode: Literal["copy", "interpolate"] = Field(
        "copy", description="extend: keep old rows and repeat them (`copy`), or resample the old table (`interpolate`)."
    )
    std: float | None = Field(None, gt=0, description="replace/learned: normal std (default: the old table's std).")
    scale: float | None = Field(
        None,
        gt=0,
        description="replace/sinusoidal: multiply the table by this; null: match the replaced table's std "
        "(the raw sin/cos values, scale 1, drown a pretrained encoder's token vectors).",
    )
    combine: Literal["add", "concat"] = Field(
        "add",
        description="How position vectors meet token vectors: `add`, or `concat` then project to the hidden size.",
    )

    @model_validator(mode="after")
    def _replace_fields(self) -> PositionPolicy:
        self._only_with_replace(("then", "init", "max_positions", "extend_mode", "std", "scale", "combine"))
        if self.scale is not None and self.init != "sinusoidal":
            raise ValueError("scale applies to init: sinusoidal")
        if self.policy == "replace" and self.init is None:
            raise ValueError("policy: replace needs init: sinusoidal, learned, extend or none")
        if self.init in ("sinusoidal", "none") and self.then == "freeze":
            raise ValueError(f"init: {self.init} is a fixed buffer; `then` does not apply")
        return self


class EncoderPolicy(LayerPolicy):
    freeze_bottom: int = Field(0, ge=0, description="finetune: keep the lowest N transformer layers frozen.")
    layerwise_lr_decay: float = Field(
        1.0, gt=0, le=1, description="Layer l of L trains at lr × decay^(L−l); embeddings at decay^L."
    )


class HeadPolicy(Strict):
    lr_multiplier: float = Field(1.0, gt=0, description="The task head's learning rate is `train.lr` times this.")


class LayersConfig(Strict):
    token_embeddings: TokenEmbeddingPolicy = Field(
        default_factory=TokenEmbeddingPolicy, description="Policy for the token-embedding table."
    )
    positions: PositionPolicy = Field(
        default_factory=PositionPolicy, description="Policy for the absolute position table."
    )
    encoder: EncoderPolicy = Field(
        default_factory=EncoderPolicy, description="Policy for the rest of the pretrained body."
    )
    head: HeadPolicy = Field(default_factory=HeadPolicy, description="The task head.")
