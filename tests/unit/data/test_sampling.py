"""Length-grouped training batches and length-sorted evaluation batches."""

from __future__ import annotations

import random

from pipeline.data.sampling import LengthGroupedSampler, LengthSortedSampler
from pipeline.tasks.sequence_classification.records import ClassificationRecord
from pipeline.training.scoring import in_data_order


def padded_tokens(batches: list[list[int]], lengths: list[int]) -> int:
    return sum(len(batch) * max(lengths[i] for i in batch) for batch in batches)


def test_grouped_batches_cover_every_example_once_with_far_less_padding():
    rng = random.Random(0)
    lengths = [rng.randint(3, 200) for _ in range(1003)]
    sampler = LengthGroupedSampler(lengths, batch_size=8, seed=1, mega_batches=10)
    batches = sampler.batches()
    assert sorted(i for batch in batches for i in batch) == list(range(1003))
    assert all(len(batch) == 8 for batch in batches[:-1]) and len(batches[-1]) == 1003 % 8  # only the last is short
    assert max(lengths[i] for i in batches[0]) == max(lengths)  # the longest batch first
    shuffled = list(range(1003))
    random.Random(1).shuffle(shuffled)
    plain = [shuffled[i : i + 8] for i in range(0, 1003, 8)]
    real = sum(lengths)
    assert (
        padded_tokens(batches, lengths) < 1.1 * real < 1.5 * real < padded_tokens(plain, lengths)
    )  # padding: under 10% vs over 50%


def test_the_order_is_a_function_of_seed_and_epoch():
    lengths = [random.Random(i).randint(1, 50) for i in range(300)]
    first, again, other_seed = (LengthGroupedSampler(lengths, 4, seed) for seed in (5, 5, 6))
    assert list(first) == list(again) and list(first) != list(other_seed)
    before = list(first)
    first.set_epoch(1)
    assert list(first) != before and sorted(first) == sorted(before)


def test_evaluation_runs_longest_first_and_records_go_back_in_data_order():
    lengths = [4, 9, 1, 9, 6]
    sampler = LengthSortedSampler(lengths)
    assert list(sampler) == [1, 3, 4, 0, 2]
    records = [
        ClassificationRecord(position, label=str(position), prediction="x", probabilities=[]) for position in range(5)
    ]
    back = in_data_order(records, sampler.order)
    assert [record.label for record in back] == ["3", "0", "4", "1", "2"] and [record.index for record in back] == [
        0,
        1,
        2,
        3,
        4,
    ]
