"""Each layer-policy variant's implementation, registered once beside it (as PEFT registers a method with its config
and its model): `@implements(RandomTable)` on a class of hooks makes it what surgery runs for that variant.

A variant (`pipeline.recipe`) is data: its fields and the facts the recipe checks read (`replaces_table`, `needs`...).
Its implementation is what it does to a model, in the hooks of its layer's base class (`TokenTableSurgery`,
`PositionSurgery`, `BodySurgery`, `HeadSurgery`); a hook it does not override does nothing. The front door
(`pipeline.surgery.operate`) asks the registry for the implementation of each of the recipe's policies and calls
its hooks in order; it never asks what a policy is. Every variant of every layer's union must have one:
`missing_implementations` lists those that do not, and the front door refuses to import while any is missing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from pipeline.recipe.layers import LayersConfig
from pipeline.recipe.variants import Variant, union_members

if TYPE_CHECKING:
    from torch import nn

    from pipeline.surgery.job import SurgeryJob
    from pipeline.surgery.trained_vectors import TrainedVectors

IMPLEMENTATIONS: dict[type[Variant], LayerSurgery] = {}
Hooks = TypeVar("Hooks", bound="type[LayerSurgery]")


class LayerSurgery:
    """The hooks every layer's variants share: which of the layer's parameters start frozen."""

    def frozen(self, policy: Any, job: SurgeryJob, parameters: dict[str, nn.Parameter]) -> list[nn.Parameter]:
        """Those of the layer's parameters (`parameters`: name → parameter, in model order) that start without
        gradients."""
        return list(parameters.values()) if policy.is_frozen() else []


class TokenTableSurgery(LayerSurgery):
    """A token-table variant: vectors it trains on the corpus first, the table it makes, what trains inside it."""

    def vectors(self, policy: Any, job: SurgeryJob) -> TrainedVectors | None:
        """Static vectors trained on the corpus before surgery (None: the variant trains none)."""
        return None

    def replace(self, policy: Any, job: SurgeryJob) -> str | None:
        """Put the variant's new table in the model; returns what it is in words (None: the table is kept)."""
        return None

    def scope(self, policy: Any, job: SurgeryJob) -> None:
        """Choose what trains inside the table (some rows only), before the freeze / finetune flags."""


class PositionSurgery(LayerSurgery):
    """A position variant: the new table or rotation it puts in the model."""

    def replace(self, policy: Any, job: SurgeryJob) -> str | None:
        """Change the model's positions; returns what they now are in words (None: they are kept)."""
        return None

    def needs_table(self, policy: Any) -> bool:
        """Whether the policy asks for something of an absolute position table (a model with neither a table nor a
        rotation then refuses it)."""
        return True


class BodySurgery(LayerSurgery):
    """A body variant: what it adds beside the body (adapters) before the freeze / finetune flags."""

    def scope(self, policy: Any, job: SurgeryJob) -> None:
        """Add what trains beside the body (LoRA adapters)."""


class HeadSurgery(LayerSurgery):
    """A head variant: frozen or trained (`frozen`)."""


def implements(*variants: type[Variant]) -> Callable[[Hooks], Hooks]:
    """Register the decorated class of hooks as the implementation of `variants` (one instance, shared)."""

    def register(hooks: Hooks) -> Hooks:
        instance = hooks()
        for variant in variants:
            if variant in IMPLEMENTATIONS:
                raise RuntimeError(f"{variant.__name__} has two implementations")
            IMPLEMENTATIONS[variant] = instance
        return hooks

    return register


def implementation_of(policy: Variant) -> Any:
    """The registered implementation of a policy's variant."""
    try:
        return IMPLEMENTATIONS[type(policy)]
    except KeyError:
        raise RuntimeError(f"{type(policy).__name__} ({policy.in_words()}) has no registered implementation") from None


def recipe_variants() -> dict[str, tuple[type[Variant], ...]]:
    """Every variant a recipe can name, by layer (`layers.<layer>`)."""
    return {f"layers.{name}": union_members(field) for name, field in LayersConfig.model_fields.items()}


def missing_implementations() -> list[str]:
    """The recipe's variants that no implementation is registered for (`layers.positions: NoPositions`...)."""
    return [
        f"{layer}: {variant.__name__}"
        for layer, variants in recipe_variants().items()
        for variant in variants
        if variant not in IMPLEMENTATIONS
    ]
