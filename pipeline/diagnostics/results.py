"""What `pipeline diagnose` found, typed: `Diagnosis` is what `diagnose` returns and `diagnostics.md` is rendered
from (`pipeline.diagnostics.render`); `to_json` makes `diagnostics.json`'s mapping, at the file boundary only."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Meaning:
    """Whether a token table still encodes meaning: how many whole words are one token, word similarity and analogy
    scores over them (None without a file), and each asked word's nearest single-token words."""

    single_token_words: int
    similarity: dict[str, Any] | None
    analogies: dict[str, Any] | None
    neighbours: dict[str, list[str] | None]


@dataclass
class Diagnosis:
    """A run's input layers against its start.

    run, model: the run folder and the model diagnosed; start: what the run started from (None: `no_start` says
    why); split: the split scored by length; drift: the token table's drift by training frequency (None: `no_drift`
    says why, or no start); added_rows: rows past the start's vocabulary; meaning: `start` and `end` states;
    rotary: what rotates at the start and the end; positions: the position tables' rows; by_length: the split's
    score by input length (None for a checkpoint, whose predictions the run does not hold)."""

    run: str
    model: str
    start: str | None
    no_start: str | None
    split: str
    similarity_file: str | None
    analogy_file: str | None
    meaning: dict[str, Meaning | None]
    no_drift: str | None = None
    drift: list[dict[str, Any]] | None = None
    added_rows: dict[str, Any] | None = None
    rotary: dict[str, dict[str, Any] | None] | None = None
    positions: dict[str, int | None] | None = None
    by_length: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """diagnostics.json: the parts that apply, in the order the file has always had them."""
        result: dict[str, Any] = {
            "run": self.run, "model": self.model, "start": self.start, "no_start": self.no_start, "split": self.split,
            "similarity_file": self.similarity_file, "analogy_file": self.analogy_file,
        }  # fmt: skip
        if self.no_drift is not None:
            result["no_drift"] = self.no_drift
        if self.drift is not None:
            result |= {"drift": self.drift, "added_rows": self.added_rows}
        result["meaning"] = {state: meaning and asdict(meaning) for state, meaning in self.meaning.items()}
        if self.rotary is not None:
            result["rotary"] = self.rotary
        if self.positions is not None:
            result["positions"] = self.positions
        result["by_length"] = self.by_length
        return result
