"""The registry of model families, keyed by the recipe's `model.family`.

The built-in families register here; a new one is `register_family(MyFamily())`, from anywhere, before the
recipe that names it is validated.
"""

from __future__ import annotations

import difflib

from pipeline.families import bert, bilstm, gpt2, llama
from pipeline.families.base import Family

FAMILIES: dict[str, Family] = {}


def register_family(family: Family) -> Family:
    """Make `family` available to recipes as `model.family: <family.name>`; returns it."""
    FAMILIES[family.name] = family
    return family


def family_named(name: str) -> Family:
    """The registered family called `name`; a ValueError with a hint for an unknown one."""
    if name in FAMILIES:
        return FAMILIES[name]
    close = difflib.get_close_matches(name, list(FAMILIES), n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    raise ValueError(f"unknown family '{name}'; {hint}one of {', '.join(FAMILIES)}")


def family_of_model_type(model_type: str) -> Family | None:
    """The family that claims checkpoints of this `model_type`, if any."""
    return next((family for family in FAMILIES.values() if model_type in family.checkpoint_model_types), None)


for _family in (bert.FAMILY, gpt2.FAMILY, bilstm.FAMILY, llama.FAMILY):
    register_family(_family)
