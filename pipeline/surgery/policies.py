"""Layer policies: which parameters train (freeze / finetune flags) and the gradual-unfreezing schedule.

Every parameter belongs to exactly one layer group: `token_embeddings`, `positions`, `input_projection` (linear
maps added by surgery), `encoder` (the rest of the pretrained body) or `head` (outside `model.base_model`). Where
the input layers and the blocks are is asked of the model's `Family`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from pipeline.errors import PipelineError
from pipeline.families.base import Family
from pipeline.recipe.layers import FinetunedBody, FinetunedTable, LayersConfig, LoraBody
from pipeline.recipe.positions import FinetunedPositions
from pipeline.surgery.lora import add_lora, is_adapter
from pipeline.surgery.rows import TrainableRows, rows_to_train, train_rows, untie_output_embeddings
from pipeline.surgery.tables import table_of
from pipeline.vocabulary.added import AddedTokens

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


def apply_layer_policies(family: Family, model: PreTrainedModel, cfg: LayersConfig) -> UnfreezeSchedule:
    """Flip `requires_grad` as the recipe's `layers` section says (after any surgery).

    Returns the parameters to unfreeze later, keyed by ("step", N) or ("epoch", N).
    """
    groups_of = layer_group_of_parameters(family, model)
    named = dict(model.named_parameters())
    by_group = {group: [named[n] for n, g in groups_of.items() if g == group] for group in LAYER_GROUPS}
    no_table = family.input_layers(model).positions is None
    if no_table and not isinstance(cfg.positions, FinetunedPositions) and not family.rotary:
        raise PipelineError(
            f"{type(model).__name__} has no learned absolute position table (it uses rotary or relative "
            "positions), so this policy cannot apply",
            field="layers.positions",
        )
    unfreeze(model.parameters())
    schedule: UnfreezeSchedule = {}
    for group in ("token_embeddings", "positions", "encoder", "head"):
        policy = getattr(cfg, group)
        frozen = list(by_group[group]) if policy.is_frozen() else []
        if group == "token_embeddings" and isinstance(family.input_layers(model).token_embeddings, TrainableRows):
            frozen = [table_of(family.input_layers(model).token_embeddings).weight]  # trained by rows: the rest stays
        if group == "encoder" and isinstance(cfg.encoder, LoraBody):
            frozen = [named[n] for n, g in groups_of.items() if g == "encoder" and not is_adapter(n)]
        if group == "encoder" and isinstance(cfg.encoder, FinetunedBody) and cfg.encoder.freeze_bottom:
            blocks = blocks_of(family, model)
            if cfg.encoder.freeze_bottom > len(blocks):
                raise PipelineError(f"the model has only {len(blocks)} layers", field="layers.encoder.freeze_bottom")
            frozen = [p for block in blocks[: cfg.encoder.freeze_bottom] for p in block.parameters()]
        freeze(frozen)
        when = policy.unfreeze_when()
        if frozen and when is not None:
            schedule.setdefault(when, []).extend(frozen)
    return schedule


def apply_training_scope(
    family: Family,
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    cfg: LayersConfig,
    added: AddedTokens | None,
) -> dict[str, Any]:
    """What trains inside a layer, before the freeze / finetune flags: a tied LM head cut loose (`tie: untie`), only
    some rows of the token table (`rows`), low-rank adapters beside the body (`encoder: lora`). Returns what was
    done, for `input_layers.json`."""
    report: dict[str, Any] = {}
    policy = cfg.token_embeddings
    if policy.tie == "untie":
        untie_output_embeddings(model)
        report["tie"] = "untie: the LM head is a copy of the table, a tensor of its own (layers.head governs it)"
    if isinstance(policy, FinetunedTable) and policy.rows is not None:
        table_rows = model.get_input_embeddings().num_embeddings
        ids = rows_to_train(policy.rows, tokenizer, added, table_rows)
        train_rows(model, ids)
        report["rows"] = {
            "trained": len(ids),
            "of": table_rows,
            "tokens": tokenizer.convert_ids_to_tokens(ids[:100]),
        }
    if isinstance(cfg.encoder, LoraBody):
        report["lora"] = add_lora(model, cfg.encoder, family.lora_targets, family.lora_fan_in_fan_out)
    return report
