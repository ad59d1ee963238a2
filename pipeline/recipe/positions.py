"""The recipe's `layers.positions` policy: its variants (frozen, fine-tuned, or replaced by a sinusoidal, learned,
extended or empty table, or for rotary decoders a new rotation), and the rotary scalings.

Each variant says which kinds of positions it applies to (`applies_to`: an absolute `table`, a `rotary` rotation);
a family's spec says which kind it has (`FamilySpec.position_kind`).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from pipeline.recipe.base import MAX_SIZE
from pipeline.recipe.variants import Frozen, LayerPolicy, ThenTrained, Variant, variant_union


class PositionPolicy(LayerPolicy):
    """What every position variant says of itself: the kinds of positions it applies to."""

    applies_to: ClassVar[frozenset[str]] = frozenset({"table", "rotary"})

    def fields_not_for(self, kind: str) -> list[str]:
        """Fields set to something other than their default that mean nothing for positions of this kind."""
        return []


class FrozenPositions(Frozen, PositionPolicy):
    """`freeze`: the pretrained position table as it is (a rotation has no parameters: nothing changes)."""

    policy: Literal["freeze"] = Field("freeze", description="`freeze` the position table.")


class FinetunedPositions(PositionPolicy):
    """`finetune`: the pretrained position table trained (a rotation has no parameters: nothing changes)."""

    policy: Literal["finetune"] = Field("finetune", description="`finetune` the position table.")


class ReplacedPositions(PositionPolicy):
    """`replace`: new positions; `init` says which."""

    policy: Literal["replace"] = Field("replace", description="`replace` the positions; `init` says with what.")


class NewTable(ReplacedPositions):
    """A new absolute position table: its rows and how its vectors meet the token vectors."""

    applies_to: ClassVar[frozenset[str]] = frozenset({"table"})

    max_positions: int | None = Field(
        None, gt=0, le=MAX_SIZE, description="Rows of the new table (default: as before)."
    )
    combine: Literal["add", "concat"] = Field(
        "add",
        description="How position vectors meet token vectors: `add`, or `concat` then project to the hidden size.",
    )


class SinusoidalPositions(NewTable):
    """`replace` × `sinusoidal`: a fixed sin/cos buffer (no parameters)."""

    init: Literal["sinusoidal"] = Field(description="A fixed sinusoidal buffer.")
    scale: float | None = Field(
        None,
        gt=0,
        description="Multiply the table by this; null: match the replaced table's std (the raw sin/cos values, "
        "scale 1, drown a pretrained encoder's token vectors).",
    )


class LearnedPositions(ThenTrained, NewTable):
    """`replace` × `learned`: a fresh normal table."""

    init: Literal["learned"] = Field(description="A fresh learned table.")
    std: float | None = Field(None, gt=0, description="The normal std (default: the old table's std).")


class ExtendedPositions(ThenTrained, NewTable):
    """`replace` × `extend`: the pretrained table grown to `max_positions` rows."""

    init: Literal["extend"] = Field(description="Extend the pretrained table to `max_positions` rows.")
    extend_mode: Literal["copy", "interpolate"] = Field(
        "copy", description="Keep the old rows and repeat them (`copy`), or resample the old table (`interpolate`)."
    )


class NoPositions(NewTable):
    """`replace` × `none`: no position signal: a table of zeros, or for rotary decoders no rotation (NoPE)."""

    init: Literal["none"] = Field(description="No position signal.")
    layers: list[int] | None = Field(
        None, min_length=1, description="Rotary decoders: drop the rotation in these layers only (0 = the lowest)."
    )

    applies_to: ClassVar[frozenset[str]] = frozenset({"table", "rotary"})  # zeros, or no rotation

    @field_validator("layers")
    @classmethod
    def _distinct_layers(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and (min(value) < 0 or len(set(value)) != len(value)):
            raise ValueError(f"layers must be distinct layer indices from 0, got {value}")
        return value

    def fields_not_for(self, kind: str) -> list[str]:
        """`layers` is a rotation's; `max_positions` and `combine` are a table's."""
        if kind != "rotary":
            return ["layers"] * (self.layers is not None)
        fields = type(self).model_fields
        return [name for name in ("max_positions", "combine") if getattr(self, name) != fields[name].default]


class Scaling(Variant):
    """How a rotary embedding's frequencies are scaled for longer contexts (the model config's rope parameters)."""

    factor: float = Field(gt=1, le=1024, description="How many times longer the context is meant to be.")

    def config_defaults(self, max_positions: int) -> dict[str, float | int]:
        """The rope parameters transformers needs of this scaling that the recipe may leave out (max_positions: the
        length the model was pretrained on)."""
        return {}

    def factors_per_frequency(self) -> dict[str, list[float]]:
        """Lists that need one factor per rotated frequency, by field name."""
        return {}


class LinearScaling(Scaling):
    """`linear`: position interpolation."""

    type: Literal["linear"] = Field(description="Position interpolation.")


class LongerScaling(Scaling):
    """A scaling that knows the length the model was pretrained on."""

    original_max_position_embeddings: int | None = Field(
        None, gt=0, le=MAX_SIZE, description="The length pretrained on (default: the config's)."
    )


class DynamicScaling(LongerScaling):
    """`dynamic`: NTK-aware, grows with the input."""

    type: Literal["dynamic"] = Field(description="NTK-aware scaling that grows with the input.")


class YarnScaling(LongerScaling):
    """`yarn`: some dimensions unscaled, some fully scaled, a ramp between, attention logits scaled."""

    type: Literal["yarn"] = Field(description="YaRN.")
    beta_fast: float | None = Field(None, gt=0, description="The boundary of the dimensions left unscaled.")
    beta_slow: float | None = Field(None, gt=0, description="The boundary of the dimensions fully scaled.")
    attention_factor: float | None = Field(None, gt=0, description="The scaling of attention logits.")

    def config_defaults(self, max_positions: int) -> dict[str, float | int]:
        return {"original_max_position_embeddings": max_positions}


class Llama3Scaling(LongerScaling):
    """`llama3`: Llama 3.1's frequency-dependent scaling."""

    type: Literal["llama3"] = Field(description="Llama 3.1's scaling.")
    low_freq_factor: float | None = Field(None, gt=0, description="Where low frequencies start.")
    high_freq_factor: float | None = Field(None, gt=0, description="Where high frequencies start.")

    def config_defaults(self, max_positions: int) -> dict[str, float | int]:
        return {"original_max_position_embeddings": max_positions, "low_freq_factor": 1.0, "high_freq_factor": 4.0}


class LongRopeScaling(LongerScaling):
    """`longrope`: a factor per rotated frequency, one list for short inputs and one for long."""

    type: Literal["longrope"] = Field(description="LongRoPE.")
    short_factor: list[float] = Field(min_length=1, description="Per-frequency factors, short inputs.")
    long_factor: list[float] = Field(min_length=1, description="Per-frequency factors, long inputs.")
    attention_factor: float | None = Field(None, gt=0, description="The scaling of attention logits.")

    def config_defaults(self, max_positions: int) -> dict[str, float | int]:
        return {"original_max_position_embeddings": max_positions}

    def factors_per_frequency(self) -> dict[str, list[float]]:
        return {"short_factor": self.short_factor, "long_factor": self.long_factor}


RopeScaling = variant_union(
    "layers.positions.scaling", LinearScaling, DynamicScaling, YarnScaling, Llama3Scaling, LongRopeScaling
)


class RopePositions(ReplacedPositions):
    """`replace` × `rope` (rotary decoders): a new base, a scaling, or a partial rotation."""

    applies_to: ClassVar[frozenset[str]] = frozenset({"rotary"})

    init: Literal["rope"] = Field(description="A new rotation: `theta`, `scaling`, `partial` (at least one).")
    theta: float | None = Field(None, gt=1, description="The new rotary base (`rope_theta`; above 1).")
    scaling: RopeScaling | None = Field(None, description="Scale the rotary frequencies for longer inputs.")
    partial: float | None = Field(None, gt=0, lt=1, description="Rotate only this share of each head's dimensions.")

    @model_validator(mode="after")
    def _something_new(self) -> RopePositions:
        if self.theta is None and self.scaling is None and self.partial is None:
            raise ValueError("init: rope needs theta, scaling or partial")
        return self


Positions = variant_union(
    "layers.positions",
    FinetunedPositions, FrozenPositions, SinusoidalPositions, LearnedPositions, ExtendedPositions, NoPositions,
    RopePositions,
    defaults={"policy": "finetune"},
)  # fmt: skip
