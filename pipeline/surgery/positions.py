"""Position-table surgery: a new absolute position table for the variant of `layers.positions` a recipe names
(sinusoidal, learned, extended, or zeros), combined with the token vectors by addition or concatenation.

Rotary decoders have no table; their position variants are applied by their family (`Family.replace_rotary_positions`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from transformers import PreTrainedModel

from pipeline.errors import PipelineError
from pipeline.families.base import Family
from pipeline.recipe.positions import ExtendedPositions, LearnedPositions, NewTable, NoPositions, SinusoidalPositions
from pipeline.resources import require_memory
from pipeline.surgery.tables import FixedTable, ProjectedLookup, extended_table, sinusoidal_table, table_of


def sinusoidal_positions(policy: SinusoidalPositions, old: nn.Module, rows: int) -> tuple[nn.Module, str]:
    """A fixed sin/cos buffer (rows, width), scaled to the replaced table's std unless the policy gives a scale."""
    weight = table_of(old).weight.detach()
    table = sinusoidal_table(rows, weight.shape[1])
    scale = policy.scale or float(weight.std()) / float(table.std())
    return FixedTable(table * scale), f"sinusoidal (fixed, ×{scale:.4g})"


def zero_positions(policy: NoPositions, old: nn.Module, rows: int) -> tuple[nn.Module, str]:
    """A buffer of zeros (rows, width): no position signal."""
    return FixedTable(torch.zeros(rows, table_of(old).weight.shape[1])), "none (zeros: no position signal)"


def learned_positions(policy: LearnedPositions, old: nn.Module, rows: int) -> tuple[nn.Module, str]:
    """A fresh normal table (rows, width), with the policy's std or the replaced table's."""
    weight = table_of(old).weight.detach()
    new = nn.Embedding(rows, weight.shape[1])
    nn.init.normal_(new.weight, std=policy.std or float(weight.std()))
    return new, "learned (fresh)"


def extended_positions(policy: ExtendedPositions, old: nn.Module, rows: int) -> tuple[nn.Module, str]:
    """The pretrained table grown to `rows` rows (rows kept for padding, as RoBERTa's, stay where they are)."""
    weight = table_of(old).weight.detach()
    padding_idx = getattr(table_of(old), "padding_idx", None)
    new = nn.Embedding(rows, weight.shape[1])
    with torch.no_grad():
        new.weight.copy_(
            extended_table(weight, rows, policy.extend_mode, 0 if padding_idx is None else padding_idx + 1)
        )
    return new, f"extended {weight.shape[0]} → {rows} ({policy.extend_mode})"


# A position-table variant → the function that makes its new table (policy, old module, rows) → (module, description).
POSITION_TABLES: dict[type[NewTable], Callable[[Any, nn.Module, int], tuple[nn.Module, str]]] = {
    SinusoidalPositions: sinusoidal_positions,
    NoPositions: zero_positions,
    LearnedPositions: learned_positions,
    ExtendedPositions: extended_positions,
}


def replace_positions(family: Family, model: PreTrainedModel, policy: NewTable) -> tuple[str, int]:
    """Swap the position table as the policy's variant says; returns a one-line description and the new row count."""
    slot = family.position_slot(model)
    if slot is None:
        raise PipelineError(
            f"{type(model).__name__} has no absolute position table (rotary or relative positions): "
            "layers.positions.policy: replace cannot apply",
            field="layers.positions",
        )
    current = getattr(*slot)
    old = table_of(current).weight.detach()
    rows, width = policy.max_positions or old.shape[0], old.shape[1]
    require_memory(
        rows * width * old.element_size(), f"a position table of {rows:,} rows", "layers.positions.max_positions"
    )
    new, source = POSITION_TABLES[type(policy)](policy, current, rows)
    expected = new.weight.detach().clone()
    if policy.combine == "concat":
        # [token; position] @ W.T == token @ W_t.T + position @ W_p.T: the position half of W lives here,
        # the token half (with the bias) on the token side, so the model's own "add" does the concatenation.
        new = ProjectedLookup(new, nn.Linear(width, width, bias=False))
        model.set_input_embeddings(ProjectedLookup(model.get_input_embeddings(), nn.Linear(width, width)))
        source += ", combined by concat + projection"
    family.set_positions(model, new.to(old.device), rows)
    # Guard against a model whose own code rebuilds or overwrites the table: read the values back.
    if not torch.equal(table_of(family.input_layers(model).positions).weight.detach().cpu(), expected.cpu()):
        raise PipelineError("the new position table did not survive in the model", field="layers.positions")
    return source, rows
