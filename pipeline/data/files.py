"""Reading local data files (csv, json, jsonl, parquet, txt, CoNLL) into splits, with one clear line for every problem.

The files are read with pyarrow directly, by their exact path: no glob expansion (a file named `tr*.jsonl` is that
file alone), no silent type coercion (a column whose values change type is an error naming the row), and an
empty, truncated or non-UTF-8 file is an error naming the file.
"""

from __future__ import annotations

import csv
import json
import logging
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pa_parquet
from datasets import Dataset, DatasetDict
from datasets.table import InMemoryTable

from pipeline.errors import PipelineError, first_line
from pipeline.recipe.schema import CsvLayout

log = logging.getLogger(__name__)

FIELD = "data.files"
FIELD_SEPARATOR = re.compile(r"[ \t]+")
MAX_LINE_BYTES = 16 << 20  # 16 MiB: a text, sentence or JSON row longer than this is a wrong file, not data
# pyarrow reads in blocks (1 MiB by default) and refuses a row longer than one: every row up to the limit must fit.
BLOCK_BYTES = MAX_LINE_BYTES + (1 << 20)
SNIFF_BYTES = 1 << 20


def check_text_file(path: Path) -> None:
    """Refuse in seconds what cannot be a text data file: NUL bytes (a binary file, or zeros), or a line longer
    than `MAX_LINE_BYTES` (read in chunks, so a huge one-line file is not loaded whole first)."""
    with path.open("rb") as handle:
        if b"\0" in handle.read(SNIFF_BYTES):
            raise ValueError("it holds NUL bytes: a binary file, not text")
        handle.seek(0)
        line = 0  # bytes of the line the last chunk ended in
        while chunk := handle.read(SNIFF_BYTES):
            if b"\0" in chunk:
                raise ValueError("it holds NUL bytes: a binary file, not text")
            pieces = chunk.split(b"\n")
            first = line + len(pieces[0])
            if first > MAX_LINE_BYTES or any(len(piece) > MAX_LINE_BYTES for piece in pieces[1:-1]):
                raise ValueError(f"a line is longer than {MAX_LINE_BYTES >> 20} MiB: not a data file of texts")
            line = first if len(pieces) == 1 else len(pieces[-1])


def _one_based_rows(message: str) -> str:
    """pyarrow counts rows from 0; people count them from 1."""
    return re.sub(r"\bin row (\d+)", lambda match: f"in row {int(match.group(1)) + 1}", message)


def _read_json_array(path: Path) -> pa.Table:
    """A .json file holding one array of objects (the other JSON layout, beside JSON Lines)."""
    rows = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise ValueError("a .json file must hold JSON Lines or one array of objects")
    lines = "".join(json.dumps(row) + "\n" for row in rows).encode("utf-8")
    return pa_json.read_json(pa.BufferReader(lines), read_options=pa_json.ReadOptions(block_size=BLOCK_BYTES))


def _read_text_lines(path: Path) -> pa.Table:
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    return pa.table({"text": pa.array(lines, type=pa.string())})


def read_conll(path: Path, word_column: int = 0, tag_column: int = -1) -> pa.Table:
    """A CoNLL-style column file: one word per line with its fields split by whitespace, a blank line between
    sentences, `-DOCSTART-` lines skipped. Returns columns `tokens` and `tags` (one list of each per sentence)."""
    sentences: list[tuple[list[str], list[str]]] = []
    words: list[str] = []
    tags: list[str] = []
    # utf-8-sig: a byte-order mark is not part of the first word; fields are split on spaces and tabs only, so a
    # no-break space inside a word (1\u00a0000) keeps it one word.
    for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        fields = FIELD_SEPARATOR.split(line.strip(" \t"))
        fields = [] if fields == [""] else fields
        if not fields or fields[0] == "-DOCSTART-":
            if words:
                sentences.append((words, tags))
            words, tags = [], []
            continue
        try:
            if len(fields) < 2:
                raise IndexError
            words.append(fields[word_column])
            tags.append(fields[tag_column])
        except IndexError:
            raise ValueError(
                f"line {number} has {len(fields)} field(s); a word and its tag need two (data.conll_columns: fields "
                f"{word_column} and {tag_column})"
            ) from None
    if words:
        sentences.append((words, tags))
    return pa.table(
        {"tokens": [s[0] for s in sentences], "tags": [s[1] for s in sentences]},
        schema=pa.schema([("tokens", pa.list_(pa.string())), ("tags", pa.list_(pa.string()))]),
    )


def _column(values: list[str]) -> pa.Array:
    """A column of text fields as numbers where every non-empty field is one (integers, else floats), else text."""
    if any(value != "" for value in values):
        for kind, parse in ((pa.int64(), int), (pa.float64(), float)):
            try:
                return pa.array([parse(value) if value != "" else None for value in values], type=kind)
            except ValueError:
                continue
    return pa.array(values, type=pa.string())


def read_named_fields(path: Path, layout: CsvLayout) -> pa.Table:
    """A delimited file without a header row, its fields named by `layout.columns` (fields past them left out and
    counted; a row with fewer is an error naming it)."""
    names = layout.columns or []
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.reader(
            handle, delimiter=layout.delimiter, quoting=csv.QUOTE_MINIMAL if layout.quoting else csv.QUOTE_NONE
        )
        columns: list[list[str]] = [[] for _ in names]
        longer = 0
        for number, row in enumerate(reader, 1):
            if len(row) < len(names):
                raise ValueError(f"row {number} has {len(row)} field(s) for the {len(names)} named (data.csv.columns)")
            longer += len(row) > len(names)
            for column, value in zip(columns, row, strict=False):
                column.append(value)
    if longer:
        log.info("%d row(s) of %s hold fields past data.csv.columns: those fields are left out", longer, path)
    return pa.table({name: _column(values) for name, values in zip(names, columns, strict=True)})


def _read_csv(path: Path, layout: CsvLayout | None) -> pa.Table:
    if layout is not None and layout.columns:
        return read_named_fields(path, layout)
    parse = pa_csv.ParseOptions(
        delimiter=layout.delimiter if layout else ",", quote_char='"' if layout is None or layout.quoting else False
    )
    return pa_csv.read_csv(path, read_options=pa_csv.ReadOptions(block_size=BLOCK_BYTES), parse_options=parse)


def read_table(path: Path, conll_columns: tuple[int, int] = (0, -1), layout: CsvLayout | None = None) -> pa.Table:
    """One local file as an Arrow table; every problem becomes a one-line `PipelineError` naming the file."""
    suffix = path.suffix.lower()
    try:
        if path.stat().st_size == 0:
            raise ValueError("the file is empty")
        if suffix != ".parquet":
            check_text_file(path)
        if suffix == ".conll":
            table = read_conll(path, *conll_columns)
        elif suffix == ".parquet":
            table = pa_parquet.read_table(path)
        elif suffix == ".csv":
            table = _read_csv(path, layout)
        elif suffix == ".txt":
            table = _read_text_lines(path)
        elif suffix == ".json" and path.read_bytes().lstrip()[:1] == b"[":
            table = _read_json_array(path)
        else:
            path.read_text(encoding="utf-8")  # pyarrow reads invalid UTF-8 into strings without a word
            table = pa_json.read_json(path, read_options=pa_json.ReadOptions(block_size=BLOCK_BYTES))
    except UnicodeDecodeError as error:
        raise PipelineError(f"'{path}' is not UTF-8 text (byte {error.start}: {error.reason})", field=FIELD) from None
    except (OSError, ValueError, pa.ArrowException) as error:
        raise PipelineError(f"cannot read '{path}' ({_one_based_rows(first_line(error))})", field=FIELD) from None
    undecoded = [
        field.name for field in table.schema if pa.types.is_binary(field.type) or pa.types.is_large_binary(field.type)
    ]
    if undecoded and suffix == ".csv":
        raise PipelineError(f"'{path}': column '{undecoded[0]}' is not UTF-8 text", field=FIELD)
    if table.num_rows == 0:
        raise PipelineError(f"'{path}' holds no rows", field=FIELD)
    return table


def read_files(
    paths: dict[str, Path], conll_columns: tuple[int, int] = (0, -1), layout: CsvLayout | None = None
) -> DatasetDict:
    """Each split's file as a `Dataset` (`layout`: how `.csv` files are laid out)."""
    return DatasetDict(
        {split: Dataset(InMemoryTable(read_table(path, conll_columns, layout))) for split, path in paths.items()}
    )
