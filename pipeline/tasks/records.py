"""Prediction records: one typed record per evaluated example (or block), written to `predictions-SPLIT.jsonl` and
read back by the same class, so sweeps, diagnostics and the confusion matrix never guess at field names.

A line of the file holds what a reader needs of the example (its text or words) and then the record's fields;
`from_json` takes the record's own fields and leaves the rest.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self


@dataclass
class PredictionRecord:
    """Base of every task's record: `index`, the example's position in its split."""

    index: int

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, line: Mapping[str, Any]) -> Self:
        names = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in line.items() if key in names})

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
