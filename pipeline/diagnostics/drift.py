"""How far each token's row moved between two states of a table, by how often the token occurs in training."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from pipeline.evaluation.plots import pyplot, save_figure

# Token-frequency buckets (occurrences in the training data): unseen tokens keep what weight decay leaves them.
BUCKETS = (("unseen", 0, 0), ("1-9", 1, 9), ("10-99", 10, 99), ("100-999", 100, 999), ("1000+", 1000, None))


def token_counts(tokenizer: PreTrainedTokenizerBase, texts: list[str], rows: int) -> np.ndarray:
    """Occurrences of each token id (special tokens included) in `texts`; shape (rows,)."""
    counts = np.zeros(rows, dtype=np.int64)
    for start in range(0, len(texts), 1000):
        for ids in tokenizer(texts[start : start + 1000], verbose=False)["input_ids"]:
            counts += np.bincount(np.asarray(ids, dtype=np.int64), minlength=rows)[:rows]
    return counts


def bucket_of(count: int) -> str:
    return next(name for name, low, high in BUCKETS if count >= low and (high is None or count <= high))


def row_drift(start: torch.Tensor, end: torch.Tensor) -> dict[str, np.ndarray]:
    """Per row of two (rows, hidden) tables: cosine distance (0 same direction, 2 opposite; 0 when both rows are
    zero, 1 when one is), the two norms, and whether the row is bit-identical."""
    unchanged = (start == end).all(dim=1)
    start, end = start.double(), end.double()
    norm_start, norm_end = start.norm(dim=1), end.norm(dim=1)
    cosine = (start * end).sum(dim=1) / (norm_start * norm_end).clamp_min(1e-12)
    one_zero = (norm_start == 0) ^ (norm_end == 0)
    # A bit-identical row (a frozen one) is exactly 0, not 1 − cos rounded.
    distance = torch.where(
        unchanged | ((norm_start == 0) & (norm_end == 0)), 0.0, torch.where(one_zero, 1.0, 1.0 - cosine)
    )
    return {
        "cosine_distance": distance.numpy(),
        "norm_start": norm_start.numpy(),
        "norm_end": norm_end.numpy(),
        "unchanged": unchanged.numpy(),
    }


def drift_rows(start: torch.Tensor, end: torch.Tensor, counts: np.ndarray, tokens: list[str]) -> list[dict[str, Any]]:
    """One record per token id: its text, training count, bucket and drift."""
    drift = row_drift(start, end)
    return [
        {
            "id": i,
            "token": tokens[i],
            "train_count": int(counts[i]),
            "bucket": bucket_of(int(counts[i])),
            "cosine_distance": float(drift["cosine_distance"][i]),
            "norm_start": float(drift["norm_start"][i]),
            "norm_end": float(drift["norm_end"][i]),
            "unchanged": bool(drift["unchanged"][i]),
        }
        for i in range(len(tokens))
    ]


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per frequency bucket (and all tokens): how many, mean and median cosine distance, mean relative norm change,
    and the share of rows that stayed bit-identical."""
    groups = [(name, [r for r in rows if r["bucket"] == name]) for name, _, _ in BUCKETS] + [("all", rows)]
    summary = []
    for name, members in groups:
        if not members:
            continue
        distance = np.array([r["cosine_distance"] for r in members])
        start = np.array([r["norm_start"] for r in members])
        change = (np.array([r["norm_end"] for r in members]) - start) / np.maximum(start, 1e-12)
        summary.append(
            {
                "bucket": name,
                "tokens": len(members),
                "mean_cosine_distance": float(distance.mean()),
                "median_cosine_distance": float(np.median(distance)),
                "mean_relative_norm_change": float(change.mean()),
                "share_unchanged": float(np.mean([r["unchanged"] for r in members])),
            }
        )
    return summary


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def plot_drift(rows: list[dict[str, Any]], path: Path, title: str) -> Path:
    """Box plot of the cosine distance per frequency bucket, with how many tokens each holds."""
    plt = pyplot()
    names = [name for name, _, _ in BUCKETS if any(r["bucket"] == name for r in rows)]
    data = [[r["cosine_distance"] for r in rows if r["bucket"] == name] for name in names]
    figure, axes = plt.subplots(figsize=(6.5, 4))
    axes.boxplot(data, showfliers=False)
    axes.set_xticks(
        range(1, len(names) + 1),
        [f"{name}\n({len(d):,} tokens)" for name, d in zip(names, data, strict=True)],
        fontsize=8,
    )
    axes.set_xlabel("occurrences in the training data")
    axes.set_ylabel("cosine distance, start → end")
    axes.set_title(title, fontsize=9)
    return save_figure(figure, path)
