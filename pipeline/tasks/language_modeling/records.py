"""What `language-modeling` writes per block of packed text, and the score a comparison of runs tests from it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.evaluation.counts import CountedMetric, ratio, ratio_counts
from pipeline.tasks.records import PredictionRecord


@dataclass
class BlockRecord(PredictionRecord):
    """One block: how many tokens it predicts and their summed negative log-likelihood (nats); `length`: the block
    length of an `eval.lengths` evaluation (None: the run's own `model.max_length`); `words`: the words of text
    its tokens hold (each text's words spread evenly over its tokens), for per-word scores."""

    predicted_tokens: int
    nll: float
    length: int | None = None
    words: float | None = None


def loss_at(length: int | None) -> CountedMetric:
    """The mean NLL per token of the blocks of one length (`loss`, or `loss@L`)."""

    def counts(records: Sequence[BlockRecord], classes: list[str]) -> np.ndarray:
        return ratio_counts([(x.nll, x.predicted_tokens) for x in records if x.length == length])

    return CountedMetric("loss" if length is None else f"loss@{length}", counts, ratio)


def word_loss() -> CountedMetric:
    """The NLL per word of text (`word_loss`): unlike the loss per token, comparable across tokenizers."""

    def counts(records: Sequence[BlockRecord], classes: list[str]) -> np.ndarray:
        return ratio_counts([(x.nll, x.words or 0.0) for x in records if x.length is None])

    return CountedMetric("word_loss", counts, ratio)


def compared(reported: set[str]) -> tuple[CountedMetric, ...]:
    """`loss`, `loss@L` for every length a run was scored at, and `word_loss` when it was scored per word."""
    lengths = sorted(
        int(name.removeprefix("loss@")) for name in reported if name.startswith("loss@") and "/" not in name
    )
    per_word = (word_loss(),) if "word_loss" in reported else ()
    return (loss_at(None), *(loss_at(length) for length in lengths), *per_word)
