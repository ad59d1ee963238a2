"""Evaluation: each task gathers its predictions over all processes and scores them with the recipe's metrics.

`evaluate_saved` is `pipeline eval`: it re-scores a saved fine-tuned model on the splits of its run's recipe.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch.utils.data import DataLoader

from pipeline.errors import PipelineError
from pipeline.recipe_io import load_recipe
from pipeline.run_folder import RunFolder

if TYPE_CHECKING:
    from pipeline.experiment import Experiment


def evaluate_split(exp: Experiment, model: torch.nn.Module, loader: DataLoader) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Metric scores and per-example records for one prepared loader (the task decides what they are)."""
    return exp.task.evaluate(exp.accelerator, model, loader, exp.metrics)


def evaluate_all_splits(exp: Experiment, model: torch.nn.Module) -> dict[str, tuple[dict[str, float], list[dict[str, Any]]]]:
    """Scores and records for every split named in `eval.splits`."""
    results = {}
    for split in exp.recipe.eval.splits:
        loader = DataLoader(exp.splits[split], batch_size=exp.recipe.eval.batch_size, collate_fn=exp.task.collator(exp.tokenizer))
        results[split] = evaluate_split(exp, model, exp.accelerator.prepare_data_loader(loader))
    return results


def write_final_evaluation(exp: Experiment, model: torch.nn.Module, run: RunFolder, summary: dict[str, Any]) -> None:
    """Predictions for every eval split, then `metrics.json` (written last: it marks a finished run)."""
    results = evaluate_all_splits(exp, model)
    for split, (scores, records) in results.items():
        run.write_jsonl(f"predictions-{split}.jsonl", records)
        exp.accelerator.print(f"final {split}: " + ", ".join(f"{k}={v:.4f}" for k, v in scores.items()))
    run.write_json("metrics.json", {**{split: scores for split, (scores, _) in results.items()}, "train": summary})


def locate_run(path: Path) -> tuple[Path, Path]:
    """(run folder holding recipe.yaml, model folder) for a run folder or a saved model/checkpoint inside one."""
    if (path / "recipe.yaml").is_file() and (path / "model" / "config.json").is_file():
        return path, path / "model"
    model_dir = path / "model" if (path / "model" / "config.json").is_file() else path  # checkpoints/step-N/
    if (model_dir / "config.json").is_file():
        for parent in path.parents:
            if (parent / "recipe.yaml").is_file():
                return parent, model_dir
    raise PipelineError(f"'{path}' is neither a finished run folder nor a saved model inside one")


def evaluate_saved(path: Path, overrides: list[str]) -> dict[str, dict[str, float]]:
    """Re-score a saved fine-tuned model on its run's eval splits (`key=value` overrides change e.g. eval.splits)."""
    from pipeline.experiment import setup

    run_dir, model_dir = locate_run(path)
    recipe = load_recipe(run_dir / "recipe.yaml", overrides)
    exp = setup(recipe, trained_model=model_dir)
    model = exp.accelerator.prepare_model(exp.model, evaluation_mode=True)
    scores = {split: scores for split, (scores, _) in evaluate_all_splits(exp, model).items()}
    exp.accelerator.print(json.dumps(scores, indent=2))
    return scores
