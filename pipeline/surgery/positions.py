"""The position variants' implementations (`pipeline.surgery.registry`): a new absolute position table for the
variant of `layers.positions` a recipe names (sinusoidal, learned, extended, or zeros), combined with the token vectors
by addition or concatenation; for rotary decoders, which have no table, a new rotation or none, applied by their
family (`Family.new_rotation`, `Family.stop_rotation`); `freeze` and `finetune` keep the positions as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from transformers import PreTrainedModel

from pipeline.errors import PipelineError
from pipeline.families.base import Family
from pipeline.recipe.positions import (
    ExtendedPositions,
    FinetunedPositions,
    FrozenPositions,
    LearnedPositions,
    NewTable,
    NoPositions,
    PositionPolicy,
    RopePositions,
    SinusoidalPositions,
)
from pipeline.resources import require_memory
from pipeline.surgery.job import SurgeryJob
from pipeline.surgery.registry import PositionSurgery, implements
from pipeline.surgery.tables import FixedTable, ProjectedLookup, extended_table, sinusoidal_table, table_of

# A variant's table maker: (policy, the old module, rows) → (the new module, what it is in words).
NewPositionTable = Callable[[Any, nn.Module, int], tuple[nn.Module, str]]


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


def replace_positions(
    family: Family, model: PreTrainedModel, policy: NewTable, make: NewPositionTable
) -> tuple[str, int]:
    """Swap the position table for the one `make` makes; returns a one-line description and the new row count."""
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
    new, source = make(policy, current, rows)
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


def describe_rotation(
    family: Family, model: PreTrainedModel, policy: PositionPolicy, kept: bool
) -> tuple[str, dict[str, Any] | None]:
    """What a rotary family's positions now are: a line, and the details for the report (asked of the family once)."""
    details = family.rotary_positions(model)
    if details is None:
        return f"none ({family.no_position_table})", None
    kept_words = f" (policy {policy.tags['policy']}: the rotation has no parameters, nothing to train)" if kept else ""
    return details["summary"] + kept_words, {key: value for key, value in details.items() if key != "summary"}


class DescribedPositions(PositionSurgery):
    """Positions described after the variant's change: a rotary family's rotation, in words and details.

    keeps: the variant changes nothing (freeze / finetune), which the description of a rotation says."""

    keeps = True

    def change(self, policy: Any, job: SurgeryJob) -> str | None:
        """Change the positions; returns what they now are (None: kept, or a rotary family's rotation says)."""
        return None

    def replace(self, policy: Any, job: SurgeryJob) -> str | None:
        changed = self.change(policy, job)
        if not job.family.rotary:
            return changed
        words, job.report.rotary = describe_rotation(job.family, job.model, policy, kept=self.keeps)
        return words


@implements(FrozenPositions, FinetunedPositions)
class KeptPositions(DescribedPositions):
    """`freeze` / `finetune`: the positions as they are (a rotation has no parameters: nothing changes)."""

    def needs_table(self, policy: PositionPolicy) -> bool:
        return policy.is_frozen()  # finetuning positions a model does not have trains nothing, and asks nothing


class NewTableSurgery(DescribedPositions):
    """A new absolute position table, made by the variant's function (`make`)."""

    keeps = False

    def make(self, policy: Any, old: nn.Module, rows: int) -> tuple[nn.Module, str]:
        raise NotImplementedError

    def change(self, policy: NewTable, job: SurgeryJob) -> str:
        source, job.report.position_rows = replace_positions(job.family, job.model, policy, self.make)
        return source


@implements(SinusoidalPositions)
class SinusoidalSurgery(NewTableSurgery):
    make = staticmethod(sinusoidal_positions)


@implements(LearnedPositions)
class LearnedSurgery(NewTableSurgery):
    make = staticmethod(learned_positions)


@implements(ExtendedPositions)
class ExtendedSurgery(NewTableSurgery):
    make = staticmethod(extended_positions)


@implements(NoPositions)
class NoPositionsSurgery(NewTableSurgery):
    """`none`: a table of zeros, or for a rotary family no rotation (in every layer or `layers`)."""

    make = staticmethod(zero_positions)

    def change(self, policy: NoPositions, job: SurgeryJob) -> str | None:
        if job.family.rotary:
            job.family.stop_rotation(job.model, policy.layers)
            return None
        return super().change(policy, job)


@implements(RopePositions)
class RopeSurgery(DescribedPositions):
    """`rope`: a rotary family's new base, scaling or partial rotation."""

    keeps = False

    def change(self, policy: RopePositions, job: SurgeryJob) -> None:
        job.family.new_rotation(job.model, policy)
