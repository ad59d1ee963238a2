"""The model card of a saved model (`model/README.md`, Hugging Face's `ModelCard`): what it was made from, what was
done to each input layer, on which data, how it scores (with a sweep's intervals, when a sweep made the run), and
the command that makes it again. Written from the run folder alone, so a sweep can rewrite it with its intervals;
`pipeline push` (`pipeline.training.push`) uploads the model folder with it.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

from huggingface_hub import ModelCard, ModelCardData

from pipeline.errors import PipelineError
from pipeline.experiment.recipes import load_recipe
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


def text(value: object) -> str:
    """A name, path or value from a recipe or the data as plain card text: HTML escaped (no markup gets in), and
    the Markdown marks that could open a code span, a link or a table cell escaped with a backslash."""
    escaped = html.escape(str(value), quote=False)
    return "".join(f"\\{c}" if c in MARKDOWN_MARKS else c for c in escaped)


MARKDOWN_MARKS = set("\\`[]|")


def fenced(body: str, language: str) -> list[str]:
    """`body` in a fenced block whose fence is longer than any run of backticks inside it (so it cannot end it)."""
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence + language, body, fence]


def data_in_words(data: DataConfig) -> str:
    """Where the data came from: a Hub data set, a folder per class, or files (one, or one per split)."""
    if data.hub_id:
        return f"the Hub dataset {text(data.hub_id)}" + (f" ({text(data.hub_config)})" if data.hub_config else "")
    if data.folder:
        return f"the folder {text(data.folder)}"
    if isinstance(data.files, str):
        return text(data.files)
    return ", ".join(f"{text(split)}: {text(path)}" for split, path in (data.files or {}).items())


def _score_rows(metrics: dict[str, Any]) -> list[str]:
    splits = [split for split in metrics if split != "train"]
    names = list(dict.fromkeys(name for split in splits for name in metrics[split] if "/" not in name))
    rows = [f"| split | {' | '.join(map(text, names))} |", f"|---|{'---|' * len(names)}"]
    for split in splits:
        values = [metrics[split].get(name) for name in names]
        rows.append(f"| {text(split)} | " + " | ".join("—" if v is None else f"{v:.4f}" for v in values) + " |")
    return rows


def checkpoint_step(run_dir: Path, model_dir: Path) -> str | None:
    """The checkpoint a model folder is (`step-0000004`), or None for the run's final model."""
    if model_dir.resolve() == (run_dir / "model").resolve():
        return None
    return (model_dir.parent if model_dir.name == "model" else model_dir).name


def _scores(run_dir: Path, model_dir: Path, sweep: list[str] | None) -> list[str]:
    """The final model's scores (and its cell in a sweep); a checkpoint's card says it has none of its own."""
    step = checkpoint_step(run_dir, model_dir)
    if step is not None:
        return [f"A checkpoint of the run, saved at {step}: no scores were measured for it (the run's scores are "
                "those of its final model)."]  # fmt: skip
    metrics = json.loads((run_dir / "metrics.json").read_text())
    train = metrics.get("train", {})
    return [
        *_score_rows(metrics),
        *(["", *sweep] if sweep else []),
        "",
        f"Trained {train.get('steps')} steps ({train.get('epochs')} epochs) in {train.get('train_wall_time_s')} s; "
        f"{train.get('trainable_parameters')} trainable and {train.get('frozen_parameters')} frozen parameters.",
    ]


def model_card(run_dir: Path, sweep: list[str] | None = None, model_dir: Path | None = None) -> ModelCard:
    """The card of a run's saved model (`model_dir`: the final one by default, or a checkpoint's), from the run
    folder's resolved recipe, input-layer report and metrics; sweep: Markdown lines on the run's cell in a sweep
    (its intervals), which the sweep writes. Names, paths and values from the recipe or the data are escaped."""
    model_dir = model_dir or run_dir / "model"
    recipe = load_recipe(run_dir / "recipe.yaml", saved=True)
    model, task = recipe.model, recipe.task.type
    source = model.name_or_path or "a model built from model.config (no pretrained weights)"
    hub_like = isinstance(model.name_or_path, str) and "://" not in source and not Path(source).exists()
    data = ModelCardData(
        library_name="transformers",
        base_model=source if hub_like else None,
        pipeline_tag=task_type(task).pipeline_tag,
        tags=["embedlab", task, f"family-{model.family}"],
        datasets=[recipe.data.hub_id] if recipe.data.hub_id else None,
    )
    step = checkpoint_step(run_dir, model_dir)
    lines = [
        f"# {text(run_dir.name)}" + (f" ({text(step)})" if step else ""),
        "",
        f"Fine-tuned with embedlab from {text(source)} (family {text(model.family)}) for {task}, on "
        f"{data_in_words(recipe.data)}.",
        "",
        "## Input layers",
        "",
        "| layer | policy |",
        "|---|---|",
        *(f"| {name} | {text(policy_in_words(getattr(recipe.layers, name)))} |" for name in LayersConfig.model_fields),
        "",
        "## Scores",
        "",
        *_scores(run_dir, model_dir, sweep),
        "",
        "## Reproduce",
        "",
        "Save the recipe below as `recipe.yaml` (it is the run folder's resolved recipe), then:",
        "",
        "```bash",
        "pipeline train recipe.yaml output_dir=runs/reproduced",
        "```",
        "",
        *fenced((run_dir / "recipe.yaml").read_text(encoding="utf-8").rstrip(), "yaml"),
    ]
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines) + "\n")


def write_model_card(run_dir: Path, sweep: list[str] | None = None, model_dir: Path | None = None) -> Path:
    """Write (or rewrite) the card of a run's model (`model_dir`: the final one by default); returns its path."""
    model_dir = model_dir or run_dir / "model"
    path = model_dir / CARD
    try:
        atomic_write_text(path, str(model_card(run_dir, sweep, model_dir)))
    except OSError as error:
        raise PipelineError(f"cannot write the model card {path} ({error.strerror or error})") from None
    return path
