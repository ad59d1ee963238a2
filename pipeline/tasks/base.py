"""The Task protocol the trainer and evaluator use (a task type's adapter), and what several adapters share: the
column check, and a fixed label set that becomes the head's size."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import torch
from accelerate import Accelerator
from datasets import Dataset, DatasetDict
from torch.utils.data import DataLoader
from transformers import PreTrainedTokenizerBase

from pipeline.data.collate import PadCollator
from pipeline.errors import PipelineError
from pipeline.evaluation.metrics import LoadedMetric
from pipeline.families.base import TokenFeatures
from pipeline.tasks.records import PredictionRecord, example_ids

Scores = dict[str, float]
Records = list[PredictionRecord]
REFERENCE = "+reference"  # the name a task's reference rows (`Task.reference_split`) are encoded and cached under


class Task(Protocol):
    """What the trainer needs from a task."""

    auto_class: Any  # the transformers Auto class that adds this task's head
    labels_per_token: bool  # labels are one per token (padded like the input), else one value or vector per example
    # Whether the body's outputs can stand in for the body when it is frozen (not where the head reads the token table).
    body_outputs_cacheable: bool

    def check_columns(self, splits: DatasetDict) -> None: ...
    def texts(self, split: Dataset) -> list[str]: ...
    def display_rows(self, split: Dataset) -> list[dict[str, Any]] | None: ...
    def example_ids(self, split: Dataset) -> list[str]: ...
    def fit_labels(self, train: Dataset) -> None: ...
    def use_labels(self, id2label: dict[int, str]) -> None: ...
    def default_metrics(self) -> list[str]: ...
    def head_kwargs(self) -> dict[str, Any]: ...
    def prepare_tokenizer(self, tokenizer: PreTrainedTokenizerBase) -> None: ...
    def reserved_tokens(self, tokenizer: PreTrainedTokenizerBase) -> int: ...
    def encode(
        self,
        split: Dataset,
        tokenizer: PreTrainedTokenizerBase,
        max_length: int,
        name: str,
        token_features: TokenFeatures,
        for_training: bool = False,
    ) -> tuple[Dataset, dict[str, int]]: ...
    def evaluate(
        self, accelerator: Accelerator, model: torch.nn.Module, loader: DataLoader, metrics: list[LoadedMetric]
    ) -> tuple[Scores, Records]: ...
    def encoding_state(self) -> dict[str, Any]: ...
    def restore_encoding_state(self, state: dict[str, Any]) -> None: ...
    def make_collator(self, pad_token_id: int, pad_values: dict[str, int]) -> Callable[[list[dict]], dict]: ...
    def training_loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor: ...
    def write_model_extras(self, folder: Path, max_length: int) -> None: ...
    def prepare_model(self, model: torch.nn.Module) -> None: ...
    def see_source(self, source: DatasetDict) -> None: ...
    def reference_split(self) -> Dataset | None: ...
    def use_reference(self, encoded: Dataset) -> None: ...


class TaskDefaults:
    """What most tasks do alike: no tokenizer changes, nothing to show beside the records, the recipe section's
    default metrics, nothing learnt while encoding, a body whose outputs a frozen run may cache."""

    cfg: Any
    body_outputs_cacheable = True

    def prepare_tokenizer(self, tokenizer: PreTrainedTokenizerBase) -> None:
        """Adjust the tokenizer to the task's inputs (it is saved with the model)."""

    def display_rows(self, split: Dataset) -> list[dict[str, Any]] | None:
        return None

    def example_ids(self, split: Dataset) -> list[str]:
        """Each row's identity (`records.example_ids`) from what the predictions file shows of it; by position where
        it shows nothing."""
        rows = self.display_rows(split)
        return example_ids(rows) if rows is not None else [f"@{index}" for index in range(len(split))]

    def default_metrics(self) -> list[str]:
        return list(self.cfg.default_metrics)

    def encoding_state(self) -> dict[str, Any]:
        """What `encode` learnt beyond the encoded rows (kept with cached encodings); nothing by default."""
        return {}

    def restore_encoding_state(self, state: dict[str, Any]) -> None:
        """Take back what `encode` would have learnt, when the encoded splits come from the cache."""

    def make_collator(self, pad_token_id: int, pad_values: dict[str, int]) -> Callable[[list[dict]], dict]:
        """The collator of encoded examples into batches: `PadCollator` (pad_values: the family's extra inputs)."""
        return PadCollator(pad_token_id, pad_values, self.labels_per_token)

    def training_loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The loss of one training batch: the model's own, from the labels the batch holds."""
        return model(**batch).loss

    def write_model_extras(self, folder: Path, max_length: int) -> None:
        """Files the task adds to the saved model folder (nothing by default)."""

    def prepare_model(self, model: torch.nn.Module) -> None:
        """Adjust the loaded model before surgery (nothing by default)."""

    def see_source(self, source: DatasetDict) -> None:
        """Every split of the data, before the run picks or limits its own (what an evaluation may score against
        beyond one split, such as a retrieval collection); nothing by default."""

    def reference_split(self) -> Dataset | None:
        """Rows the task encodes beside the splits (cached with them, under `REFERENCE`) and reads while evaluating,
        such as the documents a query searches; none by default."""
        return None

    def use_reference(self, encoded: Dataset) -> None:
        """Take the encoded `reference_split` (only called where there is one)."""


def require_columns(splits: DatasetDict, wanted: dict[str, str]) -> None:
    """Every split must hold every wanted column; wanted maps the recipe field naming a column to the column."""
    for name, split in splits.items():
        for field, column in wanted.items():
            if column not in split.column_names:
                raise PipelineError(
                    f"column '{column}' not in split '{name}' (columns: {split.column_names})", field=field
                )


class LabelledTask(TaskDefaults):
    """A task whose head predicts one of a fixed list of labels (classes or tags), learnt from the train split."""

    def __init__(self) -> None:
        self.labels: list[str] = []

    def use_labels(self, id2label: dict[int, str]) -> None:
        """Reuse the label order a trained model was saved with."""
        self.labels = [id2label[i] for i in range(len(id2label))]

    def head_kwargs(self) -> dict[str, Any]:
        return {
            "num_labels": len(self.labels),
            "id2label": dict(enumerate(self.labels)),
            "label2id": {label: i for i, label in enumerate(self.labels)},
        }
