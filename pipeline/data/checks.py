"""What each column a task reads must hold, checked on every row before anything is trained.

A text is a string (a missing text counts as an empty one); a label is a string or an integer, a number (regression
target) a number, a label set a list of labels or one string of them, and none of these is ever missing (unless
`data.drop_missing_labels`, which leaves such rows out and counts them); words are a list of strings and tags a
list of strings or integers. A row that breaks this is refused with its split, its source and its row
number, rather than turned into a class called "None" or the string "['x']".
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasets import Dataset

from pipeline.errors import PipelineError


def _first(mask: pa.ChunkedArray) -> int | None:
    """Index of the first true value of a boolean column, or None."""
    index = pc.index(mask, True).as_py()
    return None if index < 0 else index


def _is_list(arrow_type: pa.DataType) -> bool:
    return pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type)


def _is_text(arrow_type: pa.DataType) -> bool:
    return pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type) or pa.types.is_null(arrow_type)


def _kind_problem(kind: str, arrow_type: pa.DataType) -> str | None:
    """Why a column of this Arrow type cannot hold `kind` values, or None."""
    if kind in ("words", "tags") or (kind == "label_set" and _is_list(arrow_type)):
        if not _is_list(arrow_type):
            return f"holds {arrow_type} values; {kind} must be a list per row"
        inner = arrow_type.value_type
        if not (_is_text(inner) or (kind != "words" and pa.types.is_integer(inner))):
            allowed = "strings" if kind == "words" else "strings or integers"
            return f"holds lists of {inner}; {kind} must be lists of {allowed}"
        return None
    if _is_list(arrow_type) or pa.types.is_struct(arrow_type) or pa.types.is_map(arrow_type):
        return f"holds {'lists' if _is_list(arrow_type) else 'objects'}; a {kind} must be a single value"
    if pa.types.is_binary(arrow_type) or pa.types.is_large_binary(arrow_type):
        return "holds bytes that are not UTF-8 text"
    if kind == "label" and (pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type)):
        return (
            "holds numbers with fractions; a class label must be a string or an integer (a number to predict: "
            "task.type: regression)"
        )
    if kind == "number" and not (
        pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type) or pa.types.is_null(arrow_type)
    ):
        return f"holds {arrow_type} values; a regression target must be a number"
    if kind == "label_set" and not _is_text(arrow_type):
        return (
            f"holds {arrow_type} values; a label set must be a list of labels, or one string of them split by "
            "task.label_delimiter"
        )
    return None


def _missing_rows(column: pa.ChunkedArray) -> tuple[int | None, int | None]:
    """(first row without a value, first row whose list holds a missing item), each None when there is none."""
    missing, inside = _first(pc.is_null(column)), None
    if _is_list(column.type):
        position = _first(pc.is_null(pc.list_flatten(column)))
        if position is not None:
            ends = pc.cumulative_sum(pc.list_value_length(column).fill_null(0)).to_pylist()
            inside = next(row for row, end in enumerate(ends) if end > position)
    return missing, inside


FLOAT32_MAX = 3.4028234663852886e38
LARGEST_TARGET = math.sqrt(FLOAT32_MAX)  # ≈ 1.8e19: its squared error still fits float32


def _check_targets(column: pa.ChunkedArray, name: str, where: str) -> None:
    """Regression targets are finite and small enough that a squared error fits float32 (what training computes
    in): NaN, ±inf, 1e39, or 1e30 (whose square overflows) would make the loss NaN or inf, silently."""
    if not pa.types.is_floating(column.type) and not pa.types.is_integer(column.type):
        return
    values = column.to_numpy(zero_copy_only=False).astype("float64")
    bad = ~np.isfinite(values) | (np.abs(values) > LARGEST_TARGET)
    bad &= ~np.asarray(pc.is_null(column).to_numpy(zero_copy_only=False), dtype=bool)
    if bad.any():
        row = int(np.argmax(bad))
        raise PipelineError(
            f"row {row + 1} of {where} has target {float(values[row])!r} in column '{name}'; a regression target "
            "must be a finite number within ±1.8e19 (its squared error must fit float32)",
            field="data",
        )


LABELLED = ("label", "number", "label_set")
NAMES = {"label": "label", "number": "target", "label_set": "labels", "words": "words", "tags": "tags"}


def check_column_values(
    split: Dataset, split_name: str, source: str, kinds: dict[str, str], drop_missing_labels: bool = False
) -> tuple[Dataset, int]:
    """Check every column the task reads; returns the split (rows with a missing label left out, when asked) and
    how many rows were left out. source: where the rows come from (a file, a folder, a Hub data set)."""
    table = split.with_format("arrow")[:]  # the rows as they stand (after any selection), as one Arrow table
    dropped = 0
    for column, kind in kinds.items():
        if column not in split.column_names:
            continue  # the task names missing columns itself
        where = f"split '{split_name}' ({source})"
        problem = _kind_problem(kind, table.schema.field(column).type)
        if problem:
            raise PipelineError(f"column '{column}' of {where} {problem}", field="data")
        missing, inside = _missing_rows(table.column(column))
        if inside is not None:
            raise PipelineError(
                f"row {inside + 1} of {where} has a missing item in its {NAMES[kind]} (column '{column}')", field="data"
            )
        if kind == "number":
            _check_targets(table.column(column), column, where)
        if missing is None or kind == "text":  # a missing text is an empty one, and counted as such
            continue
        if kind in LABELLED and drop_missing_labels:
            keep = pc.invert(pc.is_null(table.column(column)))
            dropped = len(split) - pc.sum(keep).as_py()
            split = split.select([i for i, kept in enumerate(keep.to_pylist()) if kept])
            table = split.with_format("arrow")[:]
            continue
        hint = "; fix it, or set data.drop_missing_labels: true to leave such rows out" if kind in LABELLED else ""
        raise PipelineError(
            f"row {missing + 1} of {where} has no {NAMES[kind]} (null) in column '{column}'{hint}", field="data"
        )
    return split, dropped
