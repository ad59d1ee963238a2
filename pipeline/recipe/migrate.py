"""Run folders saved by older versions, read in today's form: a resolved recipe (`recipe.yaml` of a run folder) is
migrated here before it is validated, so the schema and the variant picker know only today's recipe.

- Saved before policies were variants, a layer's policy listed every field of every variant, at its default:
  the fields of other variants that hold their default (or null) are dropped.
- Saved before `task.lengths` and `task.threshold` moved from `eval` to their task sections: moved there (or
  dropped at their old defaults).
"""

from __future__ import annotations

from typing import Any

from pipeline.recipe.layers import LayersConfig
from pipeline.recipe.variants import VariantSet, variant_set


def migrate_saved(raw: dict[str, Any]) -> dict[str, Any]:
    """A saved recipe mapping in today's form (a new mapping; `raw` is left as it was)."""
    return _moved_to_task_sections(_layers_as_variants(raw))


def _layers_as_variants(raw: dict[str, Any]) -> dict[str, Any]:
    layers = raw.get("layers")
    if not isinstance(layers, dict):
        return raw
    migrated = dict(layers)
    for name, field in LayersConfig.model_fields.items():
        variants = variant_set(field)
        if variants is not None and isinstance(layers.get(name), dict):
            migrated[name] = _without_defaults_of_others(variants, layers[name])
    return {**raw, "layers": migrated}


def _without_defaults_of_others(variants: VariantSet, policy: dict[str, Any]) -> dict[str, Any]:
    """`policy` without the fields of the other variants that hold their default (a nested variant too)."""
    try:
        chosen = variants.match(policy)
    except ValueError:
        return policy  # the picker will say what is wrong
    kept = {}
    for key, setting in policy.items():
        if key not in chosen.model_fields:
            owners = [v for v in variants.variants if key in v.model_fields]
            if owners and (setting is None or any(setting == v.model_fields[key].default for v in owners)):
                continue
        nested = variant_set(chosen.model_fields[key]) if key in chosen.model_fields else None
        kept[key] = _without_defaults_of_others(nested, setting) if nested and isinstance(setting, dict) else setting
    return kept


def _moved_to_task_sections(raw: dict[str, Any]) -> dict[str, Any]:
    if "eval" not in raw:
        return raw
    evaluation, task = dict(raw.get("eval") or {}), dict(raw.get("task") or {})
    for key, default in (("lengths", None), ("threshold", 0.5)):
        if key in evaluation and (setting := evaluation.pop(key)) != default:
            task[key] = setting
    return {**raw, "eval": evaluation, "task": task}
