"""`sequence-classification`: one label per text or text pair; the head reads the pooled sequence."""

from __future__ import annotations

from typing import Any

import torch
from accelerate import Accelerator
from datasets import ClassLabel, Dataset, DatasetDict
from torch.utils.data import DataLoader
from transformers import AutoModelForSequenceClassification, PreTrainedTokenizerBase

from pipeline.errors import PipelineError
from pipeline.evaluation.loop import gathered_outputs
from pipeline.evaluation.metrics import LoadedMetric, compute_all
from pipeline.families.base import NO_TOKEN_FEATURES, Family, TokenFeatures
from pipeline.recipe.tasks import SequenceClassificationTask
from pipeline.tasks.base import LabelledTask, Records, Scores, require_columns


def _label_sort_key(value: str) -> tuple[int, float | str]:
    """Numeric labels in numeric order ("2" before "10"), then the rest alphabetically."""
    try:
        return (0, float(value))
    except ValueError:
        return (1, value)


class SequenceClassification(LabelledTask):
    """`sequence-classification`: one label per text or text pair; the head reads the pooled sequence."""

    auto_class = AutoModelForSequenceClassification

    def __init__(self, cfg: SequenceClassificationTask, family: Family):
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

    def reserved_tokens(self, tokenizer: PreTrainedTokenizerBase) -> int:
        """Special tokens the tokenizer adds to each input ([CLS] ... [SEP], for a pair one more [SEP])."""
        return tokenizer.num_special_tokens_to_add(pair=bool(self.cfg.text_pair_column))

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
        self, split: Dataset, tokenizer: PreTrainedTokenizerBase, max_length: int, name: str, token_features: TokenFeatures = NO_TOKEN_FEATURES
    ) -> tuple[Dataset, dict[str, int]]:
        """Tokenize (truncating to `max_length`, no padding: the collator pads each batch) and add `labels`, plus
        the family's extra per-token inputs (`token_features`).

        Returns the encoded split and counts of what was altered: empty texts (kept, as empty input) and texts
        cut to `max_length` tokens. Nothing is dropped.
        """
        label_ids = self._label_ids(split, name)
        text_column, pair_column = self.cfg.text_column, self.cfg.text_pair_column

        def tokenize(batch: dict[str, list[Any]]) -> dict[str, Any]:
            texts = ["" if text is None else str(text) for text in batch[text_column]]
            pairs = ["" if text is None else str(text) for text in batch[pair_column]] if pair_column else None
            encoded = tokenizer(texts, pairs, truncation=True, max_length=max_length, return_offsets_mapping=token_features.needs_offsets)
            token_features.add(encoded, tokenizer, texts, pairs)
            full = tokenizer(texts, pairs, truncation=False, verbose=False)["input_ids"]
            encoded["_truncated"] = [len(ids) > max_length for ids in full]
            encoded["_empty"] = [not text.strip() for text in texts]
            return encoded

        encoded = split.map(tokenize, batched=True, remove_columns=split.column_names, desc=f"tokenizing {name}")
        counts = {"examples": len(encoded), "empty_texts": sum(encoded["_empty"]), "truncated": sum(encoded["_truncated"])}
        return encoded.remove_columns(["_truncated", "_empty"]).add_column("labels", label_ids), counts

    def evaluate(self, accelerator: Accelerator, model: torch.nn.Module, loader: DataLoader, metrics: list[LoadedMetric]) -> tuple[Scores, Records]:
        """Metric scores and one record per example, over every example of a prepared loader, in order."""
        predictions, references, probabilities = [], [], []
        for logits, labels in gathered_outputs(accelerator, model, loader, lambda batch, output: (output.logits.float(), batch["labels"])):
            predictions += logits.argmax(dim=-1).tolist()  # logits: (batch, num_labels)
            references += labels.tolist()
            probabilities += logits.softmax(dim=-1).tolist()
        return compute_all(metrics, predictions, references), self.records(predictions, references, probabilities)

    def records(self, predictions: list[int], references: list[int], scores: list[list[float]]) -> list[dict[str, Any]]:
        """One JSON-ready row per example: gold label, predicted label, class probabilities."""
        return [
            {"index": i, "label": self.labels[gold], "prediction": self.labels[guess], "probabilities": [round(p, 6) for p in probs]}
            for i, (gold, guess, probs) in enumerate(zip(references, predictions, scores, strict=True))
        ]
