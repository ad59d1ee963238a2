"""Turning encoded examples into padded batches, and the character ids the bi-LSTM's character CNN reads.

Every family pads on the right: GPT-2 pools the last real token and the bi-LSTM reverses each sequence within
its length, and both rely on real tokens coming first.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import BatchEncoding, PreTrainedTokenizerBase

from pipeline.bilstm import CHAR_PAD, characters_of_encoding

IGNORED_LABEL = -100  # positions a loss skips (padding), as in PyTorch's cross-entropy


def without_labels(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The model inputs of a batch: evaluation scores from the logits, so the model need not compute a loss."""
    return {key: value for key, value in batch.items() if key != "labels"}


def add_character_ids(
    encoded: BatchEncoding,
    tokenizer: PreTrainedTokenizerBase,
    texts: list[str] | list[list[str]],
    pairs: list[str] | None,
    max_characters: int,
    split_into_words: bool = False,
) -> None:
    """Replace `offset_mapping` in a batch encoding by `char_ids`: per example, (tokens, max_characters) ids.

    texts: the encoded texts (and `pairs`, their second texts), or with `split_into_words` the word lists, whose
    offsets count within each word.
    """
    offsets = encoded.pop("offset_mapping")
    rows = []
    for i in range(len(offsets)):
        if split_into_words:
            sources, which = tuple(texts[i]), encoded.word_ids(i)
        else:
            sources, which = (texts[i],) if pairs is None else (texts[i], pairs[i]), encoded.sequence_ids(i)
        tokens = tokenizer.convert_ids_to_tokens(encoded["input_ids"][i])
        rows.append(characters_of_encoding(sources, offsets[i], which, tokens, max_characters))
    encoded["char_ids"] = rows


class PadCollator:
    """Encoded examples → a batch of tensors padded on the right to the longest example.

    input_ids (batch, seq) padded with the pad id; attention_mask and token_type_ids with 0; char_ids
    (batch, seq, max_characters) with padding characters; per-token labels with -100; one label per example
    is stacked as (batch,).
    """

    def __init__(self, pad_token_id: int):
        self.pad_values = {"input_ids": pad_token_id, "attention_mask": 0, "token_type_ids": 0, "labels": IGNORED_LABEL, "char_ids": CHAR_PAD}

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        longest = max(len(feature["input_ids"]) for feature in features)
        batch = {}
        for key in features[0]:
            values = [feature[key] for feature in features]
            if not isinstance(values[0], list):
                batch[key] = torch.tensor(values)
                continue
            pad = self.pad_values[key]
            if key == "char_ids":
                width = max((len(row[0]) for row in values if row), default=0)
                padded = [rows + [[pad] * width] * (longest - len(rows)) for rows in values]
            else:
                padded = [row + [pad] * (longest - len(row)) for row in values]
            batch[key] = torch.tensor(padded, dtype=torch.long)
        return batch


def pad_collator(tokenizer: PreTrainedTokenizerBase) -> PadCollator:
    return PadCollator(tokenizer.pad_token_id)
