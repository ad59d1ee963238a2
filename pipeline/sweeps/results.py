"""A comparison's results, typed: what `write_summary` returns and the renderers (Markdown, CSV, plots, model cards)
read. `to_json` turns them into `summary.json`'s mapping, at the file boundary only."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Spread:
    """A quantity over seeds: its mean and standard deviation (None where no run reported it), and each value."""

    mean: float | None
    std: float | None
    values: list[Any]

    def to_json(self) -> dict[str, Any]:
        return {"mean": self.mean, "std": self.std, "values": self.values}


@dataclass
class PairedDifference:
    """A cell minus the baseline on one score, paired by seed (see `pipeline.sweeps.statistics.paired_comparison`).

    ci_low / ci_high: the interval that counts seed and example noise (None with too few paired seeds: `no_interval`
    says why); examples_ci_low / examples_ci_high: the interval over test examples alone; real_after_correction:
    whether the difference survives Holm's correction over the report's comparisons (None: not tested)."""

    seed_differences: list[float]
    seed_difference_mean: float | None
    seed_difference_std: float | None
    pairs: int
    confidence: float
    seed_variance: float | None
    example_variance: float | None
    examples: int
    examples_ci_low: float | None
    examples_ci_high: float | None
    p_value: float | None
    ci_low: float | None
    ci_high: float | None
    excludes_zero: bool
    unpaired: int = 0
    no_interval: str | None = None
    df: float | None = None
    real_after_correction: bool | None = None

    def to_json(self) -> dict[str, Any]:
        kept = ("unpaired", "no_interval", "df", "real_after_correction")  # those said below, where they apply
        entry = {name: value for name, value in asdict(self).items() if name not in kept}
        entry |= {"no_interval": self.no_interval} if self.ci_low is None else {"df": self.df}
        entry["unpaired"] = self.unpaired
        if self.real_after_correction is not None:
            entry["real_after_correction"] = self.real_after_correction
        return entry


@dataclass
class CellSummary:
    """One cell of a comparison: its runs' count and seeds, each score over seeds, the training wall time and
    trainable parameters; against the baseline, each compared score's paired difference (None for the baseline
    itself); and, in an adaptive sweep, how many seeds it got and why (`seed_decision`)."""

    n: int
    seeds: list[int]
    scores: dict[str, Spread]
    train_wall_time_s: Spread
    trainable_parameters: Spread
    seed_decision: dict[str, Any] | None = None
    vs_baseline: dict[str, PairedDifference] | None = None

    def to_json(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "n": self.n,
            "seeds": self.seeds,
            "scores": {name: spread.to_json() for name, spread in self.scores.items()},
            "train_wall_time_s": self.train_wall_time_s.to_json(),
            "trainable_parameters": self.trainable_parameters.to_json(),
        }
        if self.seed_decision is not None:
            entry["seed_decision"] = self.seed_decision
        if self.vs_baseline is not None:
            entry["vs_baseline"] = {name: difference.to_json() for name, difference in self.vs_baseline.items()}
        return entry


@dataclass(frozen=True)
class ClassicalRow:
    """A classical baseline's row: its method, its name in the report, scores per eval split, wall seconds."""

    method: str
    name: str
    scores: dict[str, dict[str, float]]
    wall_s: float

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, "name": self.name, "scores": self.scores, "wall_s": self.wall_s}


@dataclass
class SweepSummary:
    """A comparison's report: the split it reports, the baseline cell, the confidence level, how many comparisons
    Holm's correction counted, each cell, the classical rows, the runs an early-stopping rule stopped, the plots;
    for a sweep, how many runs failed."""

    split: str
    baseline: str
    confidence: float
    comparisons: int
    cells: dict[str, CellSummary]
    classical: list[ClassicalRow] = field(default_factory=list)
    stopped_early: list[dict[str, Any]] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)
    failed_runs: int | None = None

    def to_json(self) -> dict[str, Any]:
        summary = {
            "split": self.split,
            "baseline": self.baseline,
            "confidence": self.confidence,
            "comparisons": {"count": self.comparisons, "correction": "Holm", "family_wise_confidence": self.confidence},
            "cells": {name: cell.to_json() for name, cell in self.cells.items()},
            "classical": [row.to_json() for row in self.classical],
            "stopped_early": self.stopped_early,
            "plots": self.plots,
        }
        return summary  # failed_runs is said by the sweep's error line and sweep.json, not here
