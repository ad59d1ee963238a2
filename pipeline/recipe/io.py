"""Reading and writing recipes: YAML plus dotted `key=value` overrides, validated into one `Recipe` with every
problem on one line (`field.path: what is wrong; hint`), and the resolved recipe a run saves.
"""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from pipeline.errors import PipelineError, did_you_mean, first_line
from pipeline.recipe.schema import Recipe
from pipeline.recipe.tasks import SECTIONS, TASK_TYPE_ERROR, TaskSection
from pipeline.recipe.variants import SAVED, union_members

MAX_RECIPE_BYTES = 1 << 20  # a recipe is a page of settings; a bigger file is a mistake (or an attack)
MAX_EXPANDED_NODES = 100_000  # YAML aliases may repeat a node; nested, they grow exponentially ("billion laughs")


def expanded_nodes(node: yaml.Node, budget: int) -> int:
    """How many nodes `node` stands for once every alias is expanded, counting no further than `budget`."""
    count, stack = 0, [node]
    while stack and count <= budget:
        current = stack.pop()
        count += 1
        if isinstance(current, yaml.MappingNode):
            stack.extend(item for pair in current.value for item in pair)
        elif isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)
    return count


class UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a mapping that names one key twice (plain YAML keeps the last silently), and a
    document whose aliases expand past `MAX_EXPANDED_NODES` nodes."""

    def compose_document(self) -> yaml.Node:
        node = super().compose_document()
        if node is not None and expanded_nodes(node, MAX_EXPANDED_NODES) > MAX_EXPANDED_NODES:
            raise yaml.constructor.ConstructorError(
                None, None, f"its aliases expand to more than {MAX_EXPANDED_NODES:,} values", node.start_mark
            )
        return node

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key '{key}'", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml(text: str) -> Any:
    """Parse YAML safely (no Python objects), refusing duplicate keys."""
    return yaml.load(text, Loader=UniqueKeyLoader)


def _yaml_problem(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    where = f"line {mark.line + 1}: " if mark is not None else ""
    return where + (getattr(error, "problem", None) or first_line(error))


def apply_override(raw: dict[str, Any], assignment: str) -> None:
    """Set `a.b.c=value` in a raw recipe mapping; the value is parsed as YAML (`3`, `true`, `[a, b]`, `null`)."""
    key, sep, text = assignment.partition("=")
    if not sep or not key:
        raise PipelineError(f"override '{assignment}' must look like key=value (e.g. train.lr=3e-5)")
    try:
        value = read_yaml(text)
    except yaml.YAMLError as error:
        raise PipelineError(f"override '{assignment}': the value is not valid YAML ({_yaml_problem(error)})") from None
    *parents, leaf = key.split(".")
    node = raw
    for depth, part in enumerate(parents):
        child = node.setdefault(part, {})
        if isinstance(child, str) and "policy" in _schema_fields(tuple(parents[: depth + 1])):
            child = node[part] = {"policy": child}  # expand the `token_embeddings: freeze` shorthand
        node = child
        if not isinstance(node, dict):
            where = ".".join(parents[: depth + 1])
            raise PipelineError(f"cannot set '{key}': {where} is {node!r}, not a mapping", field=where)
    node[leaf] = value


def _schema_fields(path: tuple[Any, ...]) -> list[str]:
    """Field names of the schema section at a dotted path ([] where the path is no section)."""
    models: list[type[BaseModel]] = [Recipe]
    for part in path:
        fields = [model.model_fields[str(part)] for model in models if str(part) in model.model_fields]
        candidates = [c for field in fields for c in (field.annotation, *union_members(field))]
        models = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        if TaskSection in models:  # `task`: the section of any registered task type
            models = [model for model in models if model is not TaskSection] + list(SECTIONS.values())
    return list(dict.fromkeys(name for model in models for name in model.model_fields))


def _names_a_union_member(part: Any) -> bool:
    """pydantic puts the member it tried into the location of a union's errors: `str`, `TokenizerBuild`..."""
    return isinstance(part, str) and (
        part in ("str", "int", "float", "bool", "none")
        or part.startswith(("list[", "dict[", "tuple["))
        or (part[:1].isupper() and part.isidentifier())
    )


def _problem(item: dict[str, Any], loc: tuple[Any, ...]) -> str:
    """One validation error as `dotted.field: what is wrong (hint)`."""
    where = ".".join(str(p) for p in loc) or "recipe"
    message = item["msg"].removeprefix("Value error, ")
    if item["type"] == "extra_forbidden":
        message = "unknown key" + (
            f"; {hint.rstrip()}" if (hint := did_you_mean(str(loc[-1]), _schema_fields(loc[:-1]))) else ""
        )
    elif item["type"] == "missing":
        message = "required but missing"
    elif message.startswith(TASK_TYPE_ERROR):  # an unknown or missing `task.type` (see `recipe.tasks.section_for`)
        where, message = TASK_TYPE_ERROR.rstrip(": "), message.removeprefix(TASK_TYPE_ERROR)
    elif "input" in item and not isinstance(item["input"], dict | list) and repr(item["input"]) not in message:
        message += f" (got {item['input']!r})"
    return f"{where}: {message}"


def format_validation_error(error: ValidationError) -> str:
    """All problems of a recipe on one line: `dotted.field: what is wrong (hint)`.

    Of a value that may take several shapes (`model.tokenizer`: a path or a `{build: ...}` section), only the
    errors of the shape it has are kept: `{build: word, vocab_size: -1}` is a bad section, not a bad string.
    """
    entries = []
    for item in error.errors():
        # Drop pydantic's validator names, union members and the tag of the `task` union from the location.
        loc = tuple(
            p
            for p in item["loc"]
            if not (isinstance(p, str) and (p.startswith("function-") or p in SECTIONS))
            and not _names_a_union_member(p)
        )
        entries.append((loc, any(_names_a_union_member(p) for p in item["loc"]), _problem(item, loc)))
    kept = [
        text
        for loc, member, text in entries
        if not (member and any(len(other) > len(loc) and other[: len(loc)] == loc for other, _, _ in entries))
    ]
    return "; ".join(dict.fromkeys(kept))


def parse_recipe(raw: Any, source: str = "recipe", saved: bool = False) -> Recipe:
    """Validate a raw mapping into a `Recipe`, turning every schema error into one `PipelineError` line.

    saved: the mapping is a run folder's resolved recipe, which may list fields of a policy at their defaults that
    an older version wrote for every variant (they are dropped, not refused)."""
    if not isinstance(raw, dict):
        raise PipelineError(f"{source}: a recipe must be a YAML mapping of sections, got {type(raw).__name__}")
    try:
        return Recipe.model_validate(raw, context={SAVED: saved})
    except ValidationError as error:
        raise PipelineError(f"{source}: {format_validation_error(error)}") from None


def read_recipe(path: str | Path, overrides: typing.Sequence[str] = (), saved: bool = False) -> Recipe:
    """Read a recipe YAML file, apply `key=value` overrides, validate it against the schema (the checks that need
    registries follow in `pipeline.experiment.recipes.load_recipe`, which every command uses). saved: a run
    folder's resolved recipe (see `parse_recipe`)."""
    path = Path(path)
    try:
        if path.is_file() and path.stat().st_size > MAX_RECIPE_BYTES:
            raise PipelineError(
                f"recipe '{path}' is {path.stat().st_size:,} bytes; a recipe is at most {MAX_RECIPE_BYTES:,}"
            )
        raw = read_yaml(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PipelineError(f"recipe file '{path}' not found") from None
    except IsADirectoryError:
        raise PipelineError(f"recipe '{path}' is a folder; give the recipe's YAML file") from None
    except OSError as error:
        raise PipelineError(f"cannot read recipe '{path}' ({error.strerror or error})") from None
    except UnicodeDecodeError as error:
        raise PipelineError(f"{path}: not valid YAML (not UTF-8 text: {error.reason} at byte {error.start})") from None
    except yaml.YAMLError as error:
        raise PipelineError(f"{path}: not valid YAML ({_yaml_problem(error)})") from None
    raw = {} if raw is None else raw
    for assignment in overrides:
        if isinstance(raw, dict):
            apply_override(raw, assignment)
    return parse_recipe(raw, source=str(path), saved=saved)


def holds_recipe(saved: Path, recipe: Recipe) -> bool:
    """Whether the resolved recipe saved at `saved` is `recipe` (compared as settings, not as text, so a folder saved
    by an older version that wrote the same settings differently still matches)."""
    text = saved.read_text(encoding="utf-8")
    if text == dump_recipe(recipe):
        return True
    try:
        return parse_recipe(read_yaml(text), str(saved), saved=True).model_dump() == recipe.model_dump()
    except (PipelineError, yaml.YAMLError):
        return False


def dump_recipe(recipe: Recipe) -> str:
    """The resolved recipe (every default filled in) as YAML, in schema order."""
    return yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


def flatten(mapping: Any, prefix: str = "") -> dict[str, Any]:
    """A nested mapping as dotted keys (`train.lr`), lists and scalars kept as they are."""
    if isinstance(mapping, dict):
        return {
            key: value for name, child in mapping.items() for key, value in flatten(child, f"{prefix}{name}.").items()
        }
    return {prefix.rstrip("."): mapping}


def tracker_config(recipe: Recipe) -> dict[str, Any]:
    """The whole resolved recipe as flat hyperparameters an experiment tracker can filter on (numbers, text,
    booleans)."""
    return {
        key: value if isinstance(value, bool | int | float | str) else json.dumps(value)
        for key, value in flatten(recipe.model_dump(mode="json")).items()
    }
