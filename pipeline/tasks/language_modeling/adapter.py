"""`language-modeling`: pretraining (or continued, domain-adaptive pretraining) on raw text.

Training texts are tokenized, joined with the end-of-text token and packed into blocks of `model.max_length` tokens
(the last block of each tokenizing batch may be shorter; nothing is dropped). A scored split gives each text blocks
of its own, between two end-of-text tokens, so that each block scores text of one document and a comparison of runs
pairs documents, whatever the tokenizer; a split scored at an `task.lengths` length (named `SPLIT@LENGTH`) is packed
as training is, since its blocks must be that long. Objectives:

- `causal` (GPT-2 and rotary decoder families): position t predicts token t+1;
- `bidirectional` (bi-LSTM, ELMo): a forward LM (t predicts t+1) and a backward LM (t predicts t−1).

The family's `LMObjective` says which head to build and which output holds each direction's logits.

Scores are perplexities, exp(NLL per predicted token), pooled over the whole split, perplexities per word
(exp(NLL per word of text): the words of each text are spread evenly over its tokens, and a block holds the words of
its tokens) and bits per UTF-8 byte of text, which compare models whose tokenizers cut the same text into different
numbers of tokens.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from datasets import Dataset, DatasetDict
from torch.utils.data import DataLoader
from transformers import PreTrainedTokenizerBase

from pipeline.data.collate import IGNORED_LABEL
from pipeline.errors import PipelineError
from pipeline.evaluation.loop import gathered_outputs
from pipeline.evaluation.metrics import LoadedMetric, compute_all
from pipeline.families.base import NO_TOKEN_FEATURES, Family, TokenFeatures
from pipeline.recipe.schema import EvalConfig
from pipeline.tasks.base import Records, Scores, TaskDefaults, require_columns
from pipeline.tasks.language_modeling.records import BlockRecord
from pipeline.tasks.language_modeling.section import LanguageModelingTask
from pipeline.tasks.records import example_ids

TEXTS_PER_PACKING_BATCH = 10_000  # texts tokenized and packed together; each such batch ends in one short block


def token_nll(logits: torch.Tensor, labels: torch.Tensor, shift: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The NLL of each token predicted `shift` steps away (+1 forward, −1 backward), 0 where nothing is predicted,
    and whether it is predicted. logits (batch, seq, vocab), labels (batch, seq) with -100 → (batch, seq − 1) twice;
    for the forward direction, column p is the token at position p + 1 of the block."""
    if shift == 1:
        logits, targets = logits[:, :-1], labels[:, 1:]
    else:
        logits, targets = logits[:, 1:], labels[:, :-1]
    nll = F.cross_entropy(logits.float().transpose(1, 2), targets, ignore_index=IGNORED_LABEL, reduction="none")
    return nll, targets != IGNORED_LABEL


def summed_token_nll(logits: torch.Tensor, labels: torch.Tensor, shift: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per example: summed NLL of the tokens predicted `shift` steps away, and their count: (batch,), (batch,)."""
    nll, predicted = token_nll(logits, labels, shift)
    return nll.sum(dim=1), predicted.sum(dim=1)


def is_text(value: Any) -> bool:
    """Whether a row's value is text to model (not missing, not only white space)."""
    return value is not None and bool(str(value).strip())


def packed_blocks(encoded: Any, separator: dict[str, Any], block: int) -> dict[str, list[list[Any]]]:
    """Every per-token column as one stream (each text followed by the separator), cut into blocks of `block`."""
    blocks = {}
    for key, end in separator.items():
        stream = [item for rows in encoded[key] for item in [*rows, end]]
        blocks[key] = [stream[i : i + block] for i in range(0, len(stream), block)]
    return blocks


def document_blocks(
    encoded: Any, separator: dict[str, Any], block: int, texts: list[str], rows: list[int], directions: int
) -> dict[str, list[Any]]:
    """Each text on its own, between two separators (the model predicts its first token from the separator, as in
    the packed stream it trained on, and the separator after it), cut into blocks of `block`. Per block: the row
    of its text (`document`), and the text's words and UTF-8 bytes spread over its blocks by their tokens,
    counted once per direction a model predicts in."""
    blocks: dict[str, list[Any]] = {key: [] for key in [*separator, "document", "words", "bytes"]}
    for position, (text, row) in enumerate(zip(texts, rows, strict=True)):
        streams = {key: [end, *encoded[key][position], end] for key, end in separator.items()}
        length = len(streams["input_ids"])
        words, size = len(text.split()) * directions, len(text.encode("utf-8")) * directions
        for start in range(0, length, block):
            for key, stream in streams.items():
                blocks[key].append(stream[start : start + block])
            share = (min(start + block, length) - start) / length
            blocks["document"].append(row)
            blocks["words"].append(round(words * share, 6))
            blocks["bytes"].append(round(size * share, 6))
    return blocks


def words_per_block(texts: list[str], ids: list[list[int]], block: int, directions: int) -> list[float]:
    """The words of text each block of `block` tokens holds: each text's words (split on white space) spread
    evenly over its tokens and its separator, counted once per direction a model predicts in."""
    shares = [share for text, row in zip(texts, ids, strict=True) for share in [len(text.split()) / (len(row) + 1)]
              * (len(row) + 1)]  # fmt: skip
    return [round(sum(shares[i : i + block]) * directions, 6) for i in range(0, len(shares), block)]


def position_buckets(length: int) -> list[tuple[int, int]]:
    """Buckets of token positions [start, end) for the loss by position: 0–63, 64–127, 128–255... up to `length`."""
    edges = [0] + [edge for edge in (2**k for k in range(6, 32)) if edge < length] + [length]
    return list(itertools.pairwise(edges))


def loss_by_position(sums: torch.Tensor, counts: torch.Tensor) -> Scores:
    """`loss/positions A-B`: the mean NLL of the tokens at positions A..B of their block (forward direction), from
    per-position sums and counts (positions,)."""
    scores = {}
    for start, end in position_buckets(len(sums) + 1):
        tokens = counts[max(start - 1, 0) : end - 1].sum()
        if tokens > 0:
            scores[f"loss/positions {start}-{end - 1}"] = float(sums[max(start - 1, 0) : end - 1].sum() / tokens)
    return scores


class LanguageModeling(TaskDefaults):
    """The `language-modeling` task adapter (see the module docstring)."""

    labels_per_token = True
    body_outputs_cacheable = False  # the head reads the token table (tied), and a frozen LM has nothing to learn

    def __init__(self, cfg: LanguageModelingTask, family: Family, eval_cfg: EvalConfig):
        self.cfg = cfg
        self.objective = family.lm_objective  # the recipe schema checked that it is cfg.objective
        self.auto_class = self.objective.auto_class
        self.directions = [prefix for prefix, _, _ in self.objective.directions]

    def check_columns(self, splits: DatasetDict) -> None:
        require_columns(splits, {"task.text_column": self.cfg.text_column})

    def texts(self, split: Dataset) -> list[str]:
        """The raw text of each row (for building a tokenizer)."""
        return [str(text) for text in split[self.cfg.text_column] if text is not None]

    def example_ids(self, split: Dataset) -> list[str]:
        """Each row's identity from its text (`records.example_ids`): the document its blocks score."""
        return example_ids([str(text) for text in split[self.cfg.text_column]])

    def fit_labels(self, train: Dataset) -> None:
        """Nothing to learn: the labels are the text itself."""

    def use_labels(self, id2label: dict[int, str]) -> None:
        """Nothing to reuse."""

    def head_kwargs(self) -> dict[str, Any]:
        return {}

    def reserved_tokens(self, tokenizer: PreTrainedTokenizerBase) -> int:
        """A block needs a token beside the one it predicts."""
        return 1

    def encode(
        self,
        split: Dataset,
        tokenizer: PreTrainedTokenizerBase,
        max_length: int,
        name: str,
        token_features: TokenFeatures = NO_TOKEN_FEATURES,
        for_training: bool = False,
    ) -> tuple[Dataset, dict[str, int]]:
        """Blocks of at most `max_length` tokens with `labels` = the ids (and the family's extra per-token inputs,
        cut alike): the training split (and a split scored at an `task.lengths` length) packs its texts into one
        stream; a scored split gives each text blocks of its own (`document_blocks`), so that every record scores
        text of one document, which a comparison pairs across tokenizers.

        Empty texts are skipped and counted; texts longer than a block are split across blocks, not truncated.
        """
        if tokenizer.eos_token_id is None:
            raise PipelineError(
                "language modeling joins texts with the end-of-text token, and this tokenizer has none",
                field="model.tokenizer",
            )
        separator = {"input_ids": tokenizer.eos_token_id, **token_features.of_token(tokenizer, tokenizer.eos_token)}

        per_document = not for_training and "@" not in name  # `NAME@LENGTH` blocks must be that long: packed
        scoring_only = [] if for_training else ["words", "bytes", "document"]

        def encode_texts(batch: dict[str, list[Any]], indices: list[int]) -> dict[str, list[Any]]:
            kept = [(i, str(t)) for i, t in zip(indices, batch[self.cfg.text_column], strict=True) if is_text(t)]
            if not kept:  # a batch of empty texts makes no block
                return {key: [] for key in [*separator, "attention_mask", "labels", *scoring_only]}
            rows, texts = [row for row, _ in kept], [text for _, text in kept]
            encoded = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=token_features.needs_offsets)
            token_features.add(encoded, tokenizer, texts, None)
            if per_document:
                blocks = document_blocks(encoded, separator, max_length, texts, rows, len(self.directions))
            else:
                blocks = packed_blocks(encoded, separator, max_length)
                if not for_training:  # scoring only: the words each block holds
                    blocks["words"] = words_per_block(texts, encoded["input_ids"], max_length, len(self.directions))
                    blocks["bytes"] = [float("nan")] * len(blocks["input_ids"])  # not kept by packed blocks
                    blocks["document"] = [-1] * len(blocks["input_ids"])
            blocks["attention_mask"] = [[1] * len(block) for block in blocks["input_ids"]]
            blocks["labels"] = [list(block) for block in blocks["input_ids"]]
            return blocks

        empty = sum(1 for text in split[self.cfg.text_column] if text is None or not str(text).strip())
        if empty == len(split):
            raise PipelineError(f"split '{name}': every text is empty; there is nothing to model", field="data")
        packed = split.map(
            encode_texts,
            batched=True,
            with_indices=True,
            batch_size=TEXTS_PER_PACKING_BATCH,
            remove_columns=split.column_names,
            desc=f"encoding {name}",
        )
        if len(packed) == 0:
            raise PipelineError(f"split '{name}' has no text to model", field="data")
        counts = {
            "examples": len(split),
            "empty_texts": empty,
            "truncated": 0,
            "blocks": len(packed),
            "tokens": sum(map(len, packed["input_ids"])),
        }
        return packed, counts

    def evaluate(
        self, accelerator: Accelerator, model: torch.nn.Module, loader: DataLoader, metrics: list[LoadedMetric]
    ) -> tuple[Scores, Records]:
        """Perplexity (all directions pooled, and per direction for `bidirectional`), the mean token NLL as `loss`,
        per word (`word_loss`, `word_perplexity`) and, for blocks of whole documents, in bits per UTF-8 byte of text
        (`bits_per_byte`: comparable across tokenizers); one record per block: its predicted tokens and NLL, and the
        words, bytes and row of the text it holds."""

        def select(batch: dict[str, torch.Tensor], output: Any) -> tuple[torch.Tensor, ...]:
            per_direction, first = [], None
            for _, attribute, shift in self.objective.directions:
                nll, predicted = token_nll(getattr(output, attribute), batch["labels"], shift)
                first = (nll, predicted) if first is None else first
                per_direction.append(nll.sum(dim=1))
            # Blocks of one batch differ in length across processes: pad the per-position rows before gathering.
            by_position = accelerator.pad_across_processes(first[0], dim=1)
            predicted = accelerator.pad_across_processes(first[1].float(), dim=1)
            unknown = torch.full((len(predicted),), float("nan"), device=predicted.device)
            # (blocks, 3): the words and bytes of text each block holds, and the row of its text
            held = torch.stack([batch.get(key, unknown).double() for key in ("words", "bytes", "document")], dim=1)
            return torch.stack(per_direction, dim=1), first[1].sum(dim=1), by_position, predicted, held

        nll: dict[str, list[float]] = {prefix: [] for prefix in self.directions}
        counts: list[int] = []
        words, sizes, documents = [], [], []
        position_sums, position_counts = torch.zeros(0), torch.zeros(0)
        for gathered, count, by_position, predicted, held in gathered_outputs(accelerator, model, loader, select):
            for column, prefix in enumerate(self.directions):
                nll[prefix] += gathered[:, column].tolist()
            counts += count.tolist()
            words += held[:, 0].tolist()
            sizes += held[:, 1].tolist()
            documents += held[:, 2].tolist()
            width = max(len(position_sums), by_position.shape[1])
            position_sums = F.pad(position_sums, (0, width - len(position_sums))) + F.pad(
                by_position.sum(0).cpu(), (0, width - by_position.shape[1])
            )
            position_counts = F.pad(position_counts, (0, width - len(position_counts))) + F.pad(
                predicted.sum(0).cpu(), (0, width - predicted.shape[1])
            )
        pooled = [sum(values) for values in zip(*nll.values(), strict=True)]
        scores = compute_all(metrics, "token_nll", pooled, [count * len(self.directions) for count in counts])
        if len(self.directions) > 1:
            for prefix, values in nll.items():
                scores.update(
                    {prefix + name: value for name, value in compute_all(metrics, "token_nll", values, counts).items()}
                )
        total_tokens = sum(counts) * len(self.directions)
        scores["loss"] = sum(pooled) / total_tokens if total_tokens else float("nan")
        scores |= loss_by_position(position_sums, position_counts)
        per_word = not any(math.isnan(value) for value in words)  # the training split is encoded without words
        if per_word and sum(words) > 0:
            scores |= compute_all(metrics, "word_nll", pooled, words)
            scores["word_loss"] = sum(pooled) / sum(words)
        per_byte = not any(math.isnan(value) for value in sizes)  # packed blocks keep no bytes
        if per_byte and sum(sizes) > 0:
            scores["bits_per_byte"] = sum(pooled) / (math.log(2) * sum(sizes))
        records: Records = [
            BlockRecord(
                i, count, round(value, 4), words=word if per_word else None, bytes=size if per_byte else None,
                document=int(document) if per_byte else None,
            )
            for i, (count, value, word, size, document) in enumerate(
                zip(counts, pooled, words, sizes, documents, strict=True)
            )
        ]  # fmt: skip
        return scores, records
