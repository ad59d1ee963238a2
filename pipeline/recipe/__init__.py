"""The recipe: its typed schema (`schema`; the `model` section in `model`, the `layers` section in `layers` and
`positions`, each layer's policy one of its typed variants joined by `variants`; the base of task sections in
`tasks`) and its YAML reading (`io`). Pure data at the bottom of the package: it imports no model, task or metric
code.
"""

from pipeline.recipe.io import apply_override, dump_recipe, parse_recipe, read_recipe
from pipeline.recipe.schema import Recipe

__all__ = ["Recipe", "apply_override", "dump_recipe", "parse_recipe", "read_recipe"]
