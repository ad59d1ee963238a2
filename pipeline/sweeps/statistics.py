"""What is real in a comparison of runs: per cell the mean and spread over seeds, and per cell against a baseline
cell the paired difference over seeds and a bootstrap 95% confidence interval that resamples the test examples
(`scipy.stats.bootstrap`, paired: both runs are scored on the same resampled examples, seed by seed).
"""

from __future__ import annotations

import json
import statistics as stats
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import bootstrap

from pipeline.evaluation.metrics.classification import precision_recall_f1

RESAMPLES = 2000


@dataclass
class RunResult:
    """One finished run folder: its cell, seed, scores per split, training summary and task type."""

    cell: str
    seed: int
    folder: Path
    scores: dict[str, dict[str, float]]
    train: dict[str, Any]
    task_type: str

    def records(self, split: str) -> list[dict[str, Any]]:
        path = self.folder / f"predictions-{split}.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []

    def log(self) -> list[dict[str, Any]]:
        path = self.folder / "log.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def mean_std(values: list[float]) -> dict[str, Any]:
    clean = [value for value in values if value is not None and value == value]
    return {"mean": stats.fmean(clean) if clean else None, "std": stats.stdev(clean) if len(clean) > 1 else 0.0 if clean else None, "values": values}


def cell_summary(runs: list[RunResult], split: str) -> dict[str, Any]:
    """n, and mean ± std over seeds of every score of `split`, of the training wall time and trainable parameters."""
    names = list(dict.fromkeys(name for run in runs for name in run.scores.get(split, {})))
    return {
        "n": len(runs),
        "seeds": [run.seed for run in runs],
        "scores": {name: mean_std([run.scores.get(split, {}).get(name) for run in runs]) for name in names},
        "train_wall_time_s": mean_std([run.train.get("train_wall_time_s") for run in runs]),
        "trainable_parameters": mean_std([run.train.get("trainable_parameters") for run in runs]),
    }


# --- per-example statistics, one per task type: arrays from the predictions, and a statistic of them -----------------
# A statistic takes the arrays of every cell run, then those of every baseline run (seed by seed), and returns the
# mean over seeds of (cell − baseline); the vectorized ones work along `axis` (scipy passes a batch of resamples).

def _classes(records: list[dict], labels: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    gold = np.array([labels.setdefault(r["label"], len(labels)) for r in records])
    return gold, np.array([labels.setdefault(r["prediction"], len(labels)) for r in records])


def _accuracy_difference(*arrays: np.ndarray, axis: int = -1) -> np.ndarray:
    half = len(arrays) // 2
    return np.mean([np.mean(c, axis=axis) - np.mean(b, axis=axis) for c, b in zip(arrays[:half], arrays[half:], strict=True)], axis=0)


def _ratio_difference(*arrays: np.ndarray, axis: int = -1) -> np.ndarray:
    """Arrays: numerators of the cell runs, of the baseline runs, then the shared denominator (words, tokens)."""
    *numerators, denominator = arrays
    half = len(numerators) // 2
    total = np.sum(denominator, axis=axis)
    return np.mean([(np.sum(c, axis=axis) - np.sum(b, axis=axis)) / total for c, b in zip(numerators[:half], numerators[half:], strict=True)], axis=0)


def _micro_f1_difference(*arrays: np.ndarray, axis: int = -1) -> np.ndarray:
    """Arrays: per run, true positives, false positives, false negatives per example (cell runs, then baseline)."""
    def f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
        tp, fp, fn = (np.sum(x, axis=axis) for x in (tp, fp, fn))
        return np.divide(2 * tp, 2 * tp + fp + fn, out=np.zeros_like(tp, dtype=float), where=(2 * tp + fp + fn) > 0)

    triples = [arrays[i : i + 3] for i in range(0, len(arrays), 3)]
    half = len(triples) // 2
    return np.mean([f1(*c) - f1(*b) for c, b in zip(triples[:half], triples[half:], strict=True)], axis=0)


@dataclass
class PairedMetric:
    """How one metric is compared: arrays from a run's predictions, whether they are shared, and the statistic."""

    name: str
    arrays: Callable[[list[dict[str, Any]], dict[str, int]], list[np.ndarray]]
    statistic: Callable[..., Any]
    vectorized: bool = True
    shared: Callable[[list[dict[str, Any]]], list[np.ndarray]] = field(default=lambda records: [])


def _macro_f1(gold: np.ndarray) -> Callable[..., float]:
    def statistic(*predictions: np.ndarray, axis: int = -1) -> float:
        *predicted, indices = predictions
        half = len(predicted) // 2
        chosen = gold[indices.astype(int)]
        return float(np.mean([precision_recall_f1(c, chosen, "macro")[2] - precision_recall_f1(b, chosen, "macro")[2]
                              for c, b in zip(predicted[:half], predicted[half:], strict=True)]))
    return statistic


def paired_metrics(task_type: str) -> list[PairedMetric]:
    """The metrics compared example by example for a task type."""
    if task_type == "sequence-classification":
        return [PairedMetric("accuracy", lambda r, labels: [np.equal(*_classes(r, labels)).astype(float)], _accuracy_difference),
                PairedMetric("f1_macro", lambda r, labels: [_classes(r, labels)[1]], None, vectorized=False)]
    if task_type == "token-classification":
        return [PairedMetric("accuracy", lambda r, labels: [np.array([sum(g == p for g, p in zip(x["tags"], x["predictions"], strict=True)) for x in r], dtype=float)],
                             _ratio_difference, shared=lambda r: [np.array([len(x["tags"]) for x in r], dtype=float)])]
    if task_type == "regression":
        return [PairedMetric("mse", lambda r, labels: [np.array([(x["prediction"] - x["label"]) ** 2 for x in r])], _accuracy_difference)]
    if task_type == "multi-label":
        def counts(r: list[dict], labels: dict[str, int]) -> list[np.ndarray]:
            gold, guess = [set(x["labels"]) for x in r], [set(x["predicted"]) for x in r]
            return [np.array([len(g & p) for g, p in zip(gold, guess, strict=True)], dtype=float),
                    np.array([len(p - g) for g, p in zip(gold, guess, strict=True)], dtype=float),
                    np.array([len(g - p) for g, p in zip(gold, guess, strict=True)], dtype=float)]
        return [PairedMetric("f1_micro", counts, _micro_f1_difference)]
    if task_type == "language-modeling":
        return [PairedMetric("loss", lambda r, labels: [np.array([x["nll"] for x in r])], _ratio_difference,
                             shared=lambda r: [np.array([x["predicted_tokens"] for x in r], dtype=float)])]
    return []


def paired_comparison(cell: list[RunResult], baseline: list[RunResult], split: str, seed: int = 0) -> dict[str, Any]:
    """Per compared metric: the seed-paired difference of the reported scores (mean, std, per seed), and the bootstrap
    95% interval of the mean difference over resampled test examples; `excludes_zero` marks a difference that the
    interval says is real."""
    by_seed = {run.seed: run for run in baseline}
    pairs = [(run, by_seed[run.seed]) for run in cell if run.seed in by_seed]
    if not pairs:
        return {}
    result: dict[str, Any] = {}
    for metric in paired_metrics(cell[0].task_type):
        diffs = [c.scores.get(split, {}).get(metric.name, np.nan) - b.scores.get(split, {}).get(metric.name, np.nan) for c, b in pairs]
        entry: dict[str, Any] = {"seed_differences": diffs, **{f"seed_difference_{k}": v for k, v in mean_std(diffs).items() if k != "values"}}
        records = [(c.records(split), b.records(split)) for c, b in pairs]
        if all(len(c) == len(b) > 1 for c, b in records):
            labels: dict[str, int] = {}
            cell_arrays = [array for c, _ in records for array in metric.arrays(c, labels)]
            base_arrays = [array for _, b in records for array in metric.arrays(b, labels)]
            if metric.vectorized:
                data, statistic = (*cell_arrays, *base_arrays, *metric.shared(records[0][0])), metric.statistic
            else:  # the statistic needs the gold labels of the resampled examples: resample their indices too
                gold = _classes(records[0][0], labels)[0]
                data, statistic = (*cell_arrays, *base_arrays, np.arange(len(gold), dtype=float)), _macro_f1(gold)
            interval = bootstrap(data, statistic, paired=True, vectorized=metric.vectorized, n_resamples=RESAMPLES if not metric.vectorized else 9999,
                                 confidence_level=0.95, method="percentile", rng=np.random.default_rng(seed)).confidence_interval
            low, high = float(interval.low), float(interval.high)
            entry |= {"ci_low": low, "ci_high": high, "excludes_zero": bool(low > 0 or high < 0), "examples": len(records[0][0])}
        result[metric.name] = entry
    return result
