"""What surgery did, typed: `SurgeryReport` is built by the front door (`pipeline.surgery.operate`) and read as
attributes; `to_json` turns it into the mapping `input_layers.json` holds, at the file boundary only."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pipeline.surgery.vectors import Alignment, coverage_report


@dataclass
class LayerSources:
    """Each input layer in words: where its values came from (`pretrained`, `random normal (std 0.02)`...)."""

    token_embeddings: str
    positions: str
    output_embeddings: str = "none (the task head reads the encoder's states)"


@dataclass(frozen=True)
class TrainedRows:
    """`rows`: the token-table rows that train beside the frozen table (the first 100 tokens named)."""

    trained: int
    of: int
    tokens: list[str]


@dataclass(frozen=True)
class AddedRows:
    """`model.add_tokens`: a row per added token (token, id, how its row began), the tokens not added (already one
    token) and the special ones."""

    added: list[dict[str, Any]]
    skipped: list[str]
    special: list[str]


@dataclass
class SurgeryReport:
    """What surgery did to each input layer.

    alignment: static vectors aligned to the vocabulary (`init: vectors`); position_rows: the new number of
    positions when the position table was resized; transfer: old and new vocabulary sizes and rows by route (`init:
    transfer`); rotary: what rotates (rotary decoders); tie: what became of a tied LM head; rows, lora, added_tokens:
    what trains inside a layer; trained_vectors: the static vectors trained on the corpus."""

    sources: LayerSources
    alignment: Alignment | None = None
    position_rows: int | None = None
    transfer: dict[str, Any] | None = None
    rotary: dict[str, Any] | None = None
    tie: str | None = None
    rows: TrainedRows | None = None
    lora: dict[str, Any] | None = None
    trained_vectors: dict[str, Any] | None = None
    added_tokens: AddedRows | None = None

    def coverage(self, train_ids: list[list[int]]) -> dict[str, Any] | None:
        """How the static vectors covered the vocabulary and the training tokens (None without vectors)."""
        return None if self.alignment is None else coverage_report(self.alignment, train_ids)

    def scope_json(self) -> dict[str, Any]:
        """What trains inside a layer, as `input_layers.json` lists it (only what applies)."""
        parts = {
            "tie": self.tie,
            "rows": self.rows and asdict(self.rows),
            "lora": self.lora,
            "trained_vectors": self.trained_vectors,
            "added_tokens": self.added_tokens and asdict(self.added_tokens),
        }
        return {key: value for key, value in parts.items() if value is not None}
