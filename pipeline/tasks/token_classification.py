"""`token-classification`: one tag per word of pre-split text (part-of-speech tagging, chunking, NER tags).

Words go to the tokenizer with `is_split_into_words=True`; the first token of each word carries the word's tag
and the other tokens of the word get -100 (ignored by the loss and the scores). Scores are computed over words.
A tag that an evaluation split has but the train split never had (tag sets have a long tail: Brown has 182)
cannot be predicted: such words are kept, counted, and scored as errors.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from accelerate import Accelerator
from datasets import Dataset, DatasetDict, Sequence
from torch.utils.data import DataLoader
from transformers import AutoModelForTokenClassification, PreTrainedTokenizerBase

from pipeline.data.collate import IGNORED_LABEL
from pipeline.errors import PipelineError
from pipeline.evaluation.loop import gathered_outputs
from pipeline.evaluation.metrics import LoadedMetric, compute_all
from pipeline.families.base import NO_TOKEN_FEATURES, Family, TokenFeatures
from pipeline.recipe.tasks import TokenClassificationTask
from pipeline.tasks.base import LabelledTask, Records, Scores, require_columns

log = logging.getLogger(__name__)


class TokenClassification(LabelledTask):
    """The `token-classification` task adapter (see the module docstring)."""

    auto_class = AutoModelForTokenClassification

    def __init__(self, cfg: TokenClassificationTask, family: Family):
        super().__init__()
        self.cfg = cfg

    def check_columns(self, splits: DatasetDict) -> None:
        """Every split must hold the words and tags columns, as lists."""
        wanted = {"task.tokens_column": self.cfg.tokens_column, "task.tags_column": self.cfg.tags_column}
        require_columns(splits, wanted)
        for name, split in splits.items():
            for field, column in wanted.items():
                if not isinstance(split.features[column], Sequence | list):
                    raise PipelineError(f"column '{column}' of split '{name}' must hold a list per row", field=field)

    def texts(self, split: Dataset) -> list[str]:
        """The words of each row joined by spaces (for building a tokenizer)."""
        return [" ".join(words) for words in split[self.cfg.tokens_column]]

    def fit_labels(self, train: Dataset) -> None:
        """The sorted distinct tags of the train split."""
        self.labels = sorted({str(tag) for tags in train[self.cfg.tags_column] for tag in tags})
        if len(self.labels) < 2:
            raise PipelineError(f"the train split has {len(self.labels)} distinct tag(s); need at least 2", field="task.tags_column")

    def reserved_tokens(self, tokenizer: PreTrainedTokenizerBase) -> int:
        return tokenizer.num_special_tokens_to_add(pair=False)

    def encode(
        self, split: Dataset, tokenizer: PreTrainedTokenizerBase, max_length: int, name: str, token_features: TokenFeatures = NO_TOKEN_FEATURES
    ) -> tuple[Dataset, dict[str, int]]:
        """Tokenize the words (truncating to `max_length` tokens) and give each word's first token its tag id.

        Counts empty rows and rows whose last words were cut off by truncation (those words are not scored).
        """
        index = {label: i for i, label in enumerate(self.labels)}
        unseen = sorted({str(tag) for tags in split[self.cfg.tags_column] for tag in tags} - set(index))
        if unseen:
            log.warning("%s: tags never seen in training, scored as errors: %s", name, unseen[:10])
        unseen_id = len(self.labels)  # a class the head does not have: never predicted
        words_column, tags_column = self.cfg.tokens_column, self.cfg.tags_column

        def tokenize(batch: dict[str, list[Any]]) -> dict[str, Any]:
            words = [[str(word) for word in row] for row in batch[words_column]]
            for row, tags in zip(words, batch[tags_column], strict=True):
                if len(row) != len(tags):
                    raise PipelineError(f"split '{name}': a row has {len(row)} words but {len(tags)} tags", field="task.tags_column")
            encoded = tokenizer(words, is_split_into_words=True, truncation=True, max_length=max_length,
                                return_offsets_mapping=token_features.needs_offsets)
            token_features.add(encoded, tokenizer, words, None, split_into_words=True)
            labels, truncated = [], []
            for i, tags in enumerate(batch[tags_column]):
                row, previous = [], None
                for word in encoded.word_ids(i):
                    row.append(index.get(str(tags[word]), unseen_id) if word is not None and word != previous else IGNORED_LABEL)
                    previous = word
                labels.append(row)
                truncated.append(len({w for w in encoded.word_ids(i) if w is not None}) < len(tags))
            encoded["labels"] = labels
            encoded["_truncated"] = truncated
            encoded["_empty"] = [not row for row in words]
            return encoded

        encoded = split.map(tokenize, batched=True, remove_columns=split.column_names, desc=f"tokenizing {name}")
        counts = {"examples": len(encoded), "empty_texts": sum(encoded["_empty"]), "truncated": sum(encoded["_truncated"]),
                  "scored_words": sum(label != IGNORED_LABEL for row in encoded["labels"] for label in row),
                  "words_with_unseen_tags": sum(label == unseen_id for row in encoded["labels"] for label in row)}
        return encoded.remove_columns(["_truncated", "_empty"]), counts

    def _name(self, tag_id: int) -> str:
        return self.labels[tag_id] if tag_id < len(self.labels) else "<unseen in training>"

    def evaluate(
        self, accelerator: Accelerator, model: torch.nn.Module, loader: DataLoader, metrics: list[LoadedMetric]
    ) -> tuple[Scores, Records]:
        """Scores over every tagged word, and per row its gold and predicted tags."""

        def select(batch: dict[str, torch.Tensor], output: Any) -> tuple[torch.Tensor, torch.Tensor]:
            guesses = output.logits.argmax(dim=-1)  # (batch, seq)
            # Processes hold batches of different lengths: pad to a common length before gathering.
            guesses = accelerator.pad_across_processes(guesses, dim=1, pad_index=IGNORED_LABEL)
            return guesses, accelerator.pad_across_processes(batch["labels"], dim=1, pad_index=IGNORED_LABEL)

        predictions, references, records = [], [], []
        for guesses, labels in gathered_outputs(accelerator, model, loader, select):
            for guess_row, gold_row in zip(guesses.tolist(), labels.tolist(), strict=True):
                scored = [(g, t) for g, t in zip(guess_row, gold_row, strict=True) if t != IGNORED_LABEL]
                predictions += [g for g, _ in scored]
                references += [t for _, t in scored]
                records.append({"index": len(records), "tags": [self._name(t) for _, t in scored],
                                "predictions": [self._name(g) for g, _ in scored]})
        return compute_all(metrics, predictions, references), records
