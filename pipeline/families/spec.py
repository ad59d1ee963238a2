"""What the recipe checks need to know of a model family, without importing it (no torch, no model code)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FamilySpec:
    """A family's name and the facts a recipe is checked against; the one place each fact of a family is written
    (its `Family` reads them from here).

    objective: the language-modeling objective it pretrains with (`causal`, `bidirectional`), None if none;
    no_position_table: why the family has no absolute position table (None when it has one);
    needs_max_length: the model states no length limit, so the recipe must set `model.max_length`;
    rotary: positions rotate queries and keys (position policies then mean a base, a scaling, partial or no rotation);
    lora_targets: the linear layers `layers.encoder: lora` adapts by default (none: the recipe must name them).
    """

    name: str
    description: str
    objective: str | None = None
    no_position_table: str | None = None
    needs_max_length: bool = False
    rotary: bool = False
    lora_targets: tuple[str, ...] = ()

    @property
    def position_kind(self) -> str:
        """What its positions are: `rotary`, an absolute `table`, or `none` (the variants' `applies_to` names)."""
        return "rotary" if self.rotary else "none" if self.no_position_table else "table"
