"""Task adapters, keyed by the recipe's `task.type`: each knows its head, how to encode data and how to score.

A new task (token classification, regression, ...) is one class plus its recipe section, added to `TASKS`; the
trainer and evaluator only use the `Task` protocol.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
from accelerate import Accelerator
from datasets import ClassLabel, Dataset, DatasetDict
from torch.utils.data import DataLoader
from transformers import AutoModelForSequenceClassification, PreTrainedTokenizerBase

from pipeline.batching import PadCollator, add_character_ids, pad_collator
from pipeline.errors import PipelineError
from pipeline.language_modeling import LanguageModeling
from pipeline.metrics import LoadedMetric, compute_all
from pipeline.recipe import LanguageModelingTask, SequenceClassificationTask, TokenClassificationTask
from pipeline.task_base import LabelledTask, require_columns
from pipeline.token_classification import TokenClassification

Scores = dict[str, float]
Records = list[dict[str, Any]]


class Task(Protocol):
    """What the trainer needs from a task."""

    auto_class: Any  # the transformers Auto class that adds this task's head

    def check_columns(self, splits: DatasetDict) -> None: ...
    def texts(self, split: Dataset) -> list[str]: ...
    def fit_labels(self, train: Dataset) -> None: ...
    def use_labels(self, id2label: dict[int, str]) -> None: ...
    def head_kwargs(self) -> dict[str, Any]: ...
    def encode(
        self, split: Dataset, tokenizer: PreTrainedTokenizerBase, max_length: int, name: str, max_characters: int | None = None
    ) -> tuple[Dataset, dict[str, int]]: ...
    def collator(self, tokenizer: PreTrainedTokenizerBase) -> PadCollator: ...
    def evaluate(self, accelerator: Accelerator, model: torch.nn.Module, loader: DataLoader, metrics: list[LoadedMetric]) -> tuple[Scores, Records]: ...


def _label_sort_key(value: str) -> tuple[int, float | str]:
    """Numeric labels in numeric order ("2" before "10"), then the rest alphabetically."""
    try:
        return (0, float(value))
    except ValueError:
        return (1, value)


class SequenceClassification(LabelledTask):
    """`sequence-classification`: one label per text or text pair; the head reads the pooled sequence."""

    auto_class = AutoModelForSequenceClassification

    def __init__(self, cfg: SequenceClassificationTask):
        super().__init__()
        self.cfg = cfg

    def check_columns(self, splits: DatasetDict) -> None:
        """Every split must hold the recipe's text, pair and label columns."""
        wanted = {"task.text_column": self.cfg.text_column, "task.label_column": self.cfg.label_column}
        if self.cfg.text_pair_column:
            wanted["task.text_pair_column"] = self.cfg.text_pair_column
        require_columns(splits, wanted)

    def texts(self, split: Dataset) -> list[str]:
        """The raw text of each row, pairs included (for building a tokenizer)."""
        columns = [self.cfg.text_column] + ([self.cfg.text_pair_column] if self.cfg.text_pair_column else [])
        return [str(text) for column in columns for text in split[column] if text is not None]

    def fit_labels(self, train: Dataset) -> None:
        """Label names from a `ClassLabel` feature, else the sorted distinct values of the train split."""
        feature = train.features[self.cfg.label_column]
        if isinstance(feature, ClassLabel):
            self.labels = list(feature.names)
        else:
            self.labels = sorted({str(value) for value in train[self.cfg.label_column]}, key=_label_sort_key)
        if len(self.labels) < 2:
            raise PipelineError(f"the train split has {len(self.labels)} distinct label(s); need at least 2", field="task.label_column")

    def _label_ids(self, split: Dataset, name: str) -> list[int]:
        feature = split.features[self.cfg.label_column]
        values = split[self.cfg.label_column]
        if isinstance(feature, ClassLabel) and feature.names == self.labels:
            if any(value < 0 for value in values):
                raise PipelineError(f"split '{name}' has unlabelled rows (label -1)", field="eval.splits")
            return list(values)
        index = {label: i for i, label in enumerate(self.labels)}
        names = [feature.int2str(v) if isinstance(feature, ClassLabel) else str(v) for v in values]
        unseen = sorted({label for label in names if label not in index})
        if unseen:
            raise PipelineError(
                f"split '{name}' has labels never seen in training: {unseen[:5]}{' ...' if len(unseen) > 5 else ''}",
                field="task.label_column",
            )
        return [index[label] for label in names]

    def encode(
        self, split: Dataset, tokenizer: PreTrainedTokenizerBase, max_length: int, name: str, max_characters: int | None = None
    ) -> tuple[Dataset, dict[str, int]]:
        """Tokenize (truncating to `max_length`, no padding: the collator pads each batch) and add `labels`; with
        `max_characters`, also the character ids of every token (bi-LSTM character CNN).

        Returns the encoded split and counts of what was altered: empty texts (kept, as empty input) and texts
        cut to `max_length` tokens. Nothing is dropped.
        """
        label_ids = self._label_ids(split, name)
        text_column, pair_column = self.cfg.text_column, self.cfg.text_pair_column

        def tokenize(batch: dict[str, list[Any]]) -> dict[str, Any]:
            texts = ["" if text is None else str(text) for text in batch[text_column]]
            pairs = ["" if text is None else str(text) for text in batch[pair_column]] if pair_column else None
            encoded = tokenizer(texts, pairs, truncation=True, max_length=max_length, return_offsets_mapping=bool(max_characters))
            if max_characters:
                add_character_ids(encoded, tokenizer, texts, pairs, max_characters)
            full = tokenizer(texts, pairs, truncation=False, verbose=False)["input_ids"]
            encoded["_truncated"] = [len(ids) > max_length for ids in full]
            encoded["_empty"] = [not text.strip() for text in texts]
            return encoded

        encoded = split.map(tokenize, batched=True, remove_columns=split.column_names, desc=f"tokenizing {name}")
        counts = {"examples": len(encoded), "empty_texts": sum(encoded["_empty"]), "truncated": sum(encoded["_truncated"])}
        return encoded.remove_columns(["_truncated", "_empty"]).add_column("labels", label_ids), counts

    def collator(self, tokenizer: PreTrainedTokenizerBase) -> PadCollator:
        return pad_collator(tokenizer)

    def evaluate(self, accelerator: Accelerator, model: torch.nn.Module, loader: DataLoader, metrics: list[LoadedMetric]) -> tuple[Scores, Records]:
        """Metric scores and one record per example, over every example of a prepared loader, in order.

        `gather_for_metrics` collects the batches of all processes and drops the duplicates that even sharding
        adds at the end, so every process gets the full, ordered list.
        """
        model.eval()
        predictions, references, probabilities = [], [], []
        for batch in loader:
            with torch.no_grad(), accelerator.autocast():
                logits = model(**batch).logits.float()  # (batch, num_labels)
            logits, labels = accelerator.gather_for_metrics((logits, batch["labels"]))
            predictions += logits.argmax(dim=-1).tolist()
            references += labels.tolist()
            probabilities += logits.softmax(dim=-1).tolist()
        return compute_all(metrics, predictions, references), self.records(predictions, references, probabilities)

    def records(self, predictions: list[int], references: list[int], scores: list[list[float]]) -> list[dict[str, Any]]:
        """One JSON-ready row per example: gold label, predicted label, class probabilities."""
        return [
            {"index": i, "label": self.labels[gold], "prediction": self.labels[guess], "probabilities": [round(p, 6) for p in probs]}
            for i, (gold, guess, probs) in enumerate(zip(references, predictions, scores, strict=True))
        ]


TASKS: dict[str, type] = {
    "sequence-classification": SequenceClassification,
    "token-classification": TokenClassification,
    "language-modeling": LanguageModeling,
}


def build_task(cfg: SequenceClassificationTask | TokenClassificationTask | LanguageModelingTask) -> Task:
    """The task adapter registered for `cfg.type`."""
    return TASKS[cfg.type](cfg)
