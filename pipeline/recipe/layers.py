"""The recipe's `layers` section: a policy for each input layer, the encoder body and the head.

Each policy is one of a few variants, each a model with only its own fields (`pipeline.recipe.variants`): the token
table is frozen, fine-tuned, or replaced by random rows, static vectors or rows transferred from the pretrained
table; positions are frozen, fine-tuned, or replaced by a sinusoidal, learned, extended or empty table, or for rotary
decoders a new rotation. A variant says what it is in facts (`replaces_table`, `needs`...), read by the recipe checks
without any model code; what it does to a model is its implementation, registered beside it in `pipeline.surgery`.
The YAML spelling is `policy` (and `init`, and `transfer`), and the short form `token_embeddings: freeze` too.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from pipeline.paths import looks_like_hub_id
from pipeline.recipe.base import MAX_SIZE, Strict, existing_path
from pipeline.recipe.positions import FinetunedPositions, Positions
from pipeline.recipe.variants import Frozen, LayerPolicy, Need, ThenTrained, variant_union


# --- the token-embedding table ---------------------------------------------------------------------------------
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


VectorFormat = Literal["auto", "text", "word2vec_binary", "fasttext", "npy"]


class VectorFile(Strict):
    """A static-vector file: GloVe/word2vec text, word2vec binary, fastText binary, or a .npy matrix with its words."""

    vectors: str | None = Field(
        None, description="GloVe/word2vec text (.txt/.vec/.gz), word2vec .bin, fastText .bin, or .npy."
    )
    vectors_vocab: str | None = Field(None, description="The words of a .npy matrix (lines or parquet).")
    vectors_format: VectorFormat = Field(
        "auto", description="The file's format; auto goes by the file name (and fastText's magic number)."
    )

    @field_validator("vectors", "vectors_vocab")
    @classmethod
    def _vector_files_exist(cls, value: str | None) -> str | None:
        return None if value is None else existing_path(value, "file")

    @model_validator(mode="after")
    def _npy_words(self) -> VectorFile:
        if self.vectors is not None and is_npy(self.vectors, self.vectors_format) and self.vectors_vocab is None:
            raise ValueError("a .npy matrix needs vectors_vocab (its words, one per row: text lines or parquet)")
        return self

    def file_needs(self) -> list[Need]:
        """gensim reads every vectors file but a .npy matrix."""
        if self.vectors is None or is_npy(self.vectors, self.vectors_format):
            return []
        return [Need("gensim", "reading GloVe, word2vec or fastText files", "vectors")]


def is_npy(path: str, vectors_format: str) -> bool:
    """Whether a vectors file is read as a NumPy matrix (its format says so, or `auto` and the name ends in .npy)."""
    return vectors_format == "npy" or (vectors_format == "auto" and str(path).lower().endswith(".npy"))


class TokenTablePolicy(LayerPolicy):
    """What every token-table variant takes: what becomes of an LM head tied to the table."""

    tie: Literal["keep", "untie"] = Field(
        "keep",
        description="A LM head tied to the table: `keep` it one tensor with the table (it follows the table's policy), "
        "or `untie` it into a tensor of its own, which `layers.head.policy` trains or freezes.",
    )

    def replaces_table(self) -> bool:
        """Whether the pretrained table gives way to a new one (which a new tokenizer's ids can index)."""
        return False

    def moves_to_tokenizer(self) -> bool:
        """Whether the pretrained table's rows are moved to another tokenizer (`init: transfer`)."""
        return False

    def trained_rows(self) -> Literal["new"] | list[str | int] | None:
        """The only rows that train (None: the whole table, or none, as `is_frozen` says)."""
        return None

    def per_position_tables(self) -> bool:
        """Whether every position gets a table of its own."""
        return False


class FrozenTable(Frozen, TokenTablePolicy):
    """`freeze`: the pretrained table as it is, no gradient, no optimizer state."""

    policy: Literal["freeze"] = Field("freeze", description="`freeze` the pretrained table.")


class FinetunedTable(TokenTablePolicy):
    """`finetune`: the pretrained table trained, all of it or only some rows."""

    policy: Literal["finetune"] = Field("finetune", description="`finetune` the pretrained table.")
    rows: Literal["new"] | list[str | int] | None = Field(
        None,
        description="Train only these rows (`new`: the tokens `model.add_tokens` added; or tokens and ids); "
        "the others stay bit-identical and take no optimizer state (a small trainable table beside the frozen one, "
        "merged on save). A tied LM head trains the same rows.",
    )

    @field_validator("rows")
    @classmethod
    def _some_rows(cls, value: Any) -> Any:
        if isinstance(value, list) and not value:
            raise ValueError("rows lists no token")
        return value

    def trained_rows(self) -> Literal["new"] | list[str | int] | None:
        return self.rows


class ReplacedTable(ThenTrained, TokenTablePolicy):
    """`replace`: a new table (then trained or frozen)."""

    policy: Literal["replace"] = Field("replace", description="`replace` the table; `init` says with what.")

    def replaces_table(self) -> bool:
        return True


class RandomTable(ReplacedTable):
    """`replace` × `random`: fresh normal rows."""

    init: Literal["random"] = Field(description="A fresh random table.")
    std: float | None = Field(None, gt=0, description="The normal std (default: the old table's std).")
    per_position: bool = Field(
        False,
        description="A table of its own for every position (`model.max_length` of them) instead of one shared by all "
        "time steps; a row then trains only where its token is seen at its position. Refused where the tables and "
        "their training state would not fit in memory.",
    )

    def per_position_tables(self) -> bool:
        return self.per_position


class VectorTable(ReplacedTable, VectorFile):
    """`replace` × `vectors`: static word vectors (a file, or trained on the corpus) aligned to the vocabulary."""

    init: Literal["vectors"] = Field(description="Static word vectors aligned to the vocabulary.")
    train: VectorTraining | None = Field(
        None,
        description="Train the vectors on the run's corpus with gensim instead of reading a file (cached by corpus and "
        "settings; saved in the run folder as `vectors.txt`, word2vec text format).",
    )
    fallback: Literal["random", "mean", "subword"] = Field(
        "random", description="The row of a token the vectors lack (subword: the mean of its known parts)."
    )
    width: Literal["project", "pad"] = Field(
        "project", description="Vectors narrower than the model: a learned linear projection, or zero-padding."
    )

    @model_validator(mode="after")
    def _file_or_training(self) -> VectorTable:
        if (self.vectors is None) == (self.train is None):
            raise ValueError("init: vectors needs a vectors file or train: {method: ...} (vectors trained on the "
                             "corpus), one of the two")  # fmt: skip
        return self

    def needs(self) -> list[Need]:
        return [Need("gensim", "training vectors", "train")] if self.train is not None else self.file_needs()


class Transfer(ReplacedTable):
    """`replace` × `transfer`: the pretrained table moved to another tokenizer (`model.tokenizer`: another model's
    tokenizer, or `{build: ...}`); a token both vocabularies spell alike keeps its row, the others are made as
    `transfer` says."""

    init: Literal["transfer"] = Field(
        description="Move the pretrained table to the recipe's tokenizer: shared tokens copied (matched by the text "
        "they spell), the others made from the old rows."
    )

    def token_vectors(self) -> VectorTraining | None:
        """The token vectors the method trains on the corpus under both tokenizers (none by default)."""
        return None

    def moves_to_tokenizer(self) -> bool:
        return True

    def needs(self) -> list[Need]:
        if self.token_vectors() is None:
            return []
        return [Need("gensim", f"transfer: {self.tags['transfer']} (token vectors)", "transfer")]


class MeanTransfer(Transfer):
    """`transfer: mean`: a new token is the mean of the old rows of the pieces the old tokenizer splits it into."""

    transfer: Literal["mean"] = Field("mean", description="A new token is the mean of its old pieces' rows.")


class WeightedTransfer(Transfer, VectorFile):
    """`transfer: weighted`: a new token is a similarity-weighted mix of the old tokens whose static vectors (a word
    vector file) are closest to its own."""

    transfer: Literal["weighted"] = Field(description="A mix of the old tokens closest in the static vectors.")
    vectors: str = Field(description="The static vectors that weigh the mix (formats as for init: vectors).")  # type: ignore[assignment]

    @field_validator("vectors")
    @classmethod
    def _vectors_exist(cls, value: str) -> str:
        return existing_path(value, "file")

    def needs(self) -> list[Need]:
        return self.file_needs()


def token_vector_training() -> VectorTraining:
    """The token vectors `focus` and `omp` train by default: fastText (any token gets a vector from its character
    n-grams), 100-d, case kept (a token's case is part of what it is)."""
    return VectorTraining(method="fasttext", lowercase=False, min_count=1)


class FocusTransfer(Transfer):
    """`transfer: focus` (FOCUS, Dobler & de Melo 2023): a new token is a sparse mix of the shared tokens, weighted by
    the sparsemax of its cosine similarities to them in static token vectors trained on the training text."""

    transfer: Literal["focus"] = Field(description="A sparsemax-weighted mix of the shared tokens.")
    train: VectorTraining = Field(
        default_factory=token_vector_training,
        description="The static token vectors that weigh the mix, trained with gensim on the training text "
        "tokenized by both tokenizers (a token both spell alike is one word of both); default fastText, 100-d.",
    )

    def token_vectors(self) -> VectorTraining:
        return self.train


class OmpTransfer(Transfer):
    """`transfer: omp` (as mergekit's tokensurgeon, Goddard & Fernandes Neto 2025): a new token's vector in a donor
    space, approximated by orthogonal matching pursuit as a mix of `k` shared (anchor) tokens; the same mix of their
    pretrained rows is its row."""

    transfer: Literal["omp"] = Field(description="A sparse mix of k anchor tokens fitted by OMP in a donor space.")
    k: int = Field(32, ge=1, le=1024, description="Anchor tokens per new token (the mix's sparsity).")
    donor: str | None = Field(
        None,
        description="A model (folder or Hub id) whose token table belongs to the new tokenizer: its rows are the "
        "donor space. Null: static token vectors trained as `train` says.",
    )
    train: VectorTraining = Field(
        default_factory=token_vector_training,
        description="Without a donor: the static token vectors of the donor space, trained as for `focus`.",
    )

    @field_validator("donor")
    @classmethod
    def _donor_exists(cls, value: str | None) -> str | None:
        return value if value is None or looks_like_hub_id(value) else existing_path(value)

    def token_vectors(self) -> VectorTraining | None:
        return self.train if self.donor is None else None  # a donor's table is the space


TokenEmbeddings = variant_union(
    "layers.token_embeddings",
    FinetunedTable, FrozenTable, RandomTable, VectorTable, MeanTransfer, WeightedTransfer, FocusTransfer, OmpTransfer,
    defaults={"policy": "finetune", "transfer": "mean"},
)  # fmt: skip


# --- the encoder body and the head ----------------------------------------------------------------------------------
class BodyPolicy(LayerPolicy):
    """What every body variant takes: layer-wise learning-rate decay."""

    layerwise_lr_decay: float = Field(
        1.0, gt=0, le=1, description="Layer l of L trains at lr × decay^(L−l); embeddings at decay^L."
    )

    def frozen_blocks(self) -> int:
        """How many of the lowest blocks stay frozen while the rest trains."""
        return 0

    def needs_default_targets(self) -> bool:
        """Whether the variant adapts the family's default LoRA targets (the family must name some)."""
        return False


class FrozenBody(Frozen, BodyPolicy):
    """`freeze`: the pretrained body as it is."""

    policy: Literal["freeze"] = Field("freeze", description="`freeze` the body.")


class FinetunedBody(BodyPolicy):
    """`finetune`: the body trained (its lowest blocks may stay frozen)."""

    policy: Literal["finetune"] = Field("finetune", description="`finetune` the body.")
    freeze_bottom: int = Field(0, ge=0, description="Keep the lowest N transformer layers frozen.")

    def frozen_blocks(self) -> int:
        return self.freeze_bottom


class LoraBody(BodyPolicy):
    """`lora`: the body frozen, low-rank adapters (PEFT) trained beside its linear layers; the saved model has them
    merged, the adapter is kept beside it."""

    policy: Literal["lora"] = Field("lora", description="Low-rank adapters beside the frozen body.")
    r: int = Field(8, gt=0, le=4096, description="The rank of each adapter.")
    alpha: float = Field(16.0, gt=0, description="The adapters' scaling is alpha / r.")
    dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the adapters' input.")
    target_modules: list[str] | None = Field(
        None, min_length=1, description="The linear layers to adapt (names or suffixes); null: the family's default."
    )

    def needs(self) -> list[Need]:
        return [Need("peft", "policy: lora", "")]

    def needs_default_targets(self) -> bool:
        return self.target_modules is None


Body = variant_union("layers.encoder", FinetunedBody, FrozenBody, LoraBody, defaults={"policy": "finetune"})


class HeadPolicy(LayerPolicy):
    """What every head variant takes: the learning-rate multiplier (`LayerPolicy`)."""

    lr_multiplier: float = Field(1.0, gt=0, description="The task head's learning rate is `train.lr` times this.")


class FinetunedHead(HeadPolicy):
    """`finetune`: the task head (and an untied LM head) trained."""

    policy: Literal["finetune"] = Field("finetune", description="`finetune` the task head (and an untied LM head).")


class FrozenHead(HeadPolicy):
    """`freeze`: the task head (and an untied LM head) kept as it starts."""

    policy: Literal["freeze"] = Field("freeze", description="`freeze` the task head (and an untied LM head).")

    def is_frozen(self) -> bool:
        return True


Head = variant_union("layers.head", FinetunedHead, FrozenHead, defaults={"policy": "finetune"})


class LayersConfig(Strict):
    token_embeddings: TokenEmbeddings = Field(
        default_factory=FinetunedTable, description="Policy for the token-embedding table."
    )
    positions: Positions = Field(
        default_factory=FinetunedPositions,
        description="Policy for the positions: the absolute position table, or for rotary decoders the rotation.",
    )
    encoder: Body = Field(default_factory=FinetunedBody, description="Policy for the rest of the pretrained body.")
    head: Head = Field(default_factory=FinetunedHead, description="The task head.")
