"""What each column a task reads must hold, checked on every row before anything is trained.

A text is a string (a missing text counts as an empty one); a label is a string or an integer and never missing
(unless `data.drop_missing_labels`, which leaves such rows out and counts them); words are a list of strings and
tags a list of strings or integers. A row that breaks this is refused with its split, its source and its row
number, rather than turned into a class called "None" or the string "['x']".
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
from datasets import Dataset

from pipeline.errors import PipelineError


def _first(mask: pa.ChunkedArray) -> int | None:
    """Index of the first true value of a boolean column, or None."""
    index = pc.index(mask, True).as_py()
    return None if index < 0 else index


def _kind_problem(kind: str, arrow_type: pa.DataType) -> str | None:
    """Why a column of this Arrow type cannot hold `kind` values, or None."""
    is_list = pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type)
    if kind in ("words", "tags"):
        if not is_list:
            return f"holds {arrow_type} values; {kind} must be a list per row"
        inner = arrow_type.value_type
        scalar = pa.types.is_string(inner) or pa.types.is_large_string(inner) or pa.types.is_null(inner)
        if not (scalar or (kind == "tags" and pa.types.is_integer(inner))):
            return f"holds lists of {inner}; {kind} must be lists of {'strings' if kind == 'words' else 'strings or integers'}"
        return None
    if is_list or pa.types.is_struct(arrow_type) or pa.types.is_map(arrow_type):
        return f"holds {'lists' if is_list else 'objects'}; a {kind} must be a single value"
    if pa.types.is_binary(arrow_type) or pa.types.is_large_binary(arrow_type):
        return "holds bytes that are not UTF-8 text"
    if kind == "label" and (pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type)):
        return "holds numbers with fractions; a class label must be a string or an integer"
    return None


def _first_bad_row(column: pa.ChunkedArray, kind: str) -> int | None:
    """The first row whose value is not allowed: a missing label, or a missing word or tag inside a list."""
    if kind == "label":
        return _first(pc.is_null(column))
    if kind in ("words", "tags"):
        missing_list = _first(pc.is_null(column))
        if missing_list is not None:
            return missing_list
        lengths = pc.list_value_length(column)
        flat_missing = pc.is_null(pc.list_flatten(column))
        position = _first(flat_missing)
        if position is None:
            return None
        ends = pc.cumulative_sum(lengths.fill_null(0)).to_pylist()
        return next(row for row, end in enumerate(ends) if end > position)
    return None


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
        where = f"column '{column}' of split '{split_name}' ({source})"
        problem = _kind_problem(kind, table.schema.field(column).type)
        if problem:
            raise PipelineError(f"{where} {problem}", field="data")
        row = _first_bad_row(table.column(column), kind)
        if row is None:
            continue
        if kind == "label" and drop_missing_labels:
            keep = pc.invert(pc.is_null(table.column(column)))
            dropped = len(split) - pc.sum(keep).as_py()
            split = split.select([i for i, kept in enumerate(keep.to_pylist()) if kept])
            table = split.with_format("arrow")[:]
            continue
        what = {"label": "has no label (null)", "words": "has a missing word", "tags": "has a missing tag"}[kind]
        hint = "; fix it, or set data.drop_missing_labels: true to leave such rows out" if kind == "label" else ""
        raise PipelineError(f"row {row + 1} of split '{split_name}' ({source}) {what} in column '{column}'{hint}", field="data")
    return split, dropped
