"""`pipeline eval`: re-score a saved fine-tuned model (a run's `model/` or a checkpoint's) on its run's splits."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.errors import PipelineError
from pipeline.evaluation.evaluate import evaluate_all_splits
from pipeline.recipe.io import load_recipe


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
    from pipeline.training.experiment import setup_evaluation

    run_dir, model_dir = locate_run(path)
    recipe = load_recipe(run_dir / "recipe.yaml", overrides)
    exp = setup_evaluation(recipe, model_dir)
    model = exp.accelerator.prepare_model(exp.model, evaluation_mode=True)
    scores = {split: scores for split, (scores, _) in evaluate_all_splits(exp, model).items()}
    exp.accelerator.print(json.dumps(scores, indent=2))
    return scores
