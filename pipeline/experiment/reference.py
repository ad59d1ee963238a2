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
from pipeline.tasks import registry as _task_registry  # noqa: F401 (registers the built-in task sections)

Rows = dict[str, list[str]]


def _default(field: typing.Any) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    return f"`{yaml.safe_dump(value, default_flow_style=True).strip().removesuffix('...').strip()}`"


def _type_name(annotation: typing.Any) -> str:
    kind = (annotation.__name__ if isinstance(annotation, type) else str(annotation)).replace("typing.", "")
    return re.sub(r"pipeline\.[\w.]+\.(\w+)", r"\1", kind).replace("|", "\\|")


def _walk(model: type[BaseModel], prefix: str, rows: Rows) -> None:
    """Every field of `model` as a row under `prefix`; sections expanded in place; a field that several sections
    share (the task types) listed once, with the union of their types."""
    for name, field in model.model_fields.items():
        annotation = field.annotation
        members = typing.get_args(annotation) or (annotation,)
        nested = [a for a in members if isinstance(a, type) and issubclass(a, BaseModel)]
        if TaskSection in nested:
            nested = [a for a in nested if a is not TaskSection] + list(SECTIONS.values())
        if nested and all(a in nested or a is type(None) or a is TaskSection for a in members):
            for section in nested:
                _walk(section, f"{prefix}{name}.", rows)
            continue
        kind, dotted = _type_name(annotation), f"{prefix}{name}"
        if dotted in rows and kind not in rows[dotted][0]:
            rows[dotted][0] += f" or {kind}"
        rows.setdefault(dotted, [kind, _default(field), field.description or ""])
        for section in nested:  # a field that is a value or a section (model.tokenizer)
            _walk(section, f"{dotted}.", rows)


def recipe_reference() -> str:
    """A Markdown table of every recipe field (dotted name, type, default, meaning), then the registered families,
    task types and metric names."""
    rows: Rows = {}
    _walk(Recipe, "", rows)
    lines = ["| field | type | default | meaning |", "|---|---|---|---|"]
    lines += [f"| `{dotted}` | {kind} | {default} | {meaning} |" for dotted, (kind, default, meaning) in rows.items()]
    lines += [
        "",
        "`model.family`: " + "; ".join(f"`{name}` ({spec.description})" for name, spec in FAMILIES.items()) + ".",
    ]
    lines += ["", "`task.type`: " + ", ".join(f"`{name}`" for name in SECTIONS) + "."]
    lines += ["", "`eval.metrics` (known names): " + ", ".join(f"`{name}`" for name in KNOWN_METRICS) + "."]
    return "\n".join(lines)
