"""Pictures of a run's results, drawn headless (matplotlib's Agg backend) into PNG files."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.storage import atomic_write

MOST_LABELS = 30  # a confusion matrix of more labels is unreadable: the rest are pooled as "(other)"


def pyplot() -> Any:
    """matplotlib's pyplot on the headless Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(figure: Any, path: Path) -> Path:
    """Lay out, write as PNG through a partial file (no half-written picture), and close the figure."""
    figure.tight_layout()
    try:
        return atomic_write(path, lambda partial: figure.savefig(partial, dpi=100, format="png"))
    finally:
        pyplot().close(figure)


def confusion_counts(pairs: list[tuple[str, str]], most: int = MOST_LABELS) -> tuple[list[str], np.ndarray]:
    """(labels, counts[gold, predicted]) over the `most` most frequent gold labels, the rest pooled as "(other)"."""
    frequent = [label for label, _ in Counter(gold for gold, _ in pairs).most_common()]
    shown = sorted(frequent[:most]) + (
        ["(other)"] if len(frequent) > most or any(guess not in frequent[:most] for _, guess in pairs) else []
    )
    index = {label: i for i, label in enumerate(shown)}
    counts = np.zeros((len(shown), len(shown)), dtype=np.int64)
    for gold, guess in pairs:
        counts[index.get(gold, len(shown) - 1), index.get(guess, len(shown) - 1)] += 1
    return shown, counts


def save_confusion_matrix(pairs: list[tuple[str, str]], path: Path, title: str) -> None:
    """A confusion matrix (rows: true label, columns: predicted; each row normalised, counts written in the cells)."""
    plt = pyplot()
    labels, counts = confusion_counts(pairs)
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.45 * len(labels) + 2)
    figure, axes = plt.subplots(figsize=(size + 1, size))
    image = axes.imshow(share, cmap="Blues", vmin=0, vmax=1)
    axes.set_xticks(range(len(labels)), labels, rotation=90, fontsize=8)
    axes.set_yticks(range(len(labels)), labels, fontsize=8)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title)
    if len(labels) <= 15:
        for (row, column), count in np.ndenumerate(counts):
            axes.text(
                column,
                row,
                str(count),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if share[row, column] > 0.5 else "black",
            )
    figure.colorbar(image, ax=axes, fraction=0.046, label="share of the true label")
    save_figure(figure, path)


def position_losses(scores: dict[str, float]) -> dict[str, list[tuple[int, float]]]:
    """From `loss[@L]/positions A-B` scores: per block length (`max_length` or `@L`), (bucket start, mean NLL)."""
    series: dict[str, list[tuple[int, float]]] = {}
    for name, value in scores.items():
        head, _, bucket = name.partition("/positions ")
        if bucket and head.startswith("loss") and value is not None:
            series.setdefault(head.replace("loss", "blocks", 1) or "blocks", []).append(
                (int(bucket.split("-")[0]), value)
            )
    return {label: sorted(points) for label, points in series.items()}


def save_loss_by_position(series: dict[str, list[tuple[int, float]]], path: Path, title: str) -> Path | None:
    """Mean token NLL against the position in the block (log-scaled buckets), one line per series."""
    drawable = {label: points for label, points in series.items() if len(points) > 1}
    if not drawable:
        return None
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(7, 4.2))
    for label, points in drawable.items():
        axes.plot([max(start, 1) for start, _ in points], [loss for _, loss in points], marker="o", label=label)
    axes.set_xscale("log", base=2)
    axes.set_xlabel("position in the block (start of each bucket)")
    axes.set_ylabel("mean token NLL (nats)")
    axes.set_title(title)
    axes.legend(fontsize=8)
    return save_figure(figure, path)
