"""The registry of model families, keyed by the recipe's `model.family`.

It holds each family's `FamilySpec` (what recipe checks read, without importing model code) and, on first use, its
implementation: a built-in family's module is imported only when a run needs it. A new family is
`register_family(MyFamily())`, from anywhere, before the recipe that names it is loaded (for `pipeline sweep`'s
run processes: from a module named in `EMBEDLAB_PLUGINS`, see `pipeline.plugins`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.errors import did_you_mean
from pipeline.families import bert, bilstm, gpt2, llama
from pipeline.families.spec import FamilySpec
from pipeline.lazy import Lazy

if TYPE_CHECKING:  # the implementations import torch; the registry itself stays light
    from pipeline.families.base import Family

FAMILIES: dict[str, FamilySpec] = {}
_IMPLEMENTATIONS: dict[str, Family | Lazy] = {}  # the instance, or a reference to it (its module not yet imported)


def register_family(family: Family) -> Family:
    """Make `family` available to recipes as `model.family: <family.name>`; returns it."""
    FAMILIES[family.name] = family.spec
    _IMPLEMENTATIONS[family.name] = family
    return family


def family_spec(name: str) -> FamilySpec:
    """The registered family called `name`, as recipe checks see it; a ValueError with a hint for an unknown one."""
    if name in FAMILIES:
        return FAMILIES[name]
    raise ValueError(f"unknown family '{name}'; {did_you_mean(name, FAMILIES)}one of {', '.join(FAMILIES)}")


def family_named(name: str) -> Family:
    """The implementation of the registered family called `name` (importing a built-in one on first use)."""
    family_spec(name)
    implementation = _IMPLEMENTATIONS[name]
    if isinstance(implementation, Lazy):
        implementation = _IMPLEMENTATIONS[name] = implementation()
    return implementation


def family_of_model_type(model_type: str) -> Family | None:
    """The family that claims checkpoints of this `model_type`, if any (imports every family)."""
    return next((family for family in map(family_named, FAMILIES) if model_type in family.checkpoint_model_types), None)


for _package in (bert, gpt2, bilstm, llama):
    FAMILIES[_package.SPEC.name] = _package.SPEC
    _IMPLEMENTATIONS[_package.SPEC.name] = Lazy(f"{_package.__name__}.family:FAMILY")
