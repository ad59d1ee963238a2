"""Where a run's parts are: the run folder holding `recipe.yaml`, and the saved model inside it."""

from __future__ import annotations

from pathlib import Path

from pipeline.errors import PipelineError


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
