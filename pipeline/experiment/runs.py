"""Where a run's parts are (the run folder holding `recipe.yaml`, and the saved model inside it), and its recipe as
a command that reads someone else's run folder may trust it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from pipeline.data.sources import holdouts
from pipeline.errors import PipelineError
from pipeline.experiment.recipes import load_recipe
from pipeline.recipe.schema import Recipe


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


def code_requests(recipe: Recipe, model_dir: Path) -> list[str]:
    """What in a run folder would run code when loaded: the recipe's trust flags, metric scripts, and a model
    config that names its own Python classes (`auto_map`)."""
    asks = []
    if recipe.model.trust_remote_code:
        asks.append("model.trust_remote_code")
    if recipe.eval.trust_metric_code:
        asks.append("eval.trust_metric_code")
    try:
        config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        config = {}
    if isinstance(config, dict) and config.get("auto_map"):
        asks.append(f"{model_dir / 'config.json'} (auto_map: the model's own code)")
    return asks


def held_out_as_trained(trained: Recipe, recipe: Recipe) -> Recipe:
    """`recipe` (the run's, with overrides) carving what its run carved: by default a validation split only where
    the run's own eval splits read one. Without that, re-scoring a run on `validation` would carve it again out of
    rows the model trained on; now such a split must come from the data (or is missing, said in one line)."""
    carved = holdouts(trained.data, trained.eval.splits)
    return recipe.model_copy(update={"data": recipe.data.model_copy(update={"holdout": carved})})


def load_run_recipe(run_dir: Path, model_dir: Path, overrides: Sequence[str], trust_code: bool) -> Recipe:
    """A run folder's recipe, for re-scoring or diagnosing it. Trust comes from the command line, never from the
    folder: a folder from someone else whose recipe or model asks to run code is refused unless `trust_code`."""
    saved = run_dir / "recipe.yaml"
    recipe = held_out_as_trained(load_recipe(saved, [], saved=True), load_recipe(saved, overrides, saved=True))
    asks = code_requests(recipe, model_dir)
    if asks and not trust_code:
        raise PipelineError(
            f"'{run_dir}' asks to run code when loaded ({', '.join(asks)}); pass --trust-code if you trust whoever "
            "wrote it",
            field="run",
        )
    if not trust_code:  # the folder's own flags count for nothing
        recipe = recipe.model_copy(
            update={
                "model": recipe.model.model_copy(update={"trust_remote_code": False}),
                "eval": recipe.eval.model_copy(update={"trust_metric_code": False}),
            }
        )
    return recipe
