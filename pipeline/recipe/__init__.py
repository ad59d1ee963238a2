"""The recipe: its typed schema (`schema`, with the `layers` and `tasks` sections) and its YAML reading (`io`)."""

from pipeline.recipe.io import apply_override, dump_recipe, load_recipe, parse_recipe
from pipeline.recipe.schema import Recipe

__all__ = ["Recipe", "apply_override", "dump_recipe", "load_recipe", "parse_recipe"]
