"""What `language-modeling` writes per block of packed text, and the score a comparison of runs tests from it."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Self

import numpy as np

from pipeline.evaluation.counts import CountedMetric, ratio, ratio_counts
from pipeline.tasks.records import PredictionRecord


@dataclass
class BlockRecord(PredictionRecord):
    """One block: how many tokens it predicts and their summed negative log-likelihood (nats); `length`: the block
    length of an `task.lengths` evaluation (None: the run's own `model.max_length`); `words` and `bytes`: the words
    and UTF-8 bytes of text its tokens hold (a text's spread over its tokens), for scores per word and per byte;
    `document`: the row of the text it holds (None for a block packed from several texts)."""

    predicted_tokens: int
    nll: float
    length: int | None = None
    words: float | None = None
    bytes: float | None = None
    document: int | None = None

    def source_row(self) -> int | None:
        return self.document

    def cut_by_tokenizer(self) -> bool:
        return self.example is None  # packed from several texts: which text a block holds depends on the tokenizer

    @classmethod
    def units(cls, records: Sequence[Self]) -> dict[str, Self]:
        """One unit per document (and block length): its blocks summed, so that two tokenizers, which cut a text
        into different blocks, are paired on the same text. Blocks of no one document (packed) pair by position."""
        units: dict[str, Self] = {}
        for record in records:
            if record.example is None:
                units[f"@{record.index}@{record.length}"] = record
                continue
            key = f"{record.example}@{record.length}"
            seen = units.get(key)
            units[key] = record if seen is None else dataclasses.replace(
                seen,
                predicted_tokens=seen.predicted_tokens + record.predicted_tokens,
                nll=seen.nll + record.nll,
                words=_sum(seen.words, record.words),
                bytes=_sum(seen.bytes, record.bytes),
            )  # fmt: skip
        return units


def _sum(first: float | None, second: float | None) -> float | None:
    return None if first is None or second is None else first + second


def loss_at(length: int | None) -> CountedMetric:
    """The mean NLL per token of the blocks of one length (`loss`, or `loss@L`)."""

    def counts(records: Sequence[BlockRecord], classes: list[str]) -> np.ndarray:
        return ratio_counts([(x.nll, x.predicted_tokens) for x in records if x.length == length])

    return CountedMetric("loss" if length is None else f"loss@{length}", counts, ratio, per_token=True)


def word_loss() -> CountedMetric:
    """The NLL per word of text (`word_loss`): unlike the loss per token, comparable across tokenizers."""

    def counts(records: Sequence[BlockRecord], classes: list[str]) -> np.ndarray:
        return ratio_counts([(x.nll, x.words or 0.0) for x in records if x.length is None])

    return CountedMetric("word_loss", counts, ratio)


def bits_per_byte() -> CountedMetric:
    """The NLL in bits per UTF-8 byte of text (`bits_per_byte`): comparable across tokenizers and vocabularies."""

    def counts(records: Sequence[BlockRecord], classes: list[str]) -> np.ndarray:
        return ratio_counts([(x.nll / math.log(2), x.bytes or 0.0) for x in records if x.length is None])

    return CountedMetric("bits_per_byte", counts, ratio)


def compared(reported: set[str]) -> tuple[CountedMetric, ...]:
    """`bits_per_byte` when a run was scored per byte and `word_loss` when per word (first: they compare across
    tokenizers, so an adaptive sweep decides by them), then `loss` and `loss@L` for every length a run was scored
    at (per token: left out of a comparison of runs whose tokenizers differ)."""
    lengths = sorted(
        int(name.removeprefix("loss@")) for name in reported if name.startswith("loss@") and "/" not in name
    )
    per_word = (word_loss(),) if "word_loss" in reported else ()
    per_byte = (bits_per_byte(),) if "bits_per_byte" in reported else ()
    return (*per_byte, *per_word, loss_at(None), *(loss_at(length) for length in lengths))
