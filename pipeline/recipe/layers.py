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


class VectorTraining(Strict):
    """Static word vectors trained with gensim on the run's own text before surgery (`init: vectors`)."""

    method: Literal["skipgram", "cbow", "fasttext"] = Field(
        "skipgram",
        description="word2vec `skipgram` or `cbow`, or `fasttext` (skip-gram with character n-grams, which gives "
        "a vector to words it never saw whole).",
    )
    dim: int = Field(100, ge=2, le=4096, description="Vector width (projected or padded to the model's, see `width`).")
    window: int = Field(5, ge=1, le=100, description="Context words on each side.")
    epochs: int = Field(5, ge=1, le=1000, description="Passes over the corpus.")
    min_count: int = Field(2, ge=1, le=MAX_SIZE, description="Words seen fewer times get no vector of their own.")
    corpus: str = Field(
        "train", description="`train` (the training split's texts) or a UTF-8 text file (e.g. a domain corpus)."
    )
    lowercase: bool = Field(True, description="Lower-case the corpus (alignment tries the lower-cased token too).")

    @field_validator("corpus")
    @classmethod
    def _corpus_exists(cls, value: str) -> str:
        return value if value == "train" else existing_path(value, "file")


REPLACE_TOKEN_FIELDS = (
    "then",
    "per_position",
    "init",
    "train",
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
    rows: Literal["new"] | list[str | int] | None = Field(
        None,
        description="finetune: train only these rows (`new`: the tokens `model.add_tokens` added; or tokens and ids); "
        "the others stay bit-identical and take no optimizer state (a small trainable table beside the frozen one, "
        "merged on save). A tied LM head trains the same rows.",
    )
    tie: Literal["keep", "untie"] = Field(
        "keep",
        description="A LM head tied to the table: `keep` it one tensor with the table (it follows the table's policy), "
        "or `untie` it into a tensor of its own, which `layers.head.policy` trains or freezes.",
    )
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
    per_position: bool = Field(
        False,
        description="replace/random: a table of its own for every position (`model.max_length` of them) instead of one "
        "shared by all time steps; a row then trains only where its token is seen at its position. Refused where the "
        "tables and their training state would not fit in memory.",
    )
    vectors: str | None = Field(
        None, description="replace/vectors: GloVe/word2vec text (.txt/.vec/.gz), word2vec .bin, fastText .bin, or .npy."
    )
    train: VectorTraining | None = Field(
        None,
        description="replace/vectors: train the vectors on the run's corpus with gensim instead of reading a file "
        "(cached by corpus and settings; saved in the run folder as `vectors.txt`, word2vec text format).",
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
        if self.rows is not None and self.policy != "finetune":
            raise ValueError("rows (train only some rows) applies to policy: finetune")
        if isinstance(self.rows, list) and not self.rows:
            raise ValueError("rows lists no token")
        if self.policy == "replace" and self.init is None:
            raise ValueError("policy: replace needs init: random, vectors or transfer")
        if self.train is not None and (self.init != "vectors" or self.vectors is not None):
            raise ValueError("train (vectors trained on the corpus) applies to init: vectors, in place of a file")
        if self.init == "vectors" and self.vectors is None and self.train is None:
            raise ValueError("init: vectors needs a vectors file, or train: {method: ...} to train them on the corpus")
        if self.per_position and self.init != "random":
            raise ValueError("per_position applies to init: random")
        if self.transfer == "weighted" and self.vectors is None:
            raise ValueError("transfer: weighted needs a vectors file")
        if self.transfer == "weighted" and self.init != "transfer":
            raise ValueError("transfer: weighted applies to init: transfer")
        is_npy = self.vectors_format == "npy" or (self.vectors_format == "auto" and str(self.vectors).endswith(".npy"))
        if self.init == "vectors" and is_npy and self.vectors_vocab is None:
            raise ValueError("a .npy matrix needs vectors_vocab (its words, one per row: text lines or parquet)")
        return self


class RopeScaling(Strict):
    """How a rotary embedding's frequencies are scaled for longer contexts (the model config's rope parameters)."""

    type: Literal["linear", "dynamic", "yarn", "llama3", "longrope"] = Field(
        description="`linear` (position interpolation), `dynamic` (NTK-aware, grows with the input), `yarn`, `llama3` "
        "or `longrope`."
    )
    factor: float = Field(gt=1, le=1024, description="How many times longer the context is meant to be.")
    original_max_position_embeddings: int | None = Field(
        None, gt=0, le=MAX_SIZE, description="yarn, llama3, longrope: the length pretrained on (default: the config's)."
    )
    beta_fast: float | None = Field(None, gt=0, description="yarn: the boundary of the dimensions left unscaled.")
    beta_slow: float | None = Field(None, gt=0, description="yarn: the boundary of the dimensions fully scaled.")
    attention_factor: float | None = Field(None, gt=0, description="yarn, longrope: the scaling of attention logits.")
    low_freq_factor: float | None = Field(None, gt=0, description="llama3: where low frequencies start.")
    high_freq_factor: float | None = Field(None, gt=0, description="llama3: where high frequencies start.")
    short_factor: list[float] | None = Field(
        None, min_length=1, description="longrope: per-frequency factors, short inputs."
    )
    long_factor: list[float] | None = Field(
        None, min_length=1, description="longrope: per-frequency factors, long inputs."
    )

    @model_validator(mode="after")
    def _fields_of_the_type(self) -> RopeScaling:
        own = {
            "yarn": {"beta_fast", "beta_slow", "attention_factor"},
            "llama3": {"low_freq_factor", "high_freq_factor"},
            "longrope": {"short_factor", "long_factor", "attention_factor"},
        }.get(self.type, set())
        stray = [
            name
            for name in (
                "beta_fast",
                "beta_slow",
                "attention_factor",
                "low_freq_factor",
                "high_freq_factor",
                "short_factor",
                "long_factor",
            )
            if getattr(self, name) is not None and name not in own
        ]
        if stray:
            raise ValueError(f"{stray[0]} does not apply to scaling type {self.type}")
        if self.type == "longrope" and (self.short_factor is None or self.long_factor is None):
            raise ValueError("longrope needs short_factor and long_factor (one factor per rotated frequency)")
        return self  # fmt: skip


ROTARY_FIELDS = ("theta", "scaling", "layers", "partial")


class PositionPolicy(LayerPolicy):
    policy: Literal["freeze", "finetune", "replace"] = Field(
        "finetune",
        description="`freeze`, `finetune`, or `replace` the positions: the absolute position table, or for rotary "
        "decoders the rotation (which has no parameters: freeze and finetune change nothing there).",
    )
    then: Literal["freeze", "finetune"] = Field(
        "finetune", description="replace/learned or extend: train or freeze it."
    )
    init: Literal["sinusoidal", "learned", "extend", "none", "rope"] | None = Field(
        None,
        description="replace: fixed `sinusoidal` buffer, fresh `learned` table, `extend` the pretrained one, "
        "or `none` (no position signal); rotary decoders: `rope` (a new base, scaling or partial rotation) or `none` "
        "(no rotation: NoPE, in every layer or in `layers`).",
    )
    theta: float | None = Field(
        None, gt=1, description="replace/rope: the new rotary base (`rope_theta`; above 1, or no frequency falls)."
    )
    scaling: RopeScaling | None = Field(
        None, description="replace/rope: scale the rotary frequencies for longer inputs."
    )
    partial: float | None = Field(
        None, gt=0, lt=1, description="replace/rope: rotate only this share of each head's dimensions."
    )
    layers: list[int] | None = Field(
        None,
        min_length=1,
        description="replace/none on a rotary decoder: drop the rotation in these layers only (0 = the lowest).",
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
        self._only_with_replace(
            ("then", "init", "max_positions", "extend_mode", "std", "scale", "combine", *ROTARY_FIELDS)
        )
        if self.init == "rope" and self.theta is None and self.scaling is None and self.partial is None:
            raise ValueError("init: rope needs theta, scaling or partial")
        for name in ("theta", "scaling", "partial"):
            if getattr(self, name) is not None and self.init != "rope":
                raise ValueError(f"{name} applies to init: rope")
        if self.layers is not None and self.init != "none":
            raise ValueError("layers (the layers without rotation) applies to init: none")
        if self.layers is not None and (min(self.layers) < 0 or len(set(self.layers)) != len(self.layers)):
            raise ValueError(f"layers must be distinct layer indices from 0, got {self.layers}")
        if self.scale is not None and self.init != "sinusoidal":
            raise ValueError("scale applies to init: sinusoidal")
        if self.policy == "replace" and self.init is None:
            raise ValueError(
                "policy: replace needs init: sinusoidal, learned, extend or none (rotary decoders: rope or none)"
            )
        if self.init in ("sinusoidal", "none") and self.then == "freeze":
            raise ValueError(f"init: {self.init} is a fixed buffer; `then` does not apply")
        return self


class EncoderPolicy(LayerPolicy):
    policy: Literal["freeze", "finetune", "lora"] = Field(
        "finetune",
        description="`freeze`, `finetune`, or `lora`: the body frozen, low-rank adapters (PEFT) trained beside its "
        "linear layers; the saved model has them merged, the adapter is kept beside it.",
    )
    freeze_bottom: int = Field(0, ge=0, description="finetune: keep the lowest N transformer layers frozen.")
    layerwise_lr_decay: float = Field(
        1.0, gt=0, le=1, description="Layer l of L trains at lr × decay^(L−l); embeddings at decay^L."
    )
    r: int = Field(8, gt=0, le=4096, description="lora: the rank of each adapter.")
    alpha: float = Field(16.0, gt=0, description="lora: the adapters' scaling is alpha / r.")
    dropout: float = Field(0.05, ge=0, lt=1, description="lora: dropout on the adapters' input.")
    target_modules: list[str] | None = Field(
        None,
        min_length=1,
        description="lora: the linear layers to adapt (names or suffixes); null: the family's default.",
    )

    @model_validator(mode="after")
    def _lora_fields(self) -> EncoderPolicy:
        defaults = {name: type(self).model_fields[name].default for name in ("r", "alpha", "dropout", "target_modules")}
        stray = [name for name, default in defaults.items() if getattr(self, name) != default]
        if stray and self.policy != "lora":
            raise ValueError(f"{stray[0]} applies to policy: lora")
        if self.policy == "lora" and self.freeze_bottom:
            raise ValueError("freeze_bottom applies to policy: finetune (lora freezes the whole body)")
        return self


class HeadPolicy(Strict):
    policy: Literal["freeze", "finetune"] = Field(
        "finetune", description="The task head (and an untied LM head): trained, or frozen."
    )
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
