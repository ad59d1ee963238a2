"""Layer policies (freeze / finetune), optimizer parameter groups, and the parameter table of a run.

Every parameter belongs to exactly one layer group: `token_embeddings`, `positions`, `encoder` (the rest of
the pretrained body) or `head` (the task head, outside `model.base_model`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from transformers import PreTrainedModel

from pipeline.errors import PipelineError
from pipeline.models import input_layers
from pipeline.recipe import LayersConfig, TrainConfig

log = logging.getLogger(__name__)

LAYER_GROUPS = ("token_embeddings", "positions", "encoder", "head")


def layer_group_of_parameters(model: PreTrainedModel) -> dict[str, str]:
    """Map every parameter name of `model` to its layer group."""
    layers = input_layers(model)
    special = {id(layers.token_embeddings.weight): "token_embeddings"}
    if layers.positions is not None:
        special[id(layers.positions.weight)] = "positions"
    body = {id(parameter) for parameter in model.base_model.parameters()}
    return {
        name: special.get(id(parameter), "encoder" if id(parameter) in body else "head")
        for name, parameter in model.named_parameters()
    }


def freeze(module: torch.nn.Module) -> None:
    """No gradients for this module: it stays bit-identical and gets no optimizer state."""
    for parameter in module.parameters():
        parameter.requires_grad_(False)


def unfreeze(module: torch.nn.Module) -> None:
    """Train this module's parameters."""
    for parameter in module.parameters():
        parameter.requires_grad_(True)


def apply_layer_policies(model: PreTrainedModel, cfg: LayersConfig) -> None:
    """Flip `requires_grad` of the input layers as the recipe's `layers` section says."""
    layers = input_layers(model)
    for group, policy in (("token_embeddings", cfg.token_embeddings), ("positions", cfg.positions)):
        module = getattr(layers, group)
        if module is None:
            if policy.policy != "finetune" or policy.lr_multiplier != 1.0:
                raise PipelineError(
                    f"{type(model).__name__} has no learned absolute position table (it uses rotary or "
                    "relative positions), so this policy cannot apply",
                    field=f"layers.{group}",
                )
            log.warning("%s has no learned absolute position table; layers.%s does nothing", type(model).__name__, group)
            continue
        freeze(module) if policy.policy == "freeze" else unfreeze(module)


def _lr_multiplier(group: str, layers: LayersConfig) -> float:
    policy = getattr(layers, group, None)
    return policy.lr_multiplier if policy is not None else 1.0


def build_optimizer(model: PreTrainedModel, layers: LayersConfig, train: TrainConfig) -> torch.optim.AdamW:
    """AdamW over the trainable parameters only, one param group per (layer group, decay or not).

    Frozen parameters are left out entirely, so the optimizer holds no state for them. One-dimensional
    tensors (biases, norm scales) get no weight decay.
    """
    groups_of = layer_group_of_parameters(model)
    param_groups = []
    for group in LAYER_GROUPS:
        for decay in (True, False):
            params = [
                parameter
                for name, parameter in model.named_parameters()
                if groups_of[name] == group and parameter.requires_grad and (parameter.ndim >= 2) == decay
            ]
            if params:
                param_groups.append(
                    {
                        "params": params,
                        "lr": train.lr * _lr_multiplier(group, layers),
                        "weight_decay": train.weight_decay if decay else 0.0,
                        "layer_group": group,
                    }
                )
    if not param_groups:
        raise PipelineError("every parameter is frozen: nothing to train", field="layers")
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
