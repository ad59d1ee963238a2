"""`input_layers.json`, typed: what each input layer is after surgery, the data counts, the vocabulary a new
tokenizer brought, and how static vectors covered the vocabulary. `to_json` makes the file's mapping."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pipeline.surgery.report import SurgeryReport


@dataclass(frozen=True)
class InputLayerReport:
    """data: counts per split (examples, truncated texts, the task's own counts); surgery: what surgery did (None
    when a saved model is re-scored: its layers are plain tables); vocabulary: the old and new tokenizers, where the
    recipe brings one; coverage: static vectors against the vocabulary and the training tokens."""

    data: dict[str, dict[str, Any]]
    surgery: SurgeryReport | None = None
    vocabulary: dict[str, Any] | None = None
    coverage: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """The mapping `input_layers.json` holds (keys in the order the file has always had them)."""
        surgery = self.surgery
        report: dict[str, Any] = {"sources": asdict(surgery.sources) if surgery else {}, "data": self.data}
        if self.vocabulary is not None:
            report["vocabulary"] = self.vocabulary
        if surgery is not None and surgery.rotary is not None:
            report["rotary"] = surgery.rotary
        report |= surgery.scope_json() if surgery else {}
        if self.coverage is not None:
            report["coverage"] = self.coverage
        return report
