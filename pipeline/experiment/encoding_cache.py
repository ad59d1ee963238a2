"""Tokenized splits cached across runs: the runs of a sweep (seeds, policies that leave the tokenizer alone) encode
the same texts with the same tokenizer, so the first run stores its encoded splits and the others load them.

The key is a hash of everything the encoding depends on: the task's settings, its labels and its module's source
(a changed encoder never reads an old cache), the tokenizer's whole definition, the truncation length, the family's
extra per-token inputs, and each split's rows and name. Stored under `EMBEDLAB_CACHE` (default
`~/.cache/embedlab`) as `encoded/<key>/`: the splits in Arrow format, the counts, and what the task learnt while
encoding (`Task.encoding_state`), a sealed entry of `pipeline.cache`.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import sys
from pathlib import Path
from typing import Any

import datasets
import pyarrow as pa
from datasets import Dataset, DatasetDict, load_from_disk
from transformers import PreTrainedTokenizerBase

from pipeline.cache import usable, write_entry
from pipeline.families.base import TokenFeatures
from pipeline.paths import cache_root

COUNTS = "counts.json"


def _table_digest(split: Dataset) -> str:
    """SHA-256 of a split's rows (its Arrow table, serialised)."""
    sink = pa.BufferOutputStream()
    table = split.with_format("arrow")[:]
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()


def _tokenizer_definition(tokenizer: PreTrainedTokenizerBase) -> str:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    vocabulary = backend.to_str() if backend is not None else json.dumps(tokenizer.get_vocab(), sort_keys=True)
    return vocabulary + json.dumps(tokenizer.special_tokens_map, sort_keys=True, default=str)


def encoding_key(
    task: Any,
    raw: DatasetDict,
    tokenizer: PreTrainedTokenizerBase,
    max_length: int,
    features: TokenFeatures,
    training_split: str,
) -> str:
    """What the encoded splits depend on, hashed (see the module docstring)."""
    digest = hashlib.sha256()
    module_source = inspect.getsource(sys.modules[type(task).__module__])
    parts = [
        type(task).__qualname__,
        module_source,
        task.cfg.model_dump_json(),
        json.dumps(task.head_kwargs(), sort_keys=True, default=str),
        _tokenizer_definition(tokenizer),
        str(max_length),
        type(features).__qualname__,
        json.dumps(vars(features), sort_keys=True, default=str),
        training_split,
    ]
    for part in parts:
        digest.update(part.encode() + b"\0")
    for name, split in raw.items():
        digest.update(f"{name}:{_table_digest(split)}\0".encode())
    return digest.hexdigest()[:32]


def load(key: str) -> tuple[DatasetDict, dict[str, dict[str, int]], dict[str, Any]] | None:
    """The cached encoded splits, counts and task state of `key`, or None (none yet, or a damaged entry, removed)."""
    folder = cache_root("encoded") / key
    if not usable(folder, "encoded splits"):
        return None
    stored = json.loads((folder / COUNTS).read_text())
    splits = DatasetDict({name: load_from_disk(str(folder / name)) for name in stored["counts"]})
    return splits, stored["counts"], stored["task_state"]


def store(key: str, splits: DatasetDict, counts: dict[str, dict[str, int]], task_state: dict[str, Any]) -> None:
    """Write the encoded splits as a sealed cache entry (a reader never sees half of one)."""

    def write(partial: Path) -> None:
        quiet = not datasets.utils.are_progress_bars_disabled()
        if quiet:
            datasets.disable_progress_bars()  # a cache write is no step of the run worth a bar
        try:
            for name, split in splits.items():
                split.save_to_disk(str(partial / name))
        finally:
            if quiet:
                datasets.enable_progress_bars()
        (partial / COUNTS).write_text(json.dumps({"counts": counts, "task_state": task_state}))

    write_entry(cache_root("encoded") / key, write, "encoded-splits")
