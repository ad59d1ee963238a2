"""Policy variants: one pydantic model per variant of a layer's policy, with only its own fields, joined in a union
picked by the variant's tags (`policy`, then `init`, then `transfer`...), as the YAML has always spelt them.

A variant's tags are its one-value `Literal` fields named in `TAG_KEYS` (`policy: Literal["replace"]` and
`init: Literal["random"]` make `tags == {"policy": "replace", "init": "random"}`), derived once when the class is made;
`variant_union` joins the variants of one layer, and that union is the one list of them. Before pydantic validates
the chosen variant, `VariantSet.pick` expands the short form (`freeze` is `{policy: freeze}`), finds the variant the
tags name (one line naming what is missing or unknown otherwise), and refuses a field that belongs to another variant
with one line naming the variant that has it. Run folders saved before policies were variants are migrated when read
(`pipeline.recipe.migrate`), not here.

Below the machinery, what the variants of every layer share: `LayerPolicy` (the learning-rate multiplier), and the
mixins `Frozen` (a layer kept as it is, maybe unfrozen later) and `ThenTrained` (a new layer, then trained or frozen).
"""

from __future__ import annotations

import typing
from typing import Annotated, Any, ClassVar, Literal, NamedTuple, Union

from pydantic import BeforeValidator, Discriminator, Field, Tag, model_serializer, model_validator
from pydantic.fields import FieldInfo

from pipeline.errors import did_you_mean
from pipeline.recipe.base import Strict

SAVED = "saved"  # validation context key: the recipe is a run folder's resolved recipe (see `pipeline.recipe.migrate`)
TAG_KEYS = ("policy", "init", "transfer", "type")  # the fields that pick a variant, in the order they are matched


class Need(NamedTuple):
    """An optional library a variant imports: its module, the feature in words, and the field (under the layer's
    own path) that asks for it."""

    module: str
    feature: str
    field: str


class Variant(Strict):
    """Base of a policy variant: its tags, which the YAML spells as fields (`policy: replace`, `init: random`)."""

    tags: ClassVar[dict[str, str]] = {}

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls.tags = tags_of(cls)

    @model_serializer(mode="wrap")
    def _tags_first(self, handler: Any) -> dict[str, Any]:
        # Saved recipes and `pipeline schema` read best with the tags first (`policy`, `init`, then the settings).
        data = handler(self)
        return {**{key: data[key] for key in self.tags if key in data}, **data}

    @classmethod
    def in_words(cls) -> str:
        """The variant as the YAML names it: `policy: replace, init: random`."""
        return ", ".join(f"{key}: {value}" for key, value in cls.tags.items())


def tags_of(variant: type[Strict]) -> dict[str, str]:
    """The tags a variant's fields spell: each field of `TAG_KEYS` typed as a `Literal` of one value."""
    tags = {}
    for key in TAG_KEYS:
        field = variant.model_fields.get(key)
        values = typing.get_args(field.annotation) if field is not None else ()
        if field is not None and typing.get_origin(field.annotation) is Literal and len(values) == 1:
            tags[key] = values[0]
    return tags


class VariantSet:
    """The variants of one layer's policy, and how a raw value picks one of them."""

    def __init__(self, where: str, variants: tuple[type[Variant], ...], defaults: dict[str, str]) -> None:
        self.where, self.variants, self.defaults = where, variants, defaults

    def match(self, value: dict[str, Any]) -> type[Variant]:
        """The variant whose every tag `value` has (or defaults to); a ValueError in one line otherwise."""
        candidates = list(self.variants)
        said: list[str] = []
        for key in dict.fromkeys(key for variant in self.variants for key in variant.tags):
            options = list(dict.fromkeys(v.tags[key] for v in candidates if key in v.tags))
            if not options:
                continue
            chosen = value.get(key, self.defaults.get(key))
            context = f" with {', '.join(said)}" if said else ""
            if chosen is None:
                raise ValueError(f"{', '.join(said) or 'this policy'} needs {key}: {either(options)}")
            if chosen not in options:
                hint = did_you_mean(str(chosen), options) or ""
                raise ValueError(f"{key}: {chosen!r} is not one of {either(options)}{context}; {hint}".rstrip("; "))
            candidates = [v for v in candidates if v.tags.get(key) == chosen]
            said.append(f"{key}: {chosen}")
        return candidates[0]

    def pick(self, value: Any) -> Any:
        """A raw policy checked against its variant before pydantic validates it (see the module's docstring)."""
        if isinstance(value, Variant):
            return value
        if isinstance(value, str):
            value = {next(iter(self.variants[0].tags)): value}
        if not isinstance(value, dict):
            raise ValueError(f"expected a policy name or a mapping, got {type(value).__name__}")
        variant = self.match(value)
        for key in value:
            owners = [v for v in self.variants if key in v.model_fields]
            if key not in variant.model_fields and owners:
                raise ValueError(f"{key} applies to {self.owners_in_words(owners)}, not to {variant.in_words()}")
        return value

    def owners_in_words(self, owners: list[type[Variant]]) -> str:
        """The variants that have a field, each said by the shortest run of its tags that only owners share
        (`policy: freeze or policy: replace` rather than every replace variant)."""
        said = []
        for owner in owners:
            tags = list(owner.tags.items())
            for length in range(1, len(tags) + 1):
                prefix = dict(tags[:length])
                sharing = [v for v in self.variants if all(v.tags.get(k) == t for k, t in prefix.items())]
                if all(v in owners for v in sharing):
                    said.append(", ".join(f"{key}: {value}" for key, value in prefix.items()))
                    break
        return " or ".join(dict.fromkeys(said))

    def tag_of(self, value: Any) -> str | None:
        """The union member's tag (the variant's class name) for pydantic's discriminator."""
        if isinstance(value, Variant):
            return type(value).__name__
        if isinstance(value, dict):
            try:
                return self.match(value).__name__
            except ValueError:
                return None
        return None


def variant_tag_keys() -> set[str]:
    """The keys that pick a policy variant anywhere in the schema (`policy`, `init`, `transfer`, `type`)."""
    return set(TAG_KEYS)


def either(options: list[str]) -> str:
    """`a, b or c`."""
    return options[0] if len(options) == 1 else f"{', '.join(options[:-1])} or {options[-1]}"


def variant_union(where: str, *variants: type[Variant], defaults: dict[str, str] | None = None) -> Any:
    """The type of a field holding one of `variants` (the first is the default's, and its first tag the short form's
    key); `where` is the field's dotted path, for messages."""
    chosen = VariantSet(where, variants, defaults or {})
    members = tuple(Annotated[variant, Tag(variant.__name__)] for variant in variants)
    return Annotated[Union[members], Discriminator(chosen.tag_of), BeforeValidator(chosen.pick), chosen]  # noqa: UP007


def variant_set(field: FieldInfo | Any) -> VariantSet | None:
    """The `VariantSet` of a field (pydantic keeps a field's `Annotated` metadata apart) or of a type: a union of
    variants, or such a union or None (`scaling: RopeScaling | None`)."""
    if isinstance(field, FieldInfo):
        found = next((item for item in field.metadata if isinstance(item, VariantSet)), None)
        return found or variant_set(field.annotation)
    found = next((item for item in getattr(field, "__metadata__", ()) if isinstance(item, VariantSet)), None)
    return found or next(filter(None, (variant_set(arg) for arg in typing.get_args(field) if arg is not field)), None)


def union_members(field: FieldInfo | Any) -> tuple[Any, ...]:
    """The members of a field's type: a union's variants, or `typing.get_args` of the type."""
    variants = variant_set(field)
    if variants is not None:
        return variants.variants
    return typing.get_args(field.annotation if isinstance(field, FieldInfo) else field)


# --- what the variants of every layer share -------------------------------------------------------------------------
class Unfreezable(Strict):
    """Gradual unfreezing of a layer that starts frozen."""

    unfreeze_at_step: int | None = Field(
        None, gt=0, description="Gradual unfreezing: the frozen layer becomes trainable after this optimizer step."
    )
    unfreeze_at_epoch: int | None = Field(
        None, gt=0, description="Gradual unfreezing: the frozen layer becomes trainable after this many epochs."
    )

    @model_validator(mode="after")
    def _one_time(self) -> Unfreezable:
        if self.unfreeze_at_step is not None and self.unfreeze_at_epoch is not None:
            raise ValueError("set unfreeze_at_step or unfreeze_at_epoch, not both")
        return self

    def unfreeze_when(self) -> tuple[str, int] | None:
        """("step", N) or ("epoch", N) when the layer is to be unfrozen, None when it stays as it is."""
        if self.unfreeze_at_step is not None:
            return ("step", self.unfreeze_at_step)
        return None if self.unfreeze_at_epoch is None else ("epoch", self.unfreeze_at_epoch)


class Frozen(Unfreezable):
    """A layer kept as it is: no gradient, no optimizer state (until unfrozen)."""

    def is_frozen(self) -> bool:
        return True


class ThenTrained(Unfreezable):
    """A new layer made by `replace`, then trained or frozen."""

    then: Literal["freeze", "finetune"] = Field("finetune", description="Train the new layer, or freeze it.")

    def is_frozen(self) -> bool:
        return self.then == "freeze"

    @model_validator(mode="after")
    def _unfreeze_a_frozen_layer(self) -> ThenTrained:
        if self.then == "finetune" and self.unfreeze_when() is not None:
            raise ValueError("unfreeze_at_step/unfreeze_at_epoch apply to a frozen layer (then: freeze)")
        return self


class LayerPolicy(Variant):
    """Base of a layer's policy variants: the learning rate multiplier every variant takes. The mixins `Frozen` and
    `ThenTrained` come first in a variant's bases, so their `is_frozen` and `unfreeze_when` win."""

    lr_multiplier: float = Field(1.0, gt=0, description="This layer's learning rate is `train.lr` times this.")

    def is_frozen(self) -> bool:
        """Whether the layer's parameters start without gradients."""
        return False

    def needs(self) -> list[Need]:
        """The optional libraries this variant imports (checked at load, before anything is created)."""
        return []

    def unfreeze_when(self) -> tuple[str, int] | None:
        return None
