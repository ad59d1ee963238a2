"""The data of an experiment: the raw splits a recipe names (checked against the task), limited as it says, then
encoded by the task's adapter (or read from the encoding cache), with what a reader of the predictions should see
of each evaluated row."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from accelerate import Accelerator
from datasets import DatasetDict
from transformers import PreTrainedTokenizerBase

from pipeline.data.sources import load_splits
from pipeline.errors import PipelineError
from pipeline.experiment import encoding_cache
from pipeline.families.base import TokenFeatures
from pipeline.recipe.schema import Recipe
from pipeline.tasks.base import REFERENCE, Task

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EncodedData:
    """splits: tokenized, with `labels`; counts: per split, what encoding altered (empty, truncated...);
    display: per eval split, what to show of each row beside its prediction (its text or words); examples: per eval
    split, each row's identity (`Task.example_ids`), which its records carry."""

    splits: DatasetDict
    collator: Callable[[list[dict]], dict]  # the task's (`Task.make_collator`)
    counts: dict[str, dict[str, int]]
    display: dict[str, list[dict[str, Any]] | None]
    examples: dict[str, list[str]]


def raw_splits(recipe: Recipe, task: Task, wanted: list[str]) -> tuple[DatasetDict, dict[str, int]]:
    """The raw splits named in `wanted`, with the task's columns and values checked; also the rows left out per
    split for a missing label."""
    raw, dropped = load_splits(recipe.data, recipe.task, recipe.eval.splits)
    task.see_source(raw)
    missing = [name for name in wanted if name not in raw]
    if missing:
        raise PipelineError(f"no split {missing} in the data (it has {sorted(raw)})", field="eval.splits")
    raw = DatasetDict({name: raw[name] for name in wanted})
    task.check_columns(raw)
    if recipe.data.train_split in recipe.eval.splits:
        log.warning(
            "eval.splits includes the training split '%s': its scores measure fit, not generalisation",
            recipe.data.train_split,
        )
    return raw, {name: dropped.get(name, 0) for name in wanted}


def encode_splits(
    recipe: Recipe,
    task: Task,
    raw: DatasetDict,
    tokenizer: PreTrainedTokenizerBase,
    max_length: int,
    features: TokenFeatures,
    accelerator: Accelerator,
) -> tuple[DatasetDict, dict[str, dict[str, int]]]:
    """Tokenize every split, or read them from the encoding cache (the runs of a sweep encode the same texts
    alike); the main process first, so the others read what it stored. Returns the counts too. The task's reference
    rows (`Task.reference_split`) are encoded and cached with the splits, and handed to the task, not returned."""
    reference = task.reference_split()
    if reference is not None:
        raw = DatasetDict({**raw, REFERENCE: reference})
    key = encoding_cache.encoding_key(task, raw, tokenizer, max_length, features, recipe.data.train_split)
    with accelerator.main_process_first():
        cached = encoding_cache.load(key)
        if cached is not None:
            encoded, counts, state = cached
            task.restore_encoding_state(state)
        else:
            encoded, counts = {}, {}
            for name, split in raw.items():
                for_training = name == recipe.data.train_split
                encoded[name], counts[name] = task.encode(
                    split, tokenizer, max_length, name, features, for_training=for_training
                )
            if accelerator.is_main_process:
                encoding_cache.store(key, DatasetDict(encoded), counts, task.encoding_state())
    if reference is not None:
        task.use_reference(encoded.pop(REFERENCE))
        counts.pop(REFERENCE)
    warn_altered(counts, max_length)
    return DatasetDict(encoded), counts


def warn_altered(counts: dict[str, dict[str, int]], max_length: int) -> None:
    """One line for every split together: how many texts encoding truncated, and how many were empty."""
    said = []
    for key, what in (("truncated", f"truncated to {max_length} tokens"), ("empty_texts", "empty")):
        per_split = [f"{counts[name][key]} {name}" for name in counts if counts[name][key]]
        if per_split:
            said.append(f"{what}: {', '.join(per_split)}")
    if said:
        log.warning("texts %s (counts in input_layers.json)", "; ".join(said))


def encoded_data(
    recipe: Recipe,
    task: Task,
    raw: DatasetDict,
    tokenizer: PreTrainedTokenizerBase,
    max_length: int,
    features: TokenFeatures,
    accelerator: Accelerator,
) -> EncodedData:
    """The encoded splits with their collator, what to display of each evaluated row and its identity; with
    `task.lengths`, each eval split also encoded at each length, as `SPLIT@LENGTH` (a language model packs it)."""
    splits, counts = encode_splits(recipe, task, raw, tokenizer, max_length, features, accelerator)
    evaluated = DatasetDict({name: raw[name] for name in recipe.eval.splits})
    for length in recipe.task.scored_lengths():
        at_length = DatasetDict({f"{name}@{length}": split for name, split in evaluated.items()})
        packed, packed_counts = encode_splits(recipe, task, at_length, tokenizer, length, features, accelerator)
        short = {name: count["tokens"] for name, count in packed_counts.items() if count.get("tokens", length) < length}
        if short:  # no block of that length: a "perplexity@LENGTH" would score shorter ones under its name
            name, tokens = next(iter(short.items()))
            raise PipelineError(
                f"{length}: split '{name.rpartition('@')[0]}' holds {tokens} tokens, not one block of {length}; use "
                f"lengths up to {tokens}",
                field="task.lengths",
            )
        splits.update(packed)
        counts.update(packed_counts)
    collator = task.make_collator(tokenizer.pad_token_id, features.pad_values)
    display = {name: task.display_rows(raw[name]) for name in recipe.eval.splits}
    examples = {name: task.example_ids(raw[name]) for name in recipe.eval.splits}
    return EncodedData(splits, collator, counts, display, examples)
