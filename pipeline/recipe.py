"""The recipe: one typed schema (pydantic v2), validated once at load time (`pipeline.recipe_io` reads it).

Every default of the product lives in this file. `pipeline schema` prints the reference built from it.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pipeline.metrics import KNOWN_METRICS, LANGUAGE_MODELING_METRICS, is_metric_path
from pipeline.paths import PKG_SCHEME, looks_like_hub_id, resolve_local_path

DATA_FORMATS = {".csv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet", ".txt": "text"}


class Strict(BaseModel):
    """Base for every recipe section: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


def _existing_path(value: str) -> str:
    """Check that a local or pkg:// path exists; return the value as written (recipes stay portable)."""
    path = resolve_local_path(value)
    if not path.exists():
        raise ValueError(f"'{value}' does not exist" + (f" (resolved to {path})" if value.startswith(PKG_SCHEME) else ""))
    return value


class TokenizerBuild(Strict):
    build: Literal["word", "bpe"] = Field(
        description="Train a new tokenizer on the train split's text: `word` (word-level, splits on spaces and "
        "punctuation, unknown words → `<unk>`) or `bpe` (byte-level BPE, as GPT-2; no unknown tokens)."
    )
    vocab_size: int = Field(20000, ge=100, description="Largest vocabulary, special tokens included.")
    min_frequency: int = Field(2, ge=1, description="Keep a word (or merge) seen at least this often.")
    lowercase: bool = Field(False, description="Lowercase text before tokenizing.")


class ModelConfig(Strict):
    family: Literal["bert", "gpt2", "bilstm"] = Field(
        description="Encoder family: `bert` (any encoder with absolute position embeddings: BERT, RoBERTa, "
        "DistilBERT, MiniLM...), `gpt2` (GPT-2 family; pads with EOS, pools the last non-pad token) or `bilstm` "
        "(this package's ELMo-style bi-LSTM; no position table)."
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
        None, description="Tokenizer folder or Hub id (default: `name_or_path`), or `{build: word}` / `{build: bpe}` to train one on the train split."
    )
    max_length: int | None = Field(
        None, gt=0, description="Truncate inputs to this many tokens; default: the model's position limit."
    )
    revision: str | None = Field(None, description="Hub revision (branch, tag or commit) of a Hub checkpoint.")
    trust_remote_code: bool = Field(False, description="Allow a Hub checkpoint to run its own Python code.")

    @field_validator("name_or_path", "tokenizer")
    @classmethod
    def _checkpoint_exists(cls, value: str | TokenizerBuild | None) -> str | TokenizerBuild | None:
        if not isinstance(value, str) or looks_like_hub_id(value):
            return value
        return _existing_path(value)

    @model_validator(mode="after")
    def _one_source(self) -> ModelConfig:
        if (self.name_or_path is None) == (self.config is None):
            raise ValueError("set exactly one of model.name_or_path (pretrained) or model.config (from scratch)")
        if self.config is not None and self.tokenizer is None:
            raise ValueError("model.config builds a fresh model, so model.tokenizer must name a tokenizer (or build one)")
        if isinstance(self.tokenizer, TokenizerBuild) and self.config is None:
            raise ValueError("a new tokenizer's ids mean nothing to a pretrained model's table; build one only with model.config")
        if self.family == "bilstm" and self.max_length is None:
            raise ValueError("a bi-LSTM has no position limit: set model.max_length (truncation, and block length for language modeling)")
        return self


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


REPLACE_TOKEN_FIELDS = ("then", "init", "std", "vectors", "vectors_vocab", "vectors_format", "fallback", "width")


class TokenEmbeddingPolicy(LayerPolicy):
    policy: Literal["freeze", "finetune", "replace"] = Field(
        "finetune", description="`freeze`, `finetune`, or `replace` the table (then `then` applies to the new one)."
    )
    then: Literal["freeze", "finetune"] = Field("finetune", description="replace: train or freeze the new table.")
    init: Literal["random", "vectors"] | None = Field(
        None, description="replace: a fresh random table, or static word `vectors` aligned to the vocabulary."
    )
    std: float | None = Field(None, gt=0, description="replace/random: normal std (default: the old table's std).")
    vectors: str | None = Field(
        None, description="replace/vectors: GloVe/word2vec text (.txt/.vec/.gz), word2vec .bin, fastText .bin, or .npy."
    )
    vectors_vocab: str | None = Field(None, description="replace/vectors: the words of a .npy matrix (lines or parquet).")
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
        return None if value is None else _existing_path(value)

    @model_validator(mode="after")
    def _replace_fields(self) -> TokenEmbeddingPolicy:
        self._only_with_replace(REPLACE_TOKEN_FIELDS)
        if self.policy == "replace" and self.init is None:
            raise ValueError("policy: replace needs init: random or init: vectors")
        if self.init == "vectors" and self.vectors is None:
            raise ValueError("init: vectors needs a vectors file")
        is_npy = self.vectors_format == "npy" or (self.vectors_format == "auto" and str(self.vectors).endswith(".npy"))
        if self.init == "vectors" and is_npy and self.vectors_vocab is None:
            raise ValueError("a .npy matrix needs vectors_vocab (its words, one per row: text lines or parquet)")
        return self


class PositionPolicy(LayerPolicy):
    policy: Literal["freeze", "finetune", "replace"] = Field(
        "finetune", description="`freeze`, `finetune`, or `replace` the absolute position table."
    )
    then: Literal["freeze", "finetune"] = Field("finetune", description="replace/learned or extend: train or freeze it.")
    init: Literal["sinusoidal", "learned", "extend", "none"] | None = Field(
        None,
        description="replace: fixed `sinusoidal` buffer, fresh `learned` table, `extend` the pretrained one, "
        "or `none` (no position signal).",
    )
    max_positions: int | None = Field(None, gt=0, description="replace: rows of the new table (default: as before).")
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
        "add", description="How position vectors meet token vectors: `add`, or `concat` then project to the hidden size."
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
    positions: PositionPolicy = Field(default_factory=PositionPolicy, description="Policy for the absolute position table.")
    encoder: EncoderPolicy = Field(default_factory=EncoderPolicy, description="Policy for the rest of the pretrained body.")
    head: HeadPolicy = Field(default_factory=HeadPolicy, description="The task head.")


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
OBJECTIVE_FAMILIES = {"causal": ("gpt2",), "bidirectional": ("bilstm",)}


class DataConfig(Strict):
    hub_id: str | None = Field(None, description="Hub data set id, e.g. `glue` (needs the network).")
    hub_config: str | None = Field(None, description="Hub data set configuration, e.g. `sst2`.")
    revision: str | None = Field(None, description="Hub data set revision.")
    files: str | dict[str, str] | None = Field(
        None, description="Local csv/json/jsonl/parquet: one file (the train split) or `{split: path}`."
    )
    folder: str | None = Field(None, description="Folder-per-class tree: `<folder>/<label>/*.txt`.")
    train_split: str = Field("train", description="Split to train on.")
    holdout: dict[str, float] = Field(
        default_factory=lambda: {"validation": 0.2},
        description="Splits carved out of the train split, stratified by label, when the data has only one.",
    )
    split_seed: int = Field(42, description="Seed of the holdout split (separate from `train.seed`).")
    stratify_by: str | None = Field(
        None, description="Column the holdout is stratified by; null: the task's label column (none for language modeling)."
    )
    max_train_samples: int | None = Field(None, gt=0, description="Use only this many training examples.")
    max_eval_samples: int | None = Field(None, gt=0, description="Use only this many examples per eval split.")

    @field_validator("folder")
    @classmethod
    def _folder_exists(cls, value: str | None) -> str | None:
        if value is not None and not resolve_local_path(_existing_path(value)).is_dir():
            raise ValueError(f"'{value}' is not a folder")
        return value

    @field_validator("files")
    @classmethod
    def _files_exist(cls, value: str | dict[str, str] | None) -> str | dict[str, str] | None:
        for path in [value] if isinstance(value, str) else (value or {}).values():
            _existing_path(path)
            if Path(path).suffix.lower() not in DATA_FORMATS:
                raise ValueError(f"'{path}': unknown format; use one of {', '.join(DATA_FORMATS)}")
        return value

    @field_validator("holdout")
    @classmethod
    def _fractions(cls, value: dict[str, float]) -> dict[str, float]:
        if any(not 0 < f < 1 for f in value.values()) or sum(value.values()) >= 1:
            raise ValueError(f"fractions must be in (0, 1) and sum below 1, got {value}")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> DataConfig:
        given = [name for name in ("hub_id", "files", "folder") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"set exactly one of data.hub_id, data.files or data.folder (got {given or 'none'})")
        return self


class TrainConfig(Strict):
    epochs: int = Field(3, gt=0, description="Passes over the training data.")
    max_steps: int | None = Field(None, gt=0, description="Stop after this many optimizer steps (wins over epochs).")
    batch_size: int = Field(16, gt=0, description="Examples per optimizer step, summed over all processes.")
    micro_batch_size: int | None = Field(
        None, gt=0, description="Examples per forward pass on one device; the rest is gradient accumulation."
    )
    lr: float = Field(5e-5, gt=0, description="Peak learning rate (AdamW).")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay (not applied to biases and norms).")
    adam_betas: tuple[float, float] = Field((0.9, 0.999), description="AdamW betas.")
    adam_eps: float = Field(1e-8, gt=0, description="AdamW epsilon.")
    scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup", "polynomial", "inverse_sqrt"] = Field(
        "linear", description="Learning-rate schedule (transformers `get_scheduler` names)."
    )
    warmup_ratio: float = Field(0.0, ge=0, lt=1, description="Warm-up as a fraction of all optimizer steps.")
    warmup_steps: int = Field(0, ge=0, description="Warm-up in optimizer steps (use this or warmup_ratio).")
    max_grad_norm: float | None = Field(1.0, gt=0, description="Clip the gradient norm to this; null: no clipping.")
    mixed_precision: Literal["no", "fp16", "bf16"] | None = Field(
        None, description="Autocast precision (fp16 needs a GPU); null: as `accelerate launch` says, else no."
    )
    seed: int = Field(42, description="Seed of model initialisation, dropout and data order.")
    eval_every_steps: int | None = Field(
        None, gt=0, description="Evaluate every N optimizer steps; null: at the end of every epoch."
    )
    save_every_steps: int | None = Field(
        None, gt=0, description="Save a checkpoint (full training state + model) every N optimizer steps."
    )
    checkpoint_every_epoch: bool = Field(True, description="Also save a checkpoint at the end of every epoch.")
    keep_checkpoints: int = Field(2, gt=0, description="Keep the newest K checkpoints.")
    on_nonfinite: Literal["stop", "skip"] = Field(
        "stop", description="A non-finite loss/gradient: `stop` (after saving the last good state) or `skip` the step."
    )
    log_every_steps: int = Field(10, gt=0, description="Write a line to log.jsonl every N optimizer steps.")
    report_to: list[Literal["tensorboard"]] = Field(
        default_factory=list, description="Experiment trackers, through Accelerate (`[tensorboard]`)."
    )
    collective_timeout_s: int = Field(
        600, gt=0, description="Several processes: a collective that waits longer than this fails the run."
    )

    @model_validator(mode="after")
    def _one_warmup(self) -> TrainConfig:
        if self.warmup_steps and self.warmup_ratio:
            raise ValueError("set train.warmup_steps or train.warmup_ratio, not both")
        if self.micro_batch_size and self.batch_size % self.micro_batch_size:
            raise ValueError(f"train.batch_size {self.batch_size} is not a multiple of train.micro_batch_size")
        return self


class EvalConfig(Strict):
    metrics: list[str] | None = Field(
        None,
        description=f"Metrics: {', '.join(KNOWN_METRICS)}; a path to an `evaluate` script; or `hub:NAME`. "
        "null: the task's defaults (sequence classification: accuracy, f1_macro; token classification: accuracy; "
        "language modeling: perplexity).",
    )
    splits: list[str] = Field(
        default_factory=lambda: ["validation"],
        min_length=1,
        description="Splits evaluated at the end; the first is also evaluated during training.",
    )
    batch_size: int = Field(64, gt=0, description="Examples per evaluation forward pass on one device.")
    trust_metric_code: bool = Field(
        False, description="Allow metric scripts given by path or `hub:NAME`: loading one runs its code."
    )

    @model_validator(mode="after")
    def _scripts_need_trust(self) -> EvalConfig:
        scripts = [name for name in self.metrics or [] if name not in KNOWN_METRICS]
        if scripts and not self.trust_metric_code:
            raise ValueError(f"metric {scripts[0]!r} is a script that runs code when loaded; set eval.trust_metric_code: true to allow it")
        return self

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, names: list[str] | None) -> list[str] | None:
        for name in names or []:
            if name in KNOWN_METRICS or name.startswith("hub:") or is_metric_path(name):
                continue
            close = difflib.get_close_matches(name, list(KNOWN_METRICS), n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise ValueError(f"unknown metric '{name}'; {hint}known: {', '.join(KNOWN_METRICS)}, or hub:NAME")
        return names


class Recipe(Strict):
    output_dir: str = Field(description="Run folder to create; an existing one is refused unless --overwrite.")
    model: ModelConfig
    task: SequenceClassificationTask | TokenClassificationTask | LanguageModelingTask = Field(discriminator="type")
    data: DataConfig
    layers: LayersConfig = Field(default_factory=LayersConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)

    @model_validator(mode="after")
    def _parts_fit_together(self) -> Recipe:
        family, task = self.model.family, self.task
        if isinstance(task, LanguageModelingTask) and family not in OBJECTIVE_FAMILIES[task.objective]:
            fits = [name for name, families in OBJECTIVE_FAMILIES.items() if family in families]
            hint = f"family {family} takes objective: {fits[0]}" if fits else f"family {family} has no language-modeling objective yet"
            raise ValueError(f"task.objective: {task.objective} does not fit model.family {family} ({hint})")
        if family == "bilstm" and self.layers.positions != PositionPolicy():
            raise ValueError("layers.positions: not applicable to family bilstm (the recurrence carries word order; there is no position table); remove it")
        if self.eval.metrics is None:
            self.eval.metrics = list(task.default_metrics)
        is_lm = isinstance(task, LanguageModelingTask)
        wrong = [name for name in self.eval.metrics if name in KNOWN_METRICS and (name in LANGUAGE_MODELING_METRICS) != is_lm]
        if wrong:
            raise ValueError(f"eval.metrics: {wrong[0]!r} does not apply to {task.type} (use {', '.join(task.default_metrics)})")
        return self
