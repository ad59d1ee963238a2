"""The parameter table of a run: every tensor with its layer group, status and learning rate, as printed at the
start of a run and written to `parameters.tsv`."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import PreTrainedModel

from pipeline.families.base import Family
from pipeline.surgery.policies import LAYER_GROUPS, layer_group_of_parameters


@dataclass
class ParameterRow:
    """One tensor of the parameter table."""

    group: str
    name: str
    shape: tuple[int, ...]
    trainable: bool
    count: int
    lr: float | None  # None when frozen


def parameter_rows(family: Family, model: PreTrainedModel, optimizer: torch.optim.Optimizer) -> list[ParameterRow]:
    """Every parameter with its layer group, shape, trainable flag, count and learning rate."""
    lr_of = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    groups_of = layer_group_of_parameters(family, model)
    return [
        ParameterRow(groups_of[name], name, tuple(p.shape), p.requires_grad, p.numel(), lr_of.get(id(p)))
        for name, p in model.named_parameters()
    ]


def optimizer_state_numel(optimizer: torch.optim.Optimizer) -> int:
    """Scalars held in optimizer state (AdamW: two moments per trainable scalar, once stepped)."""
    return sum(
        value.numel()
        for state in optimizer.state.values()
        for value in state.values()
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
    lines.append(
        f"{'total':<18}{len(rows):>8}{total:>14,}  trainable {trainable_total:,}, frozen {total - trainable_total:,}"
    )
    return "\n".join(lines)


def format_parameter_tsv(rows: list[ParameterRow]) -> str:
    """Every parameter tensor as tab-separated values (the run folder's `parameters.tsv`)."""
    lines = ["group\tname\tshape\tstatus\tcount\tlr"]
    for row in rows:
        shape = "x".join(map(str, row.shape))
        status = "trainable" if row.trainable else "frozen"
        lines.append(f"{row.group}\t{row.name}\t{shape}\t{status}\t{row.count}\t{'' if row.lr is None else row.lr}")
    return "\n".join(lines) + "\n"
