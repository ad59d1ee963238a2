"""The model card of a saved model (`model/README.md`, Hugging Face's `ModelCard`): what it was made from, what was
done to each input layer, on which data, how it scores (with a sweep's intervals, when a sweep made the run), and
the command that makes it again. Written from the run folder alone, so a sweep can rewrite it with its intervals;
and `pipeline push` uploads the model folder with it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from huggingface_hub import ModelCard, ModelCardData

from pipeline.errors import PipelineError, unusable
from pipeline.experiment.recipes import load_recipe
from pipeline.experiment.runs import locate_run
from pipeline.recipe.layers import LayersConfig
from pipeline.recipe.schema import DataConfig
from pipeline.recipe.variants import LayerPolicy
from pipeline.storage import atomic_write_text
from pipeline.tasks.registry import task_type

CARD = "README.md"


def policy_in_words(policy: LayerPolicy) -> str:
    """A layer's policy and every setting of it that differs from the variant's default (`replace: init vectors,
    width project, then freeze`), as the recipe says it."""
    fields = type(policy).model_fields
    settings = [
        f"{key} {json.dumps(value) if isinstance(value, dict | list) else value}"
        for key, value in policy.model_dump().items()
        if key != "policy" and (fields[key].is_required() or value != fields[key].default)
    ]
    return f"{policy.tags['policy']}" + (f": {', '.join(settings)}" if settings else "")


def _data_in_words(data: DataConfig) -> str:
    """Where the data came from: a Hub data set, a folder per class, or files (one, or one per split)."""
    if data.hub_id:
        return f"the Hub dataset `{data.hub_id}`" + (f" ({data.hub_config})" if data.hub_config else "")
    if data.folder:
        return f"the folder `{data.folder}`"
    if isinstance(data.files, str):
        return f"`{data.files}`"
    return ", ".join(f"{split}: `{path}`" for split, path in (data.files or {}).items())


def _score_rows(metrics: dict[str, Any]) -> list[str]:
    splits = [split for split in metrics if split != "train"]
    names = list(dict.fromkeys(name for split in splits for name in metrics[split] if "/" not in name))
    rows = [f"| split | {' | '.join(names)} |", f"|---|{'---|' * len(names)}"]
    for split in splits:
        values = [metrics[split].get(name) for name in names]
        rows.append(f"| {split} | " + " | ".join("—" if v is None else f"{v:.4f}" for v in values) + " |")
    return rows


def model_card(run_dir: Path, sweep: list[str] | None = None) -> ModelCard:
    """The card of `run_dir/model`, from the run folder's resolved recipe, input-layer report and metrics; sweep:
    Markdown lines on the run's cell in a sweep (its intervals), which the sweep writes."""
    recipe = load_recipe(run_dir / "recipe.yaml", saved=True)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    model, task = recipe.model, recipe.task.type
    source = model.name_or_path or "a model built from `model.config` (no pretrained weights)"
    hub_like = isinstance(model.name_or_path, str) and "://" not in source and not Path(source).exists()
    data = ModelCardData(
        library_name="transformers",
        base_model=source if hub_like else None,
        pipeline_tag=task_type(task).pipeline_tag,
        tags=["embedlab", task, f"family-{model.family}"],
        datasets=[recipe.data.hub_id] if recipe.data.hub_id else None,
    )
    train = metrics.get("train", {})
    lines = [
        f"# {run_dir.name}",
        "",
        f"Fine-tuned with embedlab from `{source}` (family {model.family}) for {task}, on "
        f"{_data_in_words(recipe.data)}.",
        "",
        "## Input layers",
        "",
        "| layer | policy |",
        "|---|---|",
        *(f"| {name} | {policy_in_words(getattr(recipe.layers, name))} |" for name in LayersConfig.model_fields),
        "",
        "## Scores",
        "",
        *_score_rows(metrics),
        *(["", *sweep] if sweep else []),
        "",
        f"Trained {train.get('steps')} steps ({train.get('epochs')} epochs) in {train.get('train_wall_time_s')} s; "
        f"{train.get('trainable_parameters')} trainable and {train.get('frozen_parameters')} frozen parameters.",
        "",
        "## Reproduce",
        "",
        "Save the recipe below as `recipe.yaml` (it is the run folder's resolved recipe), then:",
        "",
        "```bash",
        "pipeline train recipe.yaml output_dir=runs/reproduced",
        "```",
        "",
        "```yaml",
        (run_dir / "recipe.yaml").read_text(encoding="utf-8").rstrip(),
        "```",
    ]
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines) + "\n")


def write_model_card(run_dir: Path, sweep: list[str] | None = None) -> Path:
    """Write (or rewrite) `run_dir/model/README.md`; returns its path."""
    path = run_dir / "model" / CARD
    atomic_write_text(path, str(model_card(run_dir, sweep)))
    return path


def push_model(run: Path, repo_id: str, private: bool = False, dry_run: bool = False) -> list[str]:
    """Upload a run's saved model folder, with its card, to the Hub repository `repo_id` (created if it does not
    exist); returns the files uploaded (with `dry_run`, the files that would be, and nothing is sent)."""
    run_dir, model_dir = locate_run(run)
    if not (model_dir / CARD).is_file() and (run_dir / "metrics.json").is_file():
        write_model_card(run_dir)
    files = sorted(path.relative_to(model_dir).as_posix() for path in model_dir.rglob("*") if path.is_file())
    if not files:
        raise PipelineError(f"{model_dir} holds no file to push")
    if dry_run:
        return files
    from huggingface_hub import HfApi

    try:
        api = HfApi()
        api.create_repo(repo_id, private=private, exist_ok=True)
        api.upload_folder(folder_path=str(model_dir), repo_id=repo_id, commit_message=f"embedlab run {run_dir.name}")
    except Exception as error:  # the Hub client raises many types: offline, not logged in, no rights, a bad id
        raise unusable(f"cannot push {model_dir} to {repo_id}", error, field="--repo-id") from None
    return files
