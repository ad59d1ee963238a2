"""The recipe's `model` section: which model (a checkpoint or a fresh config), its tokenizer (a folder, or one built
on the data), the length limit, and tokens to add with how their new rows start."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from pipeline.paths import looks_like_hub_id
from pipeline.recipe.base import MAX_SIZE, Strict, existing_path


class TokenizerBuild(Strict):
    build: Literal["word", "bpe", "wordpiece"] = Field(
        description="Train a new tokenizer on the train split's text: `word` (word-level, splits on spaces and "
        "punctuation, unknown words → `<unk>`), `bpe` (byte-level BPE, as GPT-2; no unknown tokens) or `wordpiece` "
        "(as BERT: `##` continuation pieces, [CLS] ... [SEP])."
    )
    vocab_size: int = Field(20000, ge=100, le=MAX_SIZE, description="Largest vocabulary, special tokens included.")
    min_frequency: int = Field(2, ge=1, description="Keep a word (or merge) seen at least this often.")
    lowercase: bool = Field(False, description="Lowercase text before tokenizing.")


class CopyRow(Strict):
    # `copy` is a method of pydantic models: the field has another name, and `copy` as its name in YAML.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, validate_by_name=True, serialize_by_alias=True)

    copy_of: str = Field(
        alias="copy", min_length=1, description="A token of the vocabulary whose row the new ones copy."
    )


class Distillation(Strict):
    """`init: distill`'s budget (Token Distillation, Dobler et al. 2025): each new row, started as `compose`, is
    fitted so that the frozen model's last hidden states on snippets of the training text holding the token match
    those on the same snippets tokenized without it."""

    steps: int = Field(30, ge=1, le=10_000, description="Optimisation steps (Adam) over all new rows together.")
    lr: float = Field(1e-3, gt=0, le=10, description="Adam's learning rate on the new rows.")
    snippets: int = Field(8, ge=1, le=1000, description="Snippets of the training text per token (seeded draw).")
    width: int = Field(
        120, ge=10, le=10_000, description="Characters of text around the token in each snippet (each side)."
    )


class AddTokens(Strict):
    tokens: list[str] = Field(default_factory=list, description="Words or pieces to add (each becomes one token).")
    special: list[str] = Field(
        default_factory=list,
        description="Special tokens to add (e.g. chat markers): never split, skipped when decoding.",
    )
    file: str | None = Field(None, description="A text file of tokens to add, one per line.")
    from_data: int | None = Field(
        None,
        gt=0,
        le=100_000,
        description="Add the N most frequent words of the training text that the tokenizer splits into several pieces.",
    )
    init: Literal["mean", "compose", "random", "distill"] | CopyRow = Field(
        "mean",
        description="The new rows: `mean` (the table's mean, with noise of its covariance, as transformers' "
        "mean_resizing), `compose` (the mean of the rows of the pieces the old tokenizer splits the token's text "
        "into), `random` (normal with the table's std), `distill` (`compose`, then fitted so that the model's hidden "
        "states with the token match those with its pieces: see `distill`), or `{copy: TOKEN}`.",
    )
    distill: Distillation = Field(
        default_factory=Distillation, description="`init: distill`: the budget of the fit (steps, lr, snippets)."
    )
    describe: dict[str, str] = Field(
        default_factory=dict, description="compose: a text to compose a token from instead of its own (token → text)."
    )

    @model_validator(mode="before")
    @classmethod
    def _from_list(cls, value: Any) -> Any:
        return {"tokens": value} if isinstance(value, list) else value

    @field_validator("file")
    @classmethod
    def _file_exists(cls, value: str | None) -> str | None:
        return None if value is None else existing_path(value, "file")

    def rows_from_the_mean(self) -> bool:
        """`init: mean`: new rows from the table's mean and covariance (transformers' mean resizing)."""
        return self.init == "mean"

    def fits_rows(self) -> bool:
        """`init: distill`: the rows start as `compose` makes them, then are fitted on the training text."""
        return self.init == "distill"

    def row_start(self) -> str | CopyRow:
        """How each new row starts (`distill` starts from the pieces' mean, as `compose`)."""
        return "compose" if self.fits_rows() else self.init

    @model_validator(mode="after")
    def _distill_budget_only_for_distill(self) -> AddTokens:
        # a saved recipe lists the default budget: only a budget set for another init is refused
        if self.distill != Distillation() and self.init != "distill":
            raise ValueError("distill (the fit's budget) applies to init: distill")
        return self

    @model_validator(mode="after")
    def _some_tokens(self) -> AddTokens:
        if not (self.tokens or self.special or self.file or self.from_data):
            raise ValueError("name tokens, special tokens, a file of them, or from_data: N")
        if any(not token.strip() for token in [*self.tokens, *self.special]):
            raise ValueError("a token to add is empty or blank")
        if self.describe and self.init != "compose":
            raise ValueError("describe applies to init: compose")
        return self


class ModelConfig(Strict):
    family: str = Field(
        description="Model family: a registered family's name (the built-in ones are listed below; one registered in "
        "code with `pipeline.families.register_family` is accepted too)."
    )
    name_or_path: str | None = Field(
        None, description="Pretrained checkpoint: local folder, `pkg://package/path`, or Hub id."
    )
    config: dict[str, Any] | None = Field(
        None,
        description="Instead of a checkpoint: architecture settings of a freshly initialised model "
        "(e.g. `{n_layer: 2, n_embd: 128}`); `vocab_size` defaults to the tokenizer's size.",
    )
    tokenizer: str | TokenizerBuild | None = Field(
        None,
        description="Tokenizer folder or Hub id (default: `name_or_path`), or `{build: word}` / `{build: bpe}` to "
        "train one on the train split.",
    )
    max_length: int | None = Field(
        None, gt=0, le=MAX_SIZE, description="Truncate inputs to this many tokens; default: the model's position limit."
    )
    revision: str | None = Field(None, description="Hub revision (branch, tag or commit) of a Hub checkpoint.")
    add_tokens: AddTokens | None = Field(
        None,
        description="Tokens to add to the tokenizer (a list, or a section: tokens, special, file, from_data, init); "
        "the table and a tied or untied LM head grow by one row each, initialised as `init` says.",
    )
    trust_remote_code: bool = Field(False, description="Allow a Hub checkpoint to run its own Python code.")

    @field_validator("name_or_path", "tokenizer")
    @classmethod
    def _checkpoint_exists(cls, value: str | TokenizerBuild | None) -> str | TokenizerBuild | None:
        if not isinstance(value, str) or looks_like_hub_id(value):
            return value
        return existing_path(value)

    @model_validator(mode="after")
    def _one_source(self) -> ModelConfig:
        if (self.name_or_path is None) == (self.config is None):
            raise ValueError("set exactly one of model.name_or_path (pretrained) or model.config (from scratch)")
        if self.config is not None and self.tokenizer is None:
            raise ValueError(
                "model.config builds a fresh model, so model.tokenizer must name a tokenizer (or build one)"
            )
        return self
