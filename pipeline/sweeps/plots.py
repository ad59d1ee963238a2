"""Pictures of a comparison, drawn headless (Agg) into PNG files: a bar chart per metric (mean over seeds, error
bars one standard deviation, each classical baseline as a dashed line) and learning curves (training loss and the
evaluation metric against the step, one line per cell, the band spanning its seeds)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.evaluation.plots import position_losses, pyplot, save_figure, save_loss_by_position
from pipeline.sweeps.results import CellSummary
from pipeline.sweeps.statistics import RunResult


def bar_chart(cells: dict[str, CellSummary], metric: str, split: str, classical: dict[str, float], path: Path) -> Path:
    """Mean ± std over seeds of `metric` on `split`, one bar per cell; each classical baseline (name → score) a dashed
    line."""
    plt = pyplot()
    names = list(cells)
    spreads = [cells[name].scores.get(metric) for name in names]
    means = [(spread and spread.mean) or 0.0 for spread in spreads]
    errors = [(spread and spread.std) or 0.0 for spread in spreads]
    figure, axes = plt.subplots(figsize=(max(5.0, 1.1 * len(names) + 2), 4.2))
    axes.bar(range(len(names)), means, yerr=errors, capsize=4, color="#4c78a8")
    for color, (name, score) in zip(["#e45756", "#54a24b", "#b279a2", "#f58518"] * 3, classical.items(), strict=False):
        axes.axhline(score, color=color, linestyle="--", label=name)
    if classical:
        axes.legend(loc="lower right", fontsize=8)
    low = min([m - e for m, e in zip(means, errors, strict=True)] + list(classical.values()))
    axes.set_ylim(max(0.0, low - 0.1 * abs(low) - 0.02), None)
    axes.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
    axes.set_ylabel(f"{split} {metric}")
    axes.set_title(f"{split} {metric}: mean ± std over seeds")
    return save_figure(figure, path)


def learning_curves(runs: dict[str, list[RunResult]], key: str, split: str | None, path: Path) -> Path | None:
    """`key` against the step, from each run's log (training lines when `split` is None, else its evaluations)."""
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(7, 4.2))
    drawn = False
    for color, (cell, members) in zip(plt.cm.tab10.colors * 10, runs.items(), strict=False):
        series = []
        for run in members:
            points = {
                r["step"]: r[key]
                for r in run.log()
                if key in r and r[key] is not None and (r.get("split") == split if split else "split" not in r)
            }
            series.append(points)
        steps = sorted(set.intersection(*(set(s) for s in series))) if series else []
        if not steps:
            continue
        values = np.array([[s[step] for step in steps] for s in series])
        axes.plot(steps, values.mean(axis=0), color=color, label=cell)
        axes.fill_between(steps, values.min(axis=0), values.max(axis=0), color=color, alpha=0.2)
        drawn = True
    if not drawn:
        plt.close(figure)
        return None
    axes.set_xlabel("optimizer step")
    axes.set_ylabel(f"{split} {key}" if split else f"training {key}")
    axes.legend(fontsize=7)
    axes.set_title(
        f"{'training ' + key if split is None else split + ' ' + key} (line: mean over seeds, band: their range)"
    )
    return save_figure(figure, path)


def position_curves(runs: dict[str, list[RunResult]], split: str, path: Path) -> Path | None:
    """The loss by position in the block, at the longest length the runs were scored at (`task.lengths`), one line
    per cell (mean over its seeds); None when the runs report no such scores."""
    series: dict[str, list[tuple[int, float]]] = {}
    longest = None
    for cell, members in runs.items():
        per_run = [position_losses(run.scores.get(split, {})) for run in members]
        lengths = {length for losses in per_run for length in losses}
        if not lengths:
            continue
        longest = max(lengths, key=block_length)  # "blocks@1024" over "blocks@512" (not by spelling)
        points: dict[int, list[float]] = {}
        for losses in per_run:
            for start, loss in losses.get(longest, []):
                points.setdefault(start, []).append(loss)
        series[cell] = sorted((start, float(np.mean(values))) for start, values in points.items())
    blocks = f" in blocks of {block_length(longest)} tokens" if longest and block_length(longest) else ""
    title = f"{split}: loss by position{blocks} (mean over seeds)"
    return save_loss_by_position(series, path, title) if series else None


def block_length(label: str) -> int:
    """The length in a `position_losses` label: `blocks@1024` → 1024; `blocks` (the run's own length) → 0."""
    _, _, length = label.partition("@")
    return int(length) if length.isdigit() else 0
