"""What `language-modeling` writes per block of packed text, and the score a comparison of runs tests from it."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.evaluation.counts import CountedMetric, ratio, ratio_counts
from pipeline.tasks.records import PredictionRecord


@dataclass
class BlockRecord(PredictionRecord):
    """One block: how many tokens it predicts and their summed negative log-likelihood (nats)."""

    predicted_tokens: int
    nll: float


COMPARED = (CountedMetric("loss", lambda r, c: ratio_counts([(x.nll, x.predicted_tokens) for x in r]), ratio),)
