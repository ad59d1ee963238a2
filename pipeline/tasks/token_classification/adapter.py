"""`token-classification`: one tag per word of pre-split text (part-of-speech tagging, chunking, named entities).

Words go to the tokenizer with `is_split_into_words=True`; a byte-level BPE or SentencePiece tokenizer first learns
to put the space before every word that running text has (`Ġcat`, not `cat`), as the model saw words in
pretraining. The first piece of each word carries the word's tag (`label_pieces: all` tags every piece for
training, a B- tag becoming I- on the later pieces) and scores count words, by their first piece. A tag that an
evaluation split has but the train split never had cannot be predicted: such words are kept, counted, and
scored as errors. BIO / IOB2 / BIOES tags are also scored as entities (spans), as `seqeval` defines them.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import torch
from accelerate import Accelerator
from datasets import Dataset, DatasetDict, Sequence
from seqeval.metrics.sequence_labeling import get_entities
from tokenizers import Tokenizer
from torch.utils.data import DataLoader
from transformers import AutoModelForTokenClassification, PreTrainedTokenizerBase

from pipeline.data.collate import IGNORED_LABEL
from pipeline.errors import PipelineError
from pipeline.evaluation.loop import gathered_outputs
from pipeline.evaluation.metrics import LoadedMetric, compute_all
from pipeline.families.base import NO_TOKEN_FEATURES, Family, TokenFeatures
from pipeline.recipe.schema import EvalConfig
from pipeline.tasks.base import LabelledTask, Records, Scores, require_columns
from pipeline.tasks.token_classification.records import TaggingRecord
from pipeline.tasks.token_classification.section import TokenClassificationTask

log = logging.getLogger(__name__)
ENTITY_TAG = re.compile(r"^(?:O|[BIESLU]-.+)$")


def tags_look_like_entities(tags: list[str]) -> bool:
    """BIO / IOB2 / BIOES-style tags: every tag `O` or `X-type`, and some entity among them."""
    return all(ENTITY_TAG.match(tag) for tag in tags) and any(tag != "O" for tag in tags)


def prefix_every_word(tokenizer: PreTrainedTokenizerBase) -> None:
    """Make a byte-level (GPT-2) or SentencePiece (Metaspace) tokenizer put the space before every pre-split word,
    as running text has it; WordPiece and word-level tokenizers split on spaces anyway and are left alone."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return
    state = json.loads(backend.to_str())
    node = state.get("pre_tokenizer") or {}
    changed = False
    for part in node.get("pretokenizers", [node]):
        if part.get("type") == "ByteLevel" and not part.get("add_prefix_space"):
            part["add_prefix_space"], changed = True, True
        if part.get("type") == "Metaspace" and part.get("prepend_scheme") != "always":
            part["prepend_scheme"], changed = "always", True
    if changed:
        tokenizer._tokenizer = Tokenizer.from_str(json.dumps(state))
        tokenizer.add_prefix_space = True  # saved with the tokenizer, so a reloaded one splits words alike


class TokenClassification(LabelledTask):
    """The `token-classification` task adapter (see the module docstring)."""

    auto_class = AutoModelForTokenClassification
    labels_per_token = True

    def __init__(self, cfg: TokenClassificationTask, family: Family, eval_cfg: EvalConfig):
        super().__init__()
        self.cfg = cfg
        self.unseen: list[str] = []  # tags of evaluation splits the train split never had, ids after the labels

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

    def display_rows(self, split: Dataset) -> list[dict[str, Any]] | None:
        return [{"tokens": [str(word) for word in words]} for words in split[self.cfg.tokens_column]]

    def fit_labels(self, train: Dataset) -> None:
        """The sorted distinct tags of the train split."""
        self.labels = sorted({str(tag) for tags in train[self.cfg.tags_column] for tag in tags})
        if len(self.labels) < 2:
            raise PipelineError(
                f"the train split has {len(self.labels)} distinct tag(s); need at least 2", field="task.tags_column"
            )

    def default_metrics(self) -> list[str]:
        """Entity F1 (and word accuracy) for BIO-style tags; word accuracy and macro-F1 over tags otherwise."""
        return ["entity_f1", "accuracy"] if tags_look_like_entities(self.labels) else ["accuracy", "f1_macro"]

    def prepare_tokenizer(self, tokenizer: PreTrainedTokenizerBase) -> None:
        prefix_every_word(tokenizer)

    def reserved_tokens(self, tokenizer: PreTrainedTokenizerBase) -> int:
        return tokenizer.num_special_tokens_to_add(pair=False)

    def _tag_ids(self, split: Dataset, name: str) -> dict[str, int]:
        """Tag → id, with the tags the train split never had after the head's own (never predicted)."""
        index = {label: i for i, label in enumerate(self.labels)}
        unseen = sorted({str(tag) for tags in split[self.cfg.tags_column] for tag in tags} - set(index))
        if unseen:
            log.warning("%s: tags never seen in training, scored as errors: %s", name, unseen[:10])
        self.unseen += [tag for tag in unseen if tag not in self.unseen]
        return index | {tag: len(self.labels) + i for i, tag in enumerate(self.unseen)}

    def _later_piece_ids(self, index: dict[str, int]) -> dict[int, int]:
        """`label_pieces: all`: the tag a word's later pieces learn (B-X → I-X where I-X exists)."""
        later = {}
        for tag, i in index.items():
            inside = "I-" + tag[2:] if tag.startswith("B-") else tag
            later[i] = index.get(inside, i)
        return later

    def encode(
        self,
        split: Dataset,
        tokenizer: PreTrainedTokenizerBase,
        max_length: int,
        name: str,
        token_features: TokenFeatures = NO_TOKEN_FEATURES,
        for_training: bool = False,
    ) -> tuple[Dataset, dict[str, int]]:
        """Tokenize the words (truncating to `max_length` tokens) and give each word's first piece its tag id.

        Counts empty rows and rows whose last words were cut off by truncation (those words are not scored).
        """
        index = self._tag_ids(split, name)
        later = self._later_piece_ids(index) if for_training and self.cfg.label_pieces == "all" else None
        words_column, tags_column = self.cfg.tokens_column, self.cfg.tags_column

        def tokenize(batch: dict[str, list[Any]]) -> dict[str, Any]:
            words = [[str(word) for word in row] for row in batch[words_column]]
            for row, tags in zip(words, batch[tags_column], strict=True):
                if len(row) != len(tags):
                    raise PipelineError(
                        f"split '{name}': a row has {len(row)} words but {len(tags)} tags", field="task.tags_column"
                    )
            encoded = tokenizer(
                words,
                is_split_into_words=True,
                truncation=True,
                max_length=max_length,
                return_offsets_mapping=token_features.needs_offsets,
            )
            token_features.add(encoded, tokenizer, words, None, split_into_words=True)
            labels, truncated = [], []
            for i, tags in enumerate(batch[tags_column]):
                row, previous = [], None
                for word in encoded.word_ids(i):
                    tag = None if word is None else index[str(tags[word])]
                    row.append(
                        IGNORED_LABEL
                        if tag is None
                        else tag
                        if word != previous
                        else later[tag]
                        if later
                        else IGNORED_LABEL
                    )
                    previous = word
                labels.append(row)
                truncated.append(len({w for w in encoded.word_ids(i) if w is not None}) < len(tags))
            encoded["labels"] = labels
            encoded["_truncated"] = truncated
            encoded["_empty"] = [not row for row in words]
            return encoded

        encoded = split.map(tokenize, batched=True, remove_columns=split.column_names, desc=f"tokenizing {name}")
        unseen_ids = set(range(len(self.labels), len(index)))
        counts = {
            "examples": len(encoded),
            "empty_texts": sum(encoded["_empty"]),
            "truncated": sum(encoded["_truncated"]),
            "scored_words": sum(label != IGNORED_LABEL for row in encoded["labels"] for label in row),
            "words_with_unseen_tags": sum(label in unseen_ids for row in encoded["labels"] for label in row),
        }
        return encoded.remove_columns(["_truncated", "_empty"]), counts

    def encoding_state(self) -> dict[str, Any]:
        return {"unseen": list(self.unseen)}

    def restore_encoding_state(self, state: dict[str, Any]) -> None:
        self.unseen = list(state["unseen"])

    def _name(self, tag_id: int) -> str:
        return self.labels[tag_id] if tag_id < len(self.labels) else self.unseen[tag_id - len(self.labels)]

    def evaluate(
        self, accelerator: Accelerator, model: torch.nn.Module, loader: DataLoader, metrics: list[LoadedMetric]
    ) -> tuple[Scores, Records]:
        """Scores over every tagged word (and over entities, for metrics of tag sequences); per row its gold and
        predicted tags, and for BIO-style tags its gold and predicted entities (type, first and last word)."""

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
                records.append(
                    TaggingRecord(len(records), [self._name(t) for _, t in scored], [self._name(g) for g, _ in scored])
                )
        scores = compute_all(metrics, "classes", predictions, references)
        scores |= compute_all(metrics, "tag_sequences", [r.predictions for r in records], [r.tags for r in records])
        if tags_look_like_entities(self.labels):
            for record in records:
                record.entities = [list(span) for span in get_entities(record.tags)]
                record.predicted_entities = [list(span) for span in get_entities(record.predictions)]
        return scores, records
