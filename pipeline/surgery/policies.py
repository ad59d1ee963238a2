"""Layer policies: which parameters train (freeze / finetune flags) and the gradual-unfreezing schedule.

Every parameter belongs to exactly one layer group: `token_embeddings`, `positions`, `input_projection` (linear
maps added by surgery), `encoder` (the rest of the pretrained body) or `head` (outside `model.base_model`). Where
the input layers and the blocks are is asked of the model's `Family`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from torch import nn
from transformers import PreTrainedModel

from pipeline.errors import PipelineError
from pipeline.families.base import Family
from pipeline.surgery.registry import implementation_of
from pipeline.surgery.rows import TrainableRows
from pipeline.surgery.tables import table_of

if TYPE_CHECKING:
    from pipeline.surgery.job import SurgeryJob

LAYER_GROUPS = ("token_embeddings", "positions", "input_projection", "encoder", "head")
UnfreezeSchedule = dict[tuple[str, int], list[nn.Parameter]]  # ("step" | "epoch", N) → parameters


def layer_group_of_parameters(family: Family, model: PreTrainedModel) -> dict[str, str]:
    """Map every parameter name of `model` to its layer group."""
    layers = family.input_layers(model)
    special: dict[int, str] = {}
    for group, module in (("token_embeddings", layers.token_embeddings), ("positions", layers.positions)):
        if module is None:
            continue
        for parameter in module.parameters():
            special[id(parameter)] = "input_projection"
        if isinstance(module, TrainableRows):  # the rows trained beside a frozen table belong to the table
            special[id(module.trained)] = group
        table = getattr(table_of(module), "weight", None)
        if isinstance(table, nn.Parameter):
            special[id(table)] = group
    body = {id(parameter) for parameter in model.base_model.parameters()}
    return {
        name: special.get(id(parameter), "encoder" if id(parameter) in body else "head")
        for name, parameter in model.named_parameters()
    }


def blocks_of(family: Family, model: PreTrainedModel) -> nn.ModuleList:
    """The model's stack of blocks, bottom first; a one-line error when the family cannot find it."""
    blocks = family.blocks(model)
    if blocks is None:
        raise PipelineError(
            f"cannot find the blocks of {type(model).__name__} (family {family.name})", field="layers.encoder"
        )
    return blocks


def freeze(parameters: Iterable[nn.Parameter]) -> None:
    """No gradients for these parameters: they stay bit-identical and get no optimizer state."""
    for parameter in parameters:
        parameter.requires_grad_(False)


def unfreeze(parameters: Iterable[nn.Parameter]) -> None:
    """Train these parameters."""
    for parameter in parameters:
        parameter.requires_grad_(True)


def apply_layer_policies(job: SurgeryJob) -> UnfreezeSchedule:
    """Flip `requires_grad` as the recipe's `layers` section says (after any surgery): each policy's implementation
    says which of its layer's parameters start frozen.

    Returns the parameters to unfreeze later, keyed by ("step", N) or ("epoch", N).
    """
    family, model, cfg = job.family, job.model, job.layers
    groups_of = layer_group_of_parameters(family, model)
    named = dict(model.named_parameters())
    no_table = family.input_layers(model).positions is None
    if no_table and not family.rotary and implementation_of(cfg.positions).needs_table(cfg.positions):
        raise PipelineError(
            f"{type(model).__name__} has no learned absolute position table (it uses rotary or relative "
            "positions), so this policy cannot apply",
            field="layers.positions",
        )
    unfreeze(model.parameters())
    schedule: UnfreezeSchedule = {}
    for group in ("token_embeddings", "positions", "encoder", "head"):
        policy = getattr(cfg, group)
        parameters = {name: named[name] for name, g in groups_of.items() if g == group}
        frozen = implementation_of(policy).frozen(policy, job, parameters)
        freeze(frozen)
        when = policy.unfreeze_when()
        if frozen and when is not None:
            schedule.setdefault(when, []).extend(frozen)
    return schedule
