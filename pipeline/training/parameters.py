"""The parameter table of a run: every tensor with its layer group, status and learning rate, as printed at the
start of a run and written to `parameters.tsv`."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import PreTrainedModel

from pipeline.families.base import Family
from pipeline.surgery.policies import LAYER_GROUPS, layer_group_of_parameters
from pipeline.surgery.replace import output_tied_to_input
from pipeline.surgery.rows import TrainableRowsHead


@dataclass
class ParameterRow:
    """One tensor of the parameter table."""

    group: str
    name: str
    shape: tuple[int, ...]
    trainable: bool
    count: int
    lr: float | None  # None when frozen
    tied_to: str | None = None  # a tied LM head: the table it shares its tensor with (counted there, not here)


def parameter_rows(family: Family, model: PreTrainedModel, optimizer: torch.optim.Optimizer) -> list[ParameterRow]:
    """Every parameter with its layer group, shape, trainable flag, count and learning rate."""
    lr_of = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    groups_of = layer_group_of_parameters(family, model)
    rows = [
        ParameterRow(groups_of[name], name, tuple(p.shape), p.requires_grad, p.numel(), lr_of.get(id(p)))
        for name, p in model.named_parameters()
    ]
    return rows + tied_head_rows(model)


def tied_head_rows(model: PreTrainedModel) -> list[ParameterRow]:
    """A row for an LM head tied to the token table: the same tensor (named once above), so it counts nothing and
    trains exactly as the table does (all of it, or the same rows)."""
    output = model.get_output_embeddings()
    if output is None or not output_tied_to_input(model):
        return []
    head = next(name for name, module in model.named_modules() if module is output)
    table = next(name for name, module in model.named_modules() if module is model.get_input_embeddings())
    if isinstance(output, TrainableRowsHead):
        source = model.get_input_embeddings()
        shape, trains = tuple(source.table.weight.shape), True
    else:
        shape, trains = tuple(output.weight.shape), output.weight.requires_grad
    return [ParameterRow("head", f"{head}.weight", shape, trains, 0, None, tied_to=f"{table}.weight")]


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
        own = [row for row in members if row.tied_to is None]
        trainable = [row for row in own if row.trainable]
        status = "trainable" if len(trainable) == len(own) else "frozen" if not trainable else "mixed"
        status = status if own else "tied"  # only an LM head that is the token table's tensor
        rates = sorted({row.lr for row in trainable})
        lr_text = ",".join(f"{rate:.2g}" for rate in rates) if rates else "-"
        lines.append(f"{group:<18}{len(members):>8}{sum(r.count for r in members):>14,}  {status:<10}{lr_text:>10}")
    total = sum(row.count for row in rows)
    trainable_total = sum(row.count for row in rows if row.trainable)
    tensors = sum(row.tied_to is None for row in rows)
    lines.append(
        f"{'total':<18}{tensors:>8}{total:>14,}  trainable {trainable_total:,}, frozen {total - trainable_total:,}"
    )
    lines += [f"{row.name} is {row.tied_to} (tied: one tensor)" for row in rows if row.tied_to is not None]
    return "\n".join(lines)


def format_parameter_tsv(rows: list[ParameterRow]) -> str:
    """Every parameter tensor as tab-separated values (the run folder's `parameters.tsv`)."""
    lines = ["group\tname\tshape\tstatus\tcount\tlr"]
    for row in rows:
        shape = "x".join(map(str, row.shape))
        status = "trainable" if row.trainable else "frozen"
        if row.tied_to is not None:
            status = f"tied to {row.tied_to}"
        lines.append(f"{row.group}\t{row.name}\t{shape}\t{status}\t{row.count}\t{'' if row.lr is None else row.lr}")
    return "\n".join(lines) + "\n"
