"""Layer policies: which parameters train (freeze / finetune flags) and the gradual-unfreezing schedule.

Every parameter belongs to exactly one layer group: `token_embeddings`, `positions`, `input_projection` (linear
maps added by surgery), `encoder` (the rest of the pretrained body) or `head` (outside `model.base_model`). Where
the input layers and the blocks are is asked of the model's `Family`.
"""

from __future__ import annotations

from collections.abc import Iterable

from torch import nn
from transformers import PreTrainedModel

from pipeline.errors import PipelineError
from pipeline.families.base import Family
from pipeline.recipe.layers import LayerPolicy, LayersConfig
from pipeline.surgery.tables import table_of

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


def _frozen_by_policy(policy: LayerPolicy) -> bool:
    return policy.policy == "freeze" or (policy.policy == "replace" and policy.then == "freeze")


def apply_layer_policies(family: Family, model: PreTrainedModel, cfg: LayersConfig) -> UnfreezeSchedule:
    """Flip `requires_grad` as the recipe's `layers` section says (after any surgery).

    Returns the parameters to unfreeze later, keyed by ("step", N) or ("epoch", N).
    """
    groups_of = layer_group_of_parameters(family, model)
    named = dict(model.named_parameters())
    by_group = {group: [named[n] for n, g in groups_of.items() if g == group] for group in LAYER_GROUPS}
    if family.input_layers(model).positions is None and cfg.positions.policy != "finetune" and not family.rotary:
        raise PipelineError(
            f"{type(model).__name__} has no learned absolute position table (it uses rotary or relative "
            "positions), so this policy cannot apply",
            field="layers.positions",
        )
    unfreeze(model.parameters())
    schedule: UnfreezeSchedule = {}
    for group in ("token_embeddings", "positions", "encoder"):
        policy = getattr(cfg, group)
        frozen = list(by_group[group]) if _frozen_by_policy(policy) else []
        if group == "encoder" and cfg.encoder.policy == "finetune" and cfg.encoder.freeze_bottom:
            blocks = blocks_of(family, model)
            if cfg.encoder.freeze_bottom > len(blocks):
                raise PipelineError(f"the model has only {len(blocks)} layers", field="layers.encoder.freeze_bottom")
            frozen = [p for block in blocks[: cfg.encoder.freeze_bottom] for p in block.parameters()]
        freeze(frozen)
        if frozen and (policy.unfreeze_at_step or policy.unfreeze_at_epoch):
            when = ("step", policy.unfreeze_at_step) if policy.unfreeze_at_step else ("epoch", policy.unfreeze_at_epoch)
            schedule.setdefault(when, []).extend(frozen)
    return schedule
