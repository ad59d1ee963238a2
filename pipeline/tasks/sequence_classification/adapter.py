"""`sequence-classification`: one label per text or text pair; the head reads the pooled sequence.

The text encoding, label reading and record writing here are shared by `regression` and `multi-label`, which
differ only in what a label is and how predictions are read from the logits.
"""

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
from pipeline.recipe.schema import EvalConfig
from pipeline.tasks.base import LabelledTask, Records, Scores, require_columns
from pipeline.tasks.sequence_classification.records import ClassificationRecord
from pipeline.tasks.sequence_classification.section import SequenceClassificationTask


def label_sort_key(value: str) -> tuple[int, float | str]:
    """Numeric labels in numeric order ("2" before "10"), then the rest alphabetically."""
    try:
        return (0, float(value))
    except ValueError:
        return (1, value)


def logits_and_labels(batch: dict[str, torch.Tensor], output: Any) -> tuple[torch.Tensor, torch.Tensor]:
    return output.logits.float(), batch["labels"]  # (batch, num_labels), labels as the task encoded them


class SequenceClassification(LabelledTask):
    """`sequence-classification`: one label per text or text pair; the head reads the pooled sequence."""

    auto_class = AutoModelForSequenceClassification
    labels_per_token = False

    def __init__(self, cfg: SequenceClassificationTask, family: Family, eval_cfg: EvalConfig):
        super().__init__()
        self.cfg = cfg
        self.eval_cfg = eval_cfg

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

    def display_rows(self, split: Dataset) -> list[dict[str, Any]] | None:
        """What a reader of the predictions file needs to see of each row: its text (and pair)."""
        columns = {
            "text": self.cfg.text_column,
            **({"text_pair": self.cfg.text_pair_column} if self.cfg.text_pair_column else {}),
        }
        values = {key: split[column] for key, column in columns.items()}
        return [{key: values[key][i] for key in columns} for i in range(len(split))]

    def fit_labels(self, train: Dataset) -> None:
        """Label names from a `ClassLabel` feature, else the sorted distinct values of the train split."""
        feature = train.features[self.cfg.label_column]
        if isinstance(feature, ClassLabel):
            self.labels = list(feature.names)
        else:
            self.labels = sorted({str(value) for value in train[self.cfg.label_column]}, key=label_sort_key)
        if len(self.labels) < 2:
            raise PipelineError(
                f"the train split has {len(self.labels)} distinct label(s); need at least 2", field="task.label_column"
            )

    def reserved_tokens(self, tokenizer: PreTrainedTokenizerBase) -> int:
        """Special tokens the tokenizer adds to each input ([CLS] ... [SEP], for a pair one more [SEP])."""
        return tokenizer.num_special_tokens_to_add(pair=bool(self.cfg.text_pair_column))

    def refuse_unseen(self, names: set[str], split: str) -> None:
        unseen = sorted(names - set(self.labels))
        if unseen:
            raise PipelineError(
                f"split '{split}' has labels never seen in training: {unseen[:5]}{' ...' if len(unseen) > 5 else ''}",
                field="task.label_column",
            )

    def label_values(self, split: Dataset, name: str) -> list[Any]:
        """The `labels` column the model trains on: one class id per row."""
        feature = split.features[self.cfg.label_column]
        values = split[self.cfg.label_column]
        if isinstance(feature, ClassLabel) and feature.names == self.labels:
            if any(value < 0 for value in values):
                raise PipelineError(f"split '{name}' has unlabelled rows (label -1)", field="eval.splits")
            return list(values)
        index = {label: i for i, label in enumerate(self.labels)}
        names = [feature.int2str(v) if isinstance(feature, ClassLabel) else str(v) for v in values]
        self.refuse_unseen(set(names), name)
        return [index[label] for label in names]

    def encode(
        self,
        split: Dataset,
        tokenizer: PreTrainedTokenizerBase,
        max_length: int,
        name: str,
        token_features: TokenFeatures = NO_TOKEN_FEATURES,
        for_training: bool = False,
    ) -> tuple[Dataset, dict[str, int]]:
        """Tokenize (truncating to `max_length`, no padding: the collator pads each batch) and add `labels`, plus
        the family's extra per-token inputs (`token_features`).

        Returns the encoded split and counts of what was altered: empty texts (kept, as empty input) and texts
        cut to `max_length` tokens. Nothing is dropped.
        """
        labels = self.label_values(split, name)
        text_column, pair_column = self.cfg.text_column, self.cfg.text_pair_column

        def tokenize(batch: dict[str, list[Any]]) -> dict[str, Any]:
            texts = ["" if text is None else str(text) for text in batch[text_column]]
            pairs = ["" if text is None else str(text) for text in batch[pair_column]] if pair_column else None
            encoded = tokenizer(
                texts,
                pairs,
                truncation=True,
                max_length=max_length,
                return_offsets_mapping=token_features.needs_offsets,
            )
            token_features.add(encoded, tokenizer, texts, pairs)
            _one_token_at_least(encoded, tokenizer, token_features)
            full = tokenizer(texts, pairs, truncation=False, verbose=False)["input_ids"]
            encoded["_truncated"] = [len(ids) > max_length for ids in full]
            encoded["_empty"] = [not text.strip() for text in texts]
            return encoded

        encoded = split.map(tokenize, batched=True, remove_columns=split.column_names, desc=f"tokenizing {name}")
        counts = {
            "examples": len(encoded),
            "empty_texts": sum(encoded["_empty"]),
            "truncated": sum(encoded["_truncated"]),
        }
        return encoded.remove_columns(["_truncated", "_empty"]).add_column("labels", labels), counts

    def evaluate(
        self, accelerator: Accelerator, model: torch.nn.Module, loader: DataLoader, metrics: list[LoadedMetric]
    ) -> tuple[Scores, Records]:
        """Metric scores and one record per example (gold label, predicted label, class probabilities), in order."""
        predictions, references, probabilities = [], [], []
        for logits, labels in gathered_outputs(accelerator, model, loader, logits_and_labels):
            predictions += logits.argmax(dim=-1).tolist()
            references += labels.tolist()
            probabilities += logits.softmax(dim=-1).tolist()
        records: Records = [
            ClassificationRecord(i, self.labels[gold], self.labels[guess], [round(p, 6) for p in probs])
            for i, (gold, guess, probs) in enumerate(zip(references, predictions, probabilities, strict=True))
        ]
        return compute_all(metrics, "classes", predictions, references), records


# What an empty encoding gets per column, beside the one filler token id and its token features.
_FILLER_VALUES = {"attention_mask": 1, "token_type_ids": 0, "offset_mapping": (0, 0), "special_tokens_mask": 1}


def _one_token_at_least(encoded: Any, tokenizer: PreTrainedTokenizerBase, token_features: TokenFeatures) -> None:
    """A tokenizer that adds no special tokens (a word-level one) gives an empty text no token at all, and a batch
    of such texts (length grouping puts them together) has no position to pool. Such a text reads as one unknown
    token (the pad token where there is no unknown one), in place."""
    filler = tokenizer.unk_token_id if tokenizer.unk_token_id is not None else tokenizer.pad_token_id
    features = token_features.of_token(tokenizer, tokenizer.convert_ids_to_tokens(filler))
    for row, ids in enumerate(encoded["input_ids"]):
        if not ids:
            for key in list(encoded):
                value = filler if key == "input_ids" else features.get(key, _FILLER_VALUES.get(key, 0))
                encoded[key][row] = [value]
