"""Prediction records: one typed record per evaluated example (or block), written to `predictions-SPLIT.jsonl` and
read back by the same class, so sweeps, diagnostics and the confusion matrix never guess at field names.

A line of the file holds what a reader needs of the example (its text or words) and then the record's fields;
`from_json` takes the record's own fields and leaves the rest.

Every record names the example it scores (`example`: a digest of the example's text and which occurrence of that
text in the split it is), so a comparison of runs pairs the same example whatever the order of the lines, and runs
evaluated on different files meet on the examples they share (`PredictionRecord.units`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self


def example_ids(rows: Sequence[Any]) -> list[str]:
    """Each row's identity: `DIGEST#K`, a digest of the row's content (its text, or words) and K, how many earlier
    rows have the same content. Every run on the same data gives an example the same identity, however its records
    are ordered, and a text found in another data file (the first time in both) gets the same one there."""
    seen: dict[str, int] = {}
    ids = []
    for row in rows:
        digest = hashlib.sha256(json.dumps(row, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]
        ids.append(f"{digest}#{seen.get(digest, 0)}")
        seen[digest] = seen.get(digest, 0) + 1
    return ids


@dataclass
class PredictionRecord:
    """Base of every task's record: `index`, the example's position in its split; `example`, its identity (see
    `example_ids`; None in run folders written before records carried one)."""

    index: int
    example: str | None = field(default=None, kw_only=True)

    def source_row(self) -> int | None:
        """The row of the split the record scores (a block of text: the row its text comes from; None for a block
        packed from several texts)."""
        return self.index

    @classmethod
    def units(cls, records: Sequence[Self]) -> dict[str, Self]:
        """The records a comparison pairs across runs, by identity: one per example (by position, `@INDEX`, where
        records carry no identity)."""
        return {record.example or f"@{record.index}": record for record in records}

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, line: Mapping[str, Any]) -> Self:
        names = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in line.items() if key in names})

    def cut_by_tokenizer(self) -> bool:
        """Whether what the record scores was cut by the tokenizer (a block of packed text): such records of two
        tokenizers hold different text and cannot be paired."""
        return False

    def setting(self) -> str | None:
        """What this record's score depends on beyond its example and the model (e.g. how many documents a retrieval
        query searched): records compared across runs must agree on it. None: nothing."""
        return None

    def example_score(self) -> tuple[str, float, int] | None:
        """(score name, sum over the example's scored units, how many units), for scores by input length; None for a
        record that is no example (a block of packed text)."""
        return None

    def confusion_pairs(self) -> list[tuple[str, str]]:
        """(gold, predicted) label of every scored unit, for the confusion matrix; none where labels are no classes."""
        return []


def read_records(path: Path, record: type[PredictionRecord]) -> list[PredictionRecord]:
    """The records of a predictions file (empty when there is none)."""
    if not path.is_file():
        return []
    return [
        record.from_json(json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
