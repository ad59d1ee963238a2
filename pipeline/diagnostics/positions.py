"""What a position table encodes: the cosine similarity of every pair of positions (a learned table that has
learnt order shows a bright band along the diagonal; a sinusoidal one a smooth, translation-invariant band)."""

from __future__ import annotations

from pathlib import Path

import torch

from pipeline.evaluation.plots import pyplot, save_figure

SHOWN_POSITIONS = 512  # more rows than pixels in a readable picture


def cosine_matrix(table: torch.Tensor, rows: int = SHOWN_POSITIONS) -> torch.Tensor:
    """(rows, hidden) → (rows, rows) cosine similarities of the first `rows` positions (0 for a zero row)."""
    shown = table[:rows]
    unit = shown / shown.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return unit @ unit.T


def plot_rotary_frequencies(states: dict[str, torch.Tensor | None], path: Path) -> Path:
    """The rotary inverse frequencies of each state (one per rotated pair of dimensions, log scale): a new base
    shifts the curve, a scaling bends or lowers it, partial rotation shortens it."""
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(7, 4.2))
    for label, frequencies in states.items():
        if frequencies is not None:
            axes.plot(range(len(frequencies)), frequencies.numpy(), marker=".", label=label)
    axes.set_yscale("log")
    axes.set_xlabel("pair of rotated dimensions")
    axes.set_ylabel("inverse frequency (radians per position)")
    axes.set_title("rotary frequencies")
    axes.legend(fontsize=8)
    return save_figure(figure, path)


def plot_position_similarity(tables: dict[str, torch.Tensor | None], path: Path) -> Path:
    """One heatmap panel per state (e.g. start and end); a state without a table gets an empty panel saying so."""
    plt = pyplot()
    figure, axes = plt.subplots(1, len(tables), figsize=(5.2 * len(tables), 4.6), squeeze=False)
    for panel, (label, table) in zip(axes[0], tables.items(), strict=True):
        if table is None:
            panel.text(0.5, 0.5, "no absolute position table", ha="center", va="center")
            panel.set_axis_off()
        else:
            image = panel.imshow(cosine_matrix(table).numpy(), cmap="RdBu_r", vmin=-1, vmax=1)
            panel.set_xlabel("position")
            panel.set_ylabel("position")
            figure.colorbar(image, ax=panel, fraction=0.046, label="cosine similarity")
        panel.set_title(label, fontsize=9)
    return save_figure(figure, path)
