"""The one evaluation loop every task runs: the model in eval mode over a prepared loader, outputs gathered."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader

from pipeline.data.collate import without_labels

Select = Callable[[dict[str, torch.Tensor], Any], tuple[torch.Tensor, ...]]


def gathered_outputs(
    accelerator: Accelerator, model: torch.nn.Module, loader: DataLoader, select: Select
) -> Iterator[tuple[torch.Tensor, ...]]:
    """Per batch of a prepared loader, the tensors `select(batch, model_output)` picks, gathered from every process.

    No labels go to the model (scores come from its outputs, so it computes no loss). `gather_for_metrics` drops
    the duplicates that even sharding adds at the end, so every example is seen exactly once, in order.
    """
    model.eval()
    for batch in loader:
        with torch.inference_mode(), accelerator.autocast():
            output = model(**without_labels(batch))
        yield accelerator.gather_for_metrics(select(batch, output))
