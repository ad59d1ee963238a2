"""The input tables of a model state (the start of a run, or its end) as plain tensors with their tokenizer."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import transformers
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from pipeline.errors import PipelineError
from pipeline.experiment.modeling import build_model, load_tokenizer
from pipeline.families.base import Family
from pipeline.recipe.schema import Recipe
from pipeline.surgery.tables import table_of
from pipeline.tasks.base import Task


@dataclass
class Snapshot:
    """One model state's input tables.

    tokens: (vocab, hidden) float32, row i the vector of token id i; positions: (rows, hidden) float32, or None when
    the model has no absolute position table; rotary: for a rotary model, what rotates (the family's details) and
    its inverse frequencies (rotated dimensions / 2,).
    """

    label: str
    tokenizer: PreTrainedTokenizerBase
    tokens: torch.Tensor
    positions: torch.Tensor | None
    rotary: dict | None = None
    frequencies: torch.Tensor | None = None


def snapshot_of(family: Family, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, label: str) -> Snapshot:
    """Copies of a model's token and position tables (the innermost lookup: a saved model holds plain tables)."""
    layers = family.input_layers(model)
    tokens = table_of(layers.token_embeddings).weight.detach().float().clone()
    if tokens.dim() != 2:
        raise PipelineError(
            f"{label}: a token table per position (per_position), where diagnose compares one table shared by all "
            "positions"
        )
    positions = None if layers.positions is None else table_of(layers.positions).weight.detach().float().clone()
    rotary = family.rotary_positions(model)
    rotary_emb = getattr(model.base_model, "rotary_emb", None)
    frequencies = (
        rotary_emb.inv_freq.detach().float().cpu().clone() if rotary is not None and rotary_emb is not None else None
    )
    return Snapshot(label, tokenizer, tokens, positions, rotary, frequencies)


def start_source(recipe: Recipe, against: str | None) -> tuple[str | None, str]:
    """(what to load as the start, why there is none): `--against` (a model folder, a run or checkpoint folder, a Hub
    id or pkg:// path), else the pretrained model the run started from."""
    if against is not None:
        path = Path(against)
        if path.is_dir():
            model_dir = path / "model" if (path / "model" / "config.json").is_file() else path
            if not (model_dir / "config.json").is_file():
                raise PipelineError(f"'{against}' holds no saved model (no config.json)", field="--against")
            return str(model_dir), ""
        return against, ""
    if recipe.model.config is not None:
        return (
            None,
            "the run trained from scratch (`model.config`), so there is no pretrained start: give `--against` a "
            "checkpoint of it",
        )
    return recipe.model.name_or_path, ""


def load_start(recipe: Recipe, family: Family, task: Task, source: str) -> Snapshot:
    """The start model's tables, read through the run's family (its head is whatever the task needs: unused here)."""
    cfg = recipe.model.model_copy(update={"name_or_path": source, "tokenizer": None, "config": None})
    tokenizer = load_tokenizer(cfg, family)
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()  # "newly initialized head" warnings are about a head we never use
    try:
        model = build_model(cfg, family, task.auto_class, tokenizer, task.head_kwargs())
    finally:
        transformers.logging.set_verbosity(verbosity)
    return snapshot_of(family, model, tokenizer, source)


def shared_rows(start: Snapshot, end: Snapshot) -> int | None:
    """How many leading token ids mean the same token in both states (None: the vocabularies differ, so rows of the
    same id are not the same token and drift cannot be measured)."""
    rows = min(start.tokens.shape[0], end.tokens.shape[0], len(start.tokenizer), len(end.tokenizer))
    if start.tokens.shape[1] != end.tokens.shape[1]:
        return None
    ids = list(range(rows))
    if start.tokenizer.convert_ids_to_tokens(ids) != end.tokenizer.convert_ids_to_tokens(ids):
        return None
    return rows
