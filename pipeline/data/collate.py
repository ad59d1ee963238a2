"""Turning encoded examples into padded batches: one collator for every task and family.

Every family pads on the right: decoders pool the last real token and the bi-LSTM reverses each sequence within
its length, and both rely on real tokens coming first.
"""

from __future__ import annotations

from typing import Any

import torch

IGNORED_LABEL = -100  # positions a loss skips (padding), as in PyTorch's cross-entropy


SCORING_ONLY = ("labels", "words", "bytes", "document")  # what scoring reads from a batch, not given to the model


def without_labels(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The model inputs of a batch: evaluation scores from the logits, so the model need not compute a loss (and
    the words a block of text holds are for per-word scores only)."""
    return {key: value for key, value in batch.items() if key not in SCORING_ONLY}


class PadCollator:
    """Encoded examples → a batch of tensors padded on the right to the longest example.

    input_ids (batch, seq) padded with the pad id; attention_mask and token_type_ids with 0; per-token labels with
    -100; a family's extra per-token inputs (`extra_pad_values`; a list per token, e.g. character ids, becomes
    (batch, seq, width)) with their own pad value; one value per example is stacked as (batch,), and with
    `labels_per_token=False` a label vector per example (multi-label) as (batch, num_labels).
    """

    def __init__(
        self, pad_token_id: int, extra_pad_values: dict[str, int] | None = None, labels_per_token: bool = True
    ):
        self.pad_values = {"input_ids": pad_token_id, "attention_mask": 0, "token_type_ids": 0, "labels": IGNORED_LABEL}
        self.pad_values.update(extra_pad_values or {})
        self.labels_per_token = labels_per_token

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        longest = max(len(feature["input_ids"]) for feature in features)
        batch = {}
        for key in features[0]:
            values = [feature[key] for feature in features]
            if not isinstance(values[0], list) or (key == "labels" and not self.labels_per_token):
                batch[key] = torch.tensor(values)
                continue
            pad = self.pad_values[key]
            nested = any(row and isinstance(row[0], list) for row in values)
            if nested:  # one list per token: pad with whole rows of the same width
                width = max(len(row[0]) for row in values if row)
                padded = [rows + [[pad] * width] * (longest - len(rows)) for rows in values]
            else:
                padded = [row + [pad] * (longest - len(row)) for row in values]
            batch[key] = torch.tensor(padded, dtype=torch.long)
        return batch
