"""Replacement tables that keep a saved model a plain Hugging Face model.

Fixed tables are buffers named `weight`; a lookup followed by a linear map (`ProjectedLookup`) folds into one plain
table when saved (`standard_state_dict`), because `linear(table[ids]) == linear(table)[ids]`.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import safe_open
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from pipeline.errors import PipelineError
from pipeline.surgery.lora import merged_state_dict
from pipeline.surgery.rows import TrainableRows


class FixedTable(nn.Module):
    """A lookup table that is never trained: a buffer named `weight` of shape (rows, hidden).

    ids (...) → vectors (..., hidden). Used for sinusoidal positions and for `none` (all zeros).
    """

    def __init__(self, table: torch.Tensor):
        super().__init__()
        self.register_buffer("weight", table)

    @property
    def num_embeddings(self) -> int:
        return self.weight.shape[0]

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return F.embedding(ids, self.weight)


class ProjectedLookup(nn.Module):
    """A lookup followed by a linear map: ids (...) → lookup (..., d_in) → projection (..., d_out).

    Used for narrow static vectors (GloVe 50-d into a 384-d encoder) and for `combine: concat`.
    """

    def __init__(self, lookup: nn.Module, projection: nn.Linear):
        super().__init__()
        self.lookup = lookup
        self.projection = projection

    @property
    def num_embeddings(self) -> int:
        return self.lookup.num_embeddings

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.projection(self.lookup(ids))

    def folded_table(self) -> torch.Tensor:
        """The equivalent plain table (rows, d_out)."""
        inner = self.lookup.folded_table() if isinstance(self.lookup, ProjectedLookup) else self.lookup.weight
        return self.projection(inner)


PER_POSITION_KEY = "embedlab_per_position"  # in a saved config: how many per-position tables the model has


class PerPositionTable(nn.Module):
    """A token table of its own for every position, instead of one table shared by all time steps.

    weight: (positions, rows, hidden); ids (batch, seq) → weight[t, ids[:, t]] (batch, seq, hidden), t the column
    (batches are padded on the right, so the column is the token's position). A row moves only when its token is
    seen at its position: the notes' argument for sharing (memory, and what one position learns reaching the others)
    made measurable. Saved as one 3-D `weight`, which a stock model refuses to load (its table is 2-D), and recorded
    in the config (`embedlab_per_position`), from which `restore_per_position` rebuilds it."""

    def __init__(self, weight: torch.Tensor):
        super().__init__()
        self.weight = nn.Parameter(weight)

    @property
    def num_embeddings(self) -> int:
        return self.weight.shape[1]

    @property
    def embedding_dim(self) -> int:
        return self.weight.shape[2]

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if ids.shape[-1] > self.weight.shape[0]:
            raise PipelineError(f"{ids.shape[-1]} positions, but per-position tables for {self.weight.shape[0]}")
        positions = torch.arange(ids.shape[-1], device=ids.device).expand_as(ids)  # (batch, seq)
        return self.weight[positions, ids]


def restore_per_position(model: nn.Module, folder: Path) -> None:
    """Rebuild the per-position tables a saved model's config records (`embedlab_per_position`) from its weight
    files: a stock model of that config has one 2-D table where the file holds a 3-D one."""
    if not getattr(model.config, PER_POSITION_KEY, None):
        return
    name = next(n for n, module in model.named_modules() if module is model.get_input_embeddings())
    for path in sorted(folder.glob("*.safetensors")):
        with safe_open(str(path), framework="pt") as handle:
            if f"{name}.weight" in handle.keys():  # noqa: SIM118 (safe_open has keys(), no __contains__)
                weight = handle.get_tensor(f"{name}.weight")
                break
    else:
        raise PipelineError(f"'{folder}' records per-position tables, but no weight file holds {name}.weight")
    device = model.get_input_embeddings().weight.device
    model.set_input_embeddings(PerPositionTable(weight.to(device)))


def check_per_position_start(model: nn.Module, changes: list[str]) -> None:
    """A model whose token tables are per position (a run with `per_position: true`) can be fine-tuned or frozen as
    it is; the changes that rebuild a 2-D table (`changes`: what the recipe asks, e.g. `replace`, `add_tokens`) are
    refused with one line."""
    if changes and isinstance(model.get_input_embeddings(), PerPositionTable):
        raise PipelineError(
            f"the model has a token table per position (saved by a run with per_position: true); {changes[0]} needs "
            "one shared table: start from the model that run started from",
            field="model.name_or_path",
        )


def table_of(module: nn.Module) -> nn.Module:
    """The innermost lookup (an `nn.Embedding` or `FixedTable`) of a possibly projected module (or of a table
    trained by rows: its whole, frozen table)."""
    while isinstance(module, ProjectedLookup | TrainableRows):
        module = module.lookup if isinstance(module, ProjectedLookup) else module.table
    return module


def sinusoidal_table(rows: int, width: int) -> torch.Tensor:
    """PE[pos, 2i] = sin(pos / 10000^(2i/d)), PE[pos, 2i+1] = cos(pos / 10000^(2i/d)); shape (rows, width)."""
    position = torch.arange(rows, dtype=torch.float64).unsqueeze(1)
    frequency = torch.exp(torch.arange(0, width, 2, dtype=torch.float64) * (-math.log(10000.0) / width))
    table = torch.zeros(rows, width, dtype=torch.float64)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency)[:, : width // 2]
    return table.float()


def extended_table(old: torch.Tensor, rows: int, mode: str, offset: int) -> torch.Tensor:
    """Grow a learned position table (old_rows, hidden) to (rows, hidden).

    copy: old rows kept, new rows repeat the old ones after `offset` (RoBERTa keeps rows 0..padding_idx for
    padding). interpolate: the old table resampled linearly over the new length (old rows move).
    """
    if rows <= old.shape[0]:
        raise PipelineError(
            f"extend needs max_positions above the current {old.shape[0]}", field="layers.positions.max_positions"
        )
    if mode == "interpolate":
        return F.interpolate(old.T.unsqueeze(0), size=rows, mode="linear", align_corners=True)[0].T.contiguous()
    body = old[offset:]
    repeats = math.ceil((rows - offset) / body.shape[0])
    return torch.cat([old[:offset], body.repeat(repeats, 1)])[:rows].clone()


def standard_state_dict(model: nn.Module, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Fold every `ProjectedLookup` and every table trained by rows into one plain `weight`, and merge LoRA adapters
    into the weights they adapt, so the saved weights fit the stock architecture."""
    folded = merged_state_dict(model, dict(state_dict))
    for name, module in model.named_modules():
        if isinstance(module, TrainableRows):
            for key in [k for k in folded if k.startswith((f"{name}.table.", f"{name}.trained", f"{name}.rows"))]:
                del folded[key]
            folded[f"{name}.weight"] = module.merged().cpu().contiguous()
    projected = {name: module for name, module in model.named_modules() if isinstance(module, ProjectedLookup)}
    outermost = [name for name in projected if not any(name.startswith(f"{other}.") for other in projected)]
    for name in outermost:
        for key in [k for k in folded if k.startswith((f"{name}.lookup.", f"{name}.projection."))]:
            del folded[key]
        with torch.no_grad():
            folded[f"{name}.weight"] = projected[name].folded_table().detach().cpu().contiguous()
    return folded


def check_vocabulary(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
    """The model's table must have a row for every token id."""
    if model.get_input_embeddings().num_embeddings < len(tokenizer):
        raise PipelineError(
            f"the tokenizer has {len(tokenizer)} tokens but the model's table only "
            f"{model.get_input_embeddings().num_embeddings} rows: they do not belong together",
            field="model.tokenizer",
        )
