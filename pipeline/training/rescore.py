"""`pipeline eval`: re-score a saved fine-tuned model (a run's `model/` or a checkpoint's) on its run's splits."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from pipeline.data.sources import data_fingerprint
from pipeline.experiment.build import Experiment, build_evaluation
from pipeline.experiment.data import EncodedData
from pipeline.experiment.runs import load_run_recipe, locate_run
from pipeline.locks import reading_lock
from pipeline.recipe.schema import Recipe
from pipeline.tasks.base import Records, Scores
from pipeline.training.run_folder import changed_splits
from pipeline.training.scoring import eval_loader, evaluate_splits, merge_lengths

log = logging.getLogger(__name__)


def eval_loaders(recipe: Recipe, data: EncodedData) -> dict[str, DataLoader]:
    """A loader per split of `eval.splits` and per `task.lengths` packing of one (longest examples first)."""
    names = [
        *recipe.eval.splits,
        *(f"{split}@{length}" for split in recipe.eval.splits for length in recipe.task.scored_lengths()),
    ]
    return {name: eval_loader(data.splits[name], data.collator, recipe.eval.batch_size, recipe.train) for name in names}


def evaluate_experiment(
    exp: Experiment, model: torch.nn.Module, data: EncodedData | None = None
) -> dict[str, tuple[Scores, Records]]:
    """Scores and records of every eval split of an experiment's data (or of `data`), for `model` (prepared)."""
    loaders = eval_loaders(exp.recipe, data or exp.data)
    return merge_lengths(evaluate_splits(exp.task, exp.accelerator, model, loaders, exp.metrics))


def evaluate_saved(path: Path, overrides: list[str], trust_code: bool = False) -> dict[str, dict[str, float]]:
    """Re-score a saved fine-tuned model on its run's eval splits (`key=value` overrides change e.g. eval.splits).

    trust_code: allow what the run folder asks to run (its recipe's trust flags, a model's own code)."""
    run_dir, model_dir = locate_run(path)
    recipe = load_run_recipe(run_dir, model_dir, overrides, trust_code)
    changed = changed_splits(run_dir, data_fingerprint(recipe.data))
    if changed:
        log.warning(
            "the data changed since %s was trained (split %s): these scores are of other data than the run's",
            run_dir, ", ".join(changed),
        )  # fmt: skip
    with reading_lock(run_dir):  # not while a training run (or a diagnose) writes it
        exp = build_evaluation(recipe, model_dir)
        model = exp.accelerator.prepare_model(exp.model, evaluation_mode=True)
        scores = {split: scores for split, (scores, _) in evaluate_experiment(exp, model).items()}
    exp.accelerator.print(json.dumps(scores, indent=2))
    return scores
