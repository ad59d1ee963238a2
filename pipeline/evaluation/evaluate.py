"""Scoring a run: each task gathers its predictions over all processes and scores them with the recipe's metrics;
the final evaluation writes every eval split's predictions, then `metrics.json`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch.utils.data import DataLoader

if TYPE_CHECKING:
    from pipeline.training.experiment import Experiment
    from pipeline.training.run_folder import RunFolder


def evaluate_split(exp: Experiment, model: torch.nn.Module, loader: DataLoader) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Metric scores and per-example records for one prepared loader (the task decides what they are)."""
    return exp.task.evaluate(exp.accelerator, model, loader, exp.metrics)


def evaluate_all_splits(exp: Experiment, model: torch.nn.Module) -> dict[str, tuple[dict[str, float], list[dict[str, Any]]]]:
    """Scores and records for every split named in `eval.splits`."""
    results = {}
    for split in exp.recipe.eval.splits:
        loader = DataLoader(exp.splits[split], batch_size=exp.recipe.eval.batch_size, collate_fn=exp.collator)
        results[split] = evaluate_split(exp, model, exp.accelerator.prepare_data_loader(loader))
    return results


def write_final_evaluation(exp: Experiment, model: torch.nn.Module, run: RunFolder, summary: dict[str, Any]) -> None:
    """Predictions for every eval split, then `metrics.json` (written last: it marks a finished run)."""
    results = evaluate_all_splits(exp, model)
    for split, (scores, records) in results.items():
        run.write_jsonl(f"predictions-{split}.jsonl", records)
        exp.accelerator.print(f"final {split}: " + ", ".join(f"{k}={v:.4f}" for k, v in scores.items()))
    run.write_json("metrics.json", {**{split: scores for split, (scores, _) in results.items()}, "train": summary})
