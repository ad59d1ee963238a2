"""Where positions matter: a run's eval score by input length (quartiles of the token count), and how many
inputs were cut at `max_length`."""

from __future__ import annotations

from typing import Any

import numpy as np

from pipeline.tasks.records import PredictionRecord


def by_length(records: list[PredictionRecord], lengths: list[int], max_length: int) -> dict[str, Any] | None:
    """The records' per-example score (`PredictionRecord.example_score`) pooled over each quartile of untruncated
    token counts.

    records: the run's predictions of one split, in data order; lengths: each example's token count before truncation.
    """
    scored = [record.example_score() for record in records]
    if not scored or scored[0] is None:
        return None
    metric = scored[0][0]
    counts = np.asarray(lengths)
    # Quartile q holds the examples with edge[q-1] < tokens <= edge[q]: ties at an edge go to the lower quartile.
    quartile = np.searchsorted(np.quantile(counts, [0.25, 0.5, 0.75]), counts, side="left")
    buckets = []
    for number in range(4):
        members = np.flatnonzero(quartile == number)
        total = sum(scored[i][1] for i in members)
        units = sum(scored[i][2] for i in members)
        buckets.append(
            {
                "quartile": number + 1,
                "tokens_from": int(counts[members].min()) if len(members) else None,
                "tokens_to": int(counts[members].max()) if len(members) else None,
                "examples": len(members),
                metric: total / units if units else None,
                "truncated": int((counts[members] > max_length).sum()),
            }
        )
    return {
        "metric": metric,
        "max_length": max_length,
        "truncated": int((counts > max_length).sum()),
        "examples": len(records),
        "quartiles": buckets,
    }
