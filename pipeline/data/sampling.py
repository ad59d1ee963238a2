"""Batches of examples of similar length, so that padding (work spent on nothing) stays small.

Training (`LengthGroupedSampler`): each epoch a seeded shuffle, cut into mega-batches of `mega_batches` batches;
each mega-batch sorted by length and cut into batches; the batches shuffled, the one holding the longest example
first (an out-of-memory error shows at once, not hours in) and a short last batch last. The order is a function of
(seed, epoch) alone, so a resumed run replays it exactly, and several processes see it alike.

Evaluation (`LengthSortedSampler`): longest first; the predictions are put back in the data's order afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow.compute as pc
import torch
from datasets import Dataset
from torch.utils.data import Sampler

MEGA_BATCHES = 50  # batches per mega-batch (the Hugging Face Trainer's choice): shuffled enough, sorted enough


def example_lengths(split: Dataset, column: str = "input_ids") -> list[int]:
    """Tokens per example of an encoded split."""
    return pc.list_value_length(split.with_format("arrow")[column]).to_pylist()


class LengthGroupedSampler(Sampler[int]):
    """Indices of one epoch, in batches of similar lengths (see the module docstring)."""

    def __init__(self, lengths: list[int], batch_size: int, seed: int, mega_batches: int = MEGA_BATCHES):
        self.lengths, self.batch_size, self.seed, self.mega_batches = lengths, batch_size, seed, mega_batches
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def batches(self) -> list[list[int]]:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(len(self.lengths), generator=generator).tolist()
        mega = self.batch_size * self.mega_batches
        batches = []
        for start in range(0, len(order), mega):
            chunk = sorted(order[start : start + mega], key=lambda i: -self.lengths[i])
            batches += [chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size)]
        batches = [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]
        # Batches are cut again from the flat order: only the last may be short.
        short = [b for b in batches if len(b) < self.batch_size]
        batches = [b for b in batches if len(b) == self.batch_size] + short
        if batches and len(batches[0]) == self.batch_size:
            longest = max(range(len(batches) - len(short)), key=lambda b: max(self.lengths[i] for i in batches[b]))
            batches[0], batches[longest] = batches[longest], batches[0]
        return batches

    def __iter__(self) -> Iterator[int]:
        return iter([index for batch in self.batches() for index in batch])


class LengthSortedSampler(Sampler[int]):
    """Indices longest first (ties in data order): evaluation batches with the least padding."""

    def __init__(self, lengths: list[int]):
        self.order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))

    def __len__(self) -> int:
        return len(self.order)

    def __iter__(self) -> Iterator[int]:
        return iter(self.order)
