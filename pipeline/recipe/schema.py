"""The recipe: one typed schema (pydantic v2), validated once at load time (`pipeline.recipe.io` reads it).

The schema is data: field types, ranges and defaults, and the checks that need nothing but the recipe. It imports
no model, task or metric code. Every default of the product lives here (`layers` and the task sections of
`pipeline.tasks` hold theirs); what needs a registry (is this family known, does it have a position table, is this
metric known and does it fit the task) is checked by `pipeline.experiment.recipes` when a recipe is loaded.
`pipeline schema` prints the reference built from it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import (
    Field,
    SerializeAsAny,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from pipeline.recipe.base import MAX_SEED, MAX_SIZE, Strict, existing_path
from pipeline.recipe.layers import LayersConfig
from pipeline.recipe.migrate import migrate_saved
from pipeline.recipe.model import ModelConfig, TokenizerBuild
from pipeline.recipe.tasks import SECTIONS, TaskSection, section_for
from pipeline.recipe.variants import SAVED

DATA_FORMATS = {
    ".csv": "csv",
    ".json": "json",
    ".jsonl": "json",
    ".parquet": "parquet",
    ".txt": "text",
    ".conll": "conll",
}


DEFAULT_HOLDOUT = 0.2  # the share of the train split a `validation` split takes where a run reads one and lacks it


class CsvLayout(Strict):
    """How `.csv` files are laid out, where not as comma-separated values with a header row."""

    delimiter: str = Field(",", min_length=1, max_length=1, description="The field separator (`\\t`: tabs).")
    quoting: bool = Field(
        True, description='Fields may be quoted with `"`; false: a quote is an ordinary character (as in STS-B).'
    )
    columns: list[str] | None = Field(
        None,
        min_length=1,
        description="Names of the fields of a file without a header row, in order. A row with fewer fields is an "
        "error naming it; fields past the named ones are left out (and counted in a line).",
    )

    @field_validator("columns")
    @classmethod
    def _distinct_names(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("columns must be distinct names")
        return value


class DataConfig(Strict):
    hub_id: str | None = Field(None, description="Hub data set id, e.g. `glue` (needs the network).")
    hub_config: str | None = Field(None, description="Hub data set configuration, e.g. `sst2`.")
    revision: str | None = Field(None, description="Hub data set revision.")
    files: str | dict[str, str] | None = Field(
        None,
        description="Local csv/json/jsonl/parquet/txt/conll: one file (the train split) or `{split: path}`. A `.txt` "
        "file is one "
        "text per line (column `text`); a `.conll` file is one word per line, sentences split by blank lines "
        "(columns `tokens`, `tags`).",
    )
    folder: str | None = Field(None, description="Folder-per-class tree: `<folder>/<label>/*.txt`.")
    train_split: str = Field("train", description="Split to train on.")
    holdout: dict[str, float] | None = Field(
        None,
        description="Splits carved out of the train split (seeded, stratified by label) where the data lacks them, "
        "e.g. `{validation: 0.1, test: 0.1}`: always carved, so a later run may read them unseen. null (default): a "
        f"{DEFAULT_HOLDOUT:.0%} `validation` split, carved only when an eval split reads it; otherwise every training "
        "row trains.",
    )
    split_seed: int = Field(
        42, ge=0, le=MAX_SEED, description="Seed of the holdout split (separate from `train.seed`)."
    )
    stratify_by: str | None = Field(
        None,
        description="Column the holdout is stratified by; null: the task's label column (none for language modeling).",
    )
    max_train_samples: int | None = Field(None, gt=0, le=10**12, description="Use only this many training examples.")
    max_eval_samples: int | None = Field(
        None, gt=0, le=10**12, description="Use only this many examples per eval split."
    )
    csv: CsvLayout | None = Field(
        None, description="How `.csv` files are laid out (delimiter, quoting, names for a file without a header row)."
    )
    conll_columns: tuple[int, int] = Field(
        (0, -1),
        description="`.conll` files: the field of the word and of its tag on each line (negative: from the end).",
    )
    drop_missing_labels: bool = Field(
        False, description="Leave out (and count) rows whose label is missing; false: such a row is an error naming it."
    )

    @field_validator("folder")
    @classmethod
    def _folder_exists(cls, value: str | None) -> str | None:
        return None if value is None else existing_path(value, "folder")

    @field_validator("files")
    @classmethod
    def _files_exist(cls, value: str | dict[str, str] | None) -> str | dict[str, str] | None:
        for path in [value] if isinstance(value, str) else (value or {}).values():
            existing_path(path, "file")
            if Path(path).suffix.lower() not in DATA_FORMATS:
                raise ValueError(f"'{path}': unknown format; use one of {', '.join(DATA_FORMATS)}")
        return value

    @field_validator("holdout")
    @classmethod
    def _fractions(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        if value is not None and (any(not 0 < f < 1 for f in value.values()) or sum(value.values()) >= 1):
            raise ValueError(f"fractions must be in (0, 1) and sum below 1, got {value}")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> DataConfig:
        given = [name for name in ("hub_id", "files", "folder") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"set exactly one of data.hub_id, data.files or data.folder (got {given or 'none'})")
        if self.train_split in (self.holdout or {}):
            raise ValueError(
                f"data.holdout: '{self.train_split}' is the training split; name the held-out split otherwise (e.g. "
                "validation)"
            )
        return self


class TrainConfig(Strict):
    epochs: int = Field(3, gt=0, le=10**12, description="Passes over the training data.")
    max_steps: int | None = Field(
        None, gt=0, le=10**12, description="Stop after this many optimizer steps (wins over epochs)."
    )
    batch_size: int = Field(
        16, gt=0, le=MAX_SIZE, description="Examples per optimizer step, summed over all processes."
    )
    micro_batch_size: int | None = Field(
        None,
        gt=0,
        le=MAX_SIZE,
        description="Examples per forward pass on one device; the rest is gradient accumulation.",
    )
    lr: float = Field(5e-5, gt=0, description="Peak learning rate (AdamW).")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay (not applied to biases and norms).")
    adam_betas: tuple[float, float] = Field((0.9, 0.999), description="AdamW betas.")
    adam_eps: float = Field(1e-8, gt=0, description="AdamW epsilon.")
    scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup", "polynomial", "inverse_sqrt"] = Field(
        "linear", description="Learning-rate schedule (transformers `get_scheduler` names)."
    )
    warmup_ratio: float = Field(0.0, ge=0, lt=1, description="Warm-up as a fraction of all optimizer steps.")
    warmup_steps: int = Field(0, ge=0, le=10**12, description="Warm-up in optimizer steps (use this or warmup_ratio).")
    max_grad_norm: float | None = Field(1.0, gt=0, description="Clip the gradient norm to this; null: no clipping.")
    mixed_precision: Literal["no", "fp16", "bf16"] | None = Field(
        None, description="Autocast precision (fp16 needs a GPU); null: as `accelerate launch` says, else no."
    )
    seed: int = Field(42, ge=0, le=MAX_SEED, description="Seed of model initialisation, dropout and data order.")
    group_by_length: bool = Field(
        True,
        description="Batch training examples of similar length (a seeded shuffle, sorted within mega-batches of 50 "
        "batches, batches shuffled): far less padding; false: a plain seeded shuffle.",
    )
    cache_frozen_features: bool = Field(
        True,
        description="When nothing below the head trains, compute the body's outputs once (cached under "
        "EMBEDLAB_CACHE, keyed by weights, tokenizer and data) and train only the head on them.",
    )
    skip_unread_positions: bool = Field(
        True,
        description="Where the head reads one position only (sequence-level heads of BERT-layout encoders read "
        "position 0), the last block computes that position alone: the same function, less work; false: every "
        "position.",
    )
    dataloader_workers: int = Field(
        0, ge=0, le=64, description="Background processes preparing batches (0: in the training process)."
    )
    eval_every_steps: int | None = Field(
        None, gt=0, le=10**12, description="Evaluate every N optimizer steps; null: at the end of every epoch."
    )
    save_every_steps: int | None = Field(
        None, gt=0, le=10**12, description="Save a checkpoint (full training state + model) every N optimizer steps."
    )
    checkpoint_every_epoch: bool = Field(True, description="Also save a checkpoint at the end of every epoch.")
    keep_checkpoints: int = Field(2, gt=0, le=MAX_SIZE, description="Keep the newest K checkpoints.")
    on_nonfinite: Literal["stop", "skip"] = Field(
        "stop", description="A non-finite loss/gradient: `stop` (after saving the last good state) or `skip` the step."
    )
    log_every_steps: int = Field(10, gt=0, le=10**12, description="Write a line to log.jsonl every N optimizer steps.")
    report_to: list[Literal["tensorboard", "wandb", "mlflow", "comet_ml", "aim", "clearml", "dvclive"]] = Field(
        default_factory=list,
        description="Experiment trackers, through Accelerate; each gets the whole resolved recipe as "
        "flat hyperparameters, and the training and evaluation scores.",
    )
    collective_timeout_s: int = Field(
        600,
        gt=0,
        le=7 * 24 * 3600,
        description="Several processes: a collective that waits longer than this fails the run.",
    )

    @model_validator(mode="after")
    def _one_warmup(self) -> TrainConfig:
        if not all(0 <= beta < 1 for beta in self.adam_betas):
            raise ValueError(f"train.adam_betas must each be in [0, 1), got {list(self.adam_betas)}")
        if self.warmup_steps and self.warmup_ratio:
            raise ValueError("set train.warmup_steps or train.warmup_ratio, not both")
        if self.micro_batch_size and self.batch_size % self.micro_batch_size:
            raise ValueError(f"train.batch_size {self.batch_size} is not a multiple of train.micro_batch_size")
        return self


class EvalConfig(Strict):
    metrics: list[str] | None = Field(
        None,
        min_length=1,
        description="Metrics by name (the known names are listed below), a path to an `evaluate` script, or "
        "`hub:NAME`. "
        "null: the task type's defaults (each task type's are listed below).",
    )
    splits: list[str] = Field(
        default_factory=lambda: ["validation"],
        min_length=1,
        description="Splits evaluated at the end; the first is also evaluated during training.",
    )
    batch_size: int = Field(64, gt=0, le=MAX_SIZE, description="Examples per evaluation forward pass on one device.")
    trust_metric_code: bool = Field(
        False, description="Allow metric scripts given by path or `hub:NAME`: loading one runs its code."
    )

    @model_validator(mode="before")
    @classmethod
    def _moved_to_task_sections(cls, value: Any) -> Any:
        for key in ("lengths", "threshold"):
            if isinstance(value, dict) and key in value:
                task = next((name for name, section in SECTIONS.items() if key in section.model_fields), "task's")
                raise ValueError(f"{key} moved to the {task} task section: write task.{key}, not eval.{key}")
        return value


class Recipe(Strict):
    output_dir: str = Field(
        min_length=1, description="Run folder to create; an existing one is refused unless --overwrite."
    )
    model: ModelConfig
    task: SerializeAsAny[TaskSection] = Field(
        description="The task: `type` selects the section (head, data adapter, metrics); the task types' sections "
        "follow."
    )
    data: DataConfig
    layers: LayersConfig = Field(default_factory=LayersConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)

    @model_validator(mode="before")
    @classmethod
    def _older_run_folder(cls, value: Any, info: ValidationInfo) -> Any:
        """A run folder's resolved recipe, saved by an older version, in today's form (`pipeline.recipe.migrate`)."""
        saved = bool(info.context and info.context.get(SAVED))
        return migrate_saved(value) if saved and isinstance(value, dict) else value

    @field_validator("task", mode="wrap")
    @classmethod
    def _section_of_its_type(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> TaskSection:
        """`task` validates as the section its `type` names (each task type registers its own)."""
        if isinstance(value, TaskSection):
            return value
        if not isinstance(value, dict):
            return handler(value)
        return section_for(value.get("type")).model_validate(value)

    def replaces_vocabulary(self) -> bool:
        """Whether the pretrained table moves to another vocabulary: a tokenizer built from the data, or one the
        recipe names (another model's) with the table replaced (`init: transfer`, `random` or `vectors`: rows for
        that tokenizer's vocabulary). A tokenizer named with the table kept is read as the model's own."""
        if self.model.config is not None or self.model.tokenizer is None:
            return False
        return isinstance(self.model.tokenizer, TokenizerBuild) or self.layers.token_embeddings.replaces_table()

    @model_validator(mode="after")
    def _parts_fit_together(self) -> Recipe:
        table = self.layers.token_embeddings
        new_vocabulary = isinstance(self.model.tokenizer, TokenizerBuild)
        if new_vocabulary and self.model.config is None and not table.replaces_table():
            raise ValueError(
                "model.tokenizer: a new tokenizer's ids mean nothing to a pretrained model's table; replace the table "
                "(layers.token_embeddings: {policy: replace, init: transfer}, or init: random / vectors)"
            )
        if table.moves_to_tokenizer() and (self.model.config is not None or self.model.tokenizer is None):
            raise ValueError(
                "layers.token_embeddings.init: transfer moves a pretrained table (model.name_or_path) to another "
                "tokenizer (model.tokenizer: another model's tokenizer, or {build: wordpiece | bpe | word})"
            )
        if table.trained_rows() == "new" and self.model.add_tokens is None:
            raise ValueError(
                "layers.token_embeddings.rows: new trains the rows of added tokens; model.add_tokens adds none"
            )
        if table.per_position_tables() and self.model.max_length is None:
            raise ValueError("layers.token_embeddings.per_position needs model.max_length (one table per position)")
        self.task.check_training(self.train)
        if self.model.add_tokens is not None and self.replaces_vocabulary():
            raise ValueError("model.add_tokens: a new tokenizer is built from the data; add its tokens there, not here")
        if self.eval.metrics is None and self.task.default_metrics is not None:
            self.eval.metrics = list(self.task.default_metrics)  # the one place `eval.metrics: null` is resolved
        return self
