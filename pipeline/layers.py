"""Layer policies (freeze / finetune / replace), optimizer parameter groups, and the parameter table of a run.

Every parameter belongs to exactly one layer group: `token_embeddings`, `positions`, `input_projection` (linear
maps added by surgery), `encoder` (the rest of the pretrained body) or `head` (outside `model.base_model`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from pipeline.errors import PipelineError
from pipeline.models import input_layers
from pipeline.recipe import LayerPolicy, LayersConfig, TrainConfig
from pipeline.surgery import describe_output_embeddings, replace_positions, replace_token_embeddings, retie_output_embeddings, table_of
from pipeline.vectors import Alignment

log = logging.getLogger(__name__)

LAYER_GROUPS = ("token_embeddings", "positions", "input_projection", "encoder", "head")
LAYER_LIST_NAMES = ("layer", "layers", "h", "block", "blocks")
_LAYER_INDEX = re.compile(r"\.(?:" + "|".join(LAYER_LIST_NAMES) + r")\.(\d+)\.")


def layer_group_of_parameters(model: PreTrainedModel) -> dict[str, str]:
    """Map every parameter name of `model` to its layer group."""
    layers = input_layers(model)
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


def encoder_layers(model: PreTrainedModel) -> nn.ModuleList:
    """The stack of transformer blocks, bottom first (BERT `encoder.layer`, GPT-2 `h`, DistilBERT `transformer.layer`)."""
    for name, module in model.base_model.named_modules():
        if isinstance(module, nn.ModuleList) and name.rsplit(".", 1)[-1] in LAYER_LIST_NAMES and len(module):
            return module
    raise PipelineError(f"cannot find the transformer blocks of {type(model).__name__}", field="layers.encoder")


def freeze(parameters: Iterable[nn.Parameter]) -> None:
    """No gradients for these parameters: they stay bit-identical and get no optimizer state."""
    for parameter in parameters:
        parameter.requires_grad_(False)


def unfreeze(parameters: Iterable[nn.Parameter]) -> None:
    """Train these parameters."""
    for parameter in parameters:
        parameter.requires_grad_(True)


def apply_surgery(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, cfg: LayersConfig, seed: int, pretrained: bool = True
) -> tuple[dict[str, str], Alignment | None]:
    """Carry out the `replace` policies; returns what each input layer now is, and the vector alignment if any.

    pretrained: False for a model built from `model.config`, whose layers start random.
    """
    layers = input_layers(model)
    start = "pretrained" if pretrained else "random (built from model.config)"
    sources = {"token_embeddings": start, "positions": start if layers.positions is not None else "absent"}
    alignment = None
    if cfg.token_embeddings.policy == "replace":
        sources["token_embeddings"], alignment = replace_token_embeddings(model, tokenizer, cfg.token_embeddings, seed)
        retie_output_embeddings(model)
    if cfg.positions.policy == "replace":
        sources["positions"] = replace_positions(model, tokenizer, cfg.positions)
    sources["output_embeddings"] = describe_output_embeddings(model)
    return sources, alignment


def _frozen_by_policy(policy: LayerPolicy) -> bool:
    return policy.policy == "freeze" or (policy.policy == "replace" and policy.then == "freeze")


def apply_layer_policies(model: PreTrainedModel, cfg: LayersConfig) -> dict[tuple[str, int], list[nn.Parameter]]:
    """Flip `requires_grad` as the recipe's `layers` section says (after any surgery).

    Returns the parameters to unfreeze later, keyed by ("step", N) or ("epoch", N).
    """
    layers = input_layers(model)
    groups_of = layer_group_of_parameters(model)
    named = dict(model.named_parameters())
    by_group = {group: [named[n] for n, g in groups_of.items() if g == group] for group in LAYER_GROUPS}
    if layers.positions is None and cfg.positions.policy != "finetune":
        raise PipelineError(
            f"{type(model).__name__} has no learned absolute position table (it uses rotary or relative "
            "positions), so this policy cannot apply",
            field="layers.positions",
        )
    unfreeze(model.parameters())
    schedule: dict[tuple[str, int], list[nn.Parameter]] = {}
    for group in ("token_embeddings", "positions", "encoder"):
        policy = getattr(cfg, group)
        frozen = list(by_group[group]) if _frozen_by_policy(policy) else []
        if group == "encoder" and cfg.encoder.policy == "finetune" and cfg.encoder.freeze_bottom:
            blocks = encoder_layers(model)
            if cfg.encoder.freeze_bottom > len(blocks):
                raise PipelineError(f"the model has only {len(blocks)} layers", field="layers.encoder.freeze_bottom")
            frozen = [p for block in blocks[: cfg.encoder.freeze_bottom] for p in block.parameters()]
        freeze(frozen)
        if frozen and (policy.unfreeze_at_step or policy.unfreeze_at_epoch):
            when = ("step", policy.unfreeze_at_step) if policy.unfreeze_at_step else ("epoch", policy.unfreeze_at_epoch)
            schedule.setdefault(when, []).extend(frozen)
    return schedule


def _learning_rate(name: str, group: str, layers: LayersConfig, train: TrainConfig, depth: int) -> float:
    """train.lr × the group's multiplier × layer-wise decay (top block 1, embeddings decay^depth)."""
    if group == "head":
        multiplier = layers.head.lr_multiplier
    elif group == "input_projection":
        multiplier = 1.0
    else:
        multiplier = getattr(layers, group).lr_multiplier
    decay = layers.encoder.layerwise_lr_decay
    if decay == 1.0 or group == "head":
        return train.lr * multiplier
    match = _LAYER_INDEX.search(f".{name}")
    if match:
        distance = depth - 1 - int(match.group(1))
    elif group != "encoder" or ".embeddings." in f".{name}":
        distance = depth  # the input layers and what sits beside them (token types, embedding norm)
    else:
        distance = 0  # pooler, final norm: above the blocks
    return train.lr * multiplier * decay**distance


def build_optimizer(
    model: PreTrainedModel, layers: LayersConfig, train: TrainConfig, later: list[nn.Parameter] = ()
) -> torch.optim.AdamW:
    """AdamW over the trainable parameters (plus `later`: frozen now, unfrozen at a scheduled step).

    Frozen parameters are left out, so the optimizer holds no state for them; scheduled ones are in, but AdamW
    makes no state and no update for a parameter without a gradient. One param group per (layer group, lr,
    decay or not); one-dimensional tensors (biases, norm scales) get no weight decay.
    """
    groups_of = layer_group_of_parameters(model)
    scheduled = {id(p) for p in later}
    depth = len(encoder_layers(model)) if layers.encoder.layerwise_lr_decay != 1.0 else 0
    buckets: dict[tuple[str, float, bool], list[nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad and id(parameter) not in scheduled:
            continue
        group = groups_of[name]
        key = (group, _learning_rate(name, group, layers, train, depth), parameter.ndim >= 2)
        buckets.setdefault(key, []).append(parameter)
    if not buckets:
        raise PipelineError("every parameter is frozen: nothing to train", field="layers")
    param_groups = [
        {"params": params, "lr": lr, "weight_decay": train.weight_decay if decay else 0.0, "layer_group": group}
        for (group, lr, decay), params in sorted(buckets.items(), key=lambda item: (LAYER_GROUPS.index(item[0][0]), -item[0][1]))
    ]
    return torch.optim.AdamW(param_groups, lr=train.lr, betas=train.adam_betas, eps=train.adam_eps)


@dataclass
class ParameterRow:
    """One tensor of the parameter table."""

    group: str
    name: str
    shape: tuple[int, ...]
    trainable: bool
    count: int
    lr: float | None  # None when frozen


def parameter_rows(model: PreTrainedModel, optimizer: torch.optim.Optimizer) -> list[ParameterRow]:
    """Every parameter with its layer group, shape, trainable flag, count and learning rate."""
    lr_of = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    groups_of = layer_group_of_parameters(model)
    return [
        ParameterRow(groups_of[name], name, tuple(p.shape), p.requires_grad, p.numel(), lr_of.get(id(p)))
        for name, p in model.named_parameters()
    ]


def optimizer_state_numel(optimizer: torch.optim.Optimizer) -> int:
    """Scalars held in optimizer state (AdamW: two moments per trainable scalar, once stepped)."""
    return sum(
        value.numel() for state in optimizer.state.values() for value in state.values()
        if torch.is_tensor(value) and value.ndim > 0
    )


def format_group_table(rows: list[ParameterRow]) -> str:
    """The per-group summary printed at the start of a run: tensors, parameters, status, learning rate."""
    lines = [f"{'group':<18}{'tensors':>8}{'parameters':>14}  {'status':<10}{'lr':>10}"]
    for group in LAYER_GROUPS:
        members = [row for row in rows if row.group == group]
        if not members:
            continue
        trainable = [row for row in members if row.trainable]
        status = "trainable" if len(trainable) == len(members) else "frozen" if not trainable else "mixed"
        rates = sorted({row.lr for row in trainable})
        lr_text = ",".join(f"{rate:.2g}" for rate in rates) if rates else "-"
        lines.append(f"{group:<18}{len(members):>8}{sum(r.count for r in members):>14,}  {status:<10}{lr_text:>10}")
    total = sum(row.count for row in rows)
    trainable_total = sum(row.count for row in rows if row.trainable)
    lines.append(f"{'total':<18}{len(rows):>8}{total:>14,}  trainable {trainable_total:,}, frozen {total - trainable_total:,}")
    return "\n".join(lines)


def format_parameter_tsv(rows: list[ParameterRow]) -> str:
    """Every parameter tensor as tab-separated values (the run folder's `parameters.tsv`)."""
    lines = ["group\tname\tshape\tstatus\tcount\tlr"]
    for row in rows:
        shape = "x".join(map(str, row.shape))
        status = "trainable" if row.trainable else "frozen"
        lines.append(f"{row.group}\t{row.name}\t{shape}\t{status}\t{row.count}\t{'' if row.lr is None else row.lr}")
    return "\n".join(lines) + "\n"
