"""The reference of every recipe field that `pipeline schema` prints and the docs show, built from the schema, with
the registered families, task types and metrics filled in."""

from __future__ import annotations

import re
import typing

import yaml
from pydantic import BaseModel

from pipeline.evaluation.metrics import KNOWN_METRICS
from pipeline.families.registry import FAMILIES
from pipeline.recipe.schema import Recipe
from pipeline.recipe.tasks import SECTIONS, TaskSection
from pipeline.recipe.variants import Variant, VariantSet, variant_set
from pipeline.tasks.registry import register_built_in_tasks

Rows = dict[str, list[str]]
Unions = dict[str, VariantSet]  # dotted field → its variants, each shown in a table of its own


def _default(field: typing.Any) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if isinstance(value, Variant):
        return f"`{value.in_words()}`"
    value = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
    return f"`{yaml.safe_dump(value, default_flow_style=True).strip().removesuffix('...').strip()}`"


def _type_name(annotation: typing.Any) -> str:
    kind = (annotation.__name__ if isinstance(annotation, type) else str(annotation)).replace("typing.", "")
    return re.sub(r"pipeline\.[\w.]+\.(\w+)", r"\1", kind).replace("|", "\\|")


def _walk(model: type[BaseModel], prefix: str, rows: Rows, unions: Unions) -> None:
    """Every field of `model` as a row under `prefix`; sections expanded in place; a field that several sections
    share (the task types) listed once, with the union of their types; a policy with variants listed as one row,
    its variants kept in `unions`."""
    for name, field in model.model_fields.items():
        annotation = field.annotation
        variants = variant_set(field)
        if variants is not None:
            unions[f"{prefix}{name}"] = variants
            names = ", ".join(f"`{variant.in_words()}`" for variant in variants.variants)
            rows[f"{prefix}{name}"] = ["one of its variants", _default(field), f"{field.description or ''} "
                                       f"Variants (each with its own fields, below): {names}."]  # fmt: skip
            continue
        members = typing.get_args(annotation) or (annotation,)
        nested = [a for a in members if isinstance(a, type) and issubclass(a, BaseModel)]
        if TaskSection in nested:
            nested = [a for a in nested if a is not TaskSection] + list(SECTIONS.values())
        if nested and all(a in nested or a is type(None) or a is TaskSection for a in members):
            for section in nested:
                _walk(section, f"{prefix}{name}.", rows, unions)
            continue
        kind, dotted = _type_name(annotation), f"{prefix}{name}"
        if dotted in rows and kind not in rows[dotted][0]:
            rows[dotted][0] += f" or {kind}"
        rows.setdefault(dotted, [kind, _default(field), field.description or ""])
        for section in nested:  # a field that is a value or a section (model.tokenizer)
            _walk(section, f"{dotted}.", rows, unions)


def _table(rows: Rows) -> list[str]:
    lines = ["| field | type | default | meaning |", "|---|---|---|---|"]
    return lines + [
        f"| `{dotted}` | {kind} | {default} | {meaning} |" for dotted, (kind, default, meaning) in rows.items()
    ]


def recipe_reference() -> str:
    """A Markdown table of every recipe field (dotted name, type, default, meaning), then the registered families,
    task types and metric names."""
    register_built_in_tasks()
    rows: Rows = {}
    unions: Unions = {}
    _walk(Recipe, "", rows, unions)
    lines = _table(rows)
    shown: set[str] = set()
    while pending := [dotted for dotted in unions if dotted not in shown]:  # a variant may hold a union (`scaling`)
        dotted, variants = pending[0], unions[pending[0]]
        shown.add(dotted)
        for variant in variants.variants:
            fields: Rows = {}
            _walk(variant, f"{dotted}.", fields, unions)
            tags: Rows = {}  # first: what picks the variant (its default where the variant is what an omission means)
            for key, value in variant.tags.items():
                default = f"`{value}`" if variants.defaults.get(key) == value else "required"
                tags[f"{dotted}.{key}"] = [f"`{value}`", default, fields.pop(f"{dotted}.{key}")[2]]
            summary = " ".join((variant.__doc__ or "").split())
            lines += ["", f"**`{dotted}`: `{variant.in_words()}`** — {summary}", ""]
            lines += _table({**tags, **fields})
    lines += [
        "",
        "`model.family`: " + "; ".join(f"`{name}` ({spec.description})" for name, spec in FAMILIES.items()) + ".",
    ]
    defaults = {name: ", ".join(section.default_metrics) if section.default_metrics else "chosen from the data"
                for name, section in SECTIONS.items()}  # fmt: skip
    lines += ["", "`task.type` (default `eval.metrics`): " + "; ".join(
        f"`{name}` ({metrics})" for name, metrics in defaults.items()) + "."]  # fmt: skip
    lines += ["", "`eval.metrics` (known names): " + ", ".join(f"`{name}`" for name in KNOWN_METRICS) + "."]
    return "\n".join(lines)
