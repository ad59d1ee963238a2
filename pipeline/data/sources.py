"""Data adapters: Hub data sets, local csv/json/jsonl/parquet files, folder-per-class text trees.

All of them end as a `DatasetDict`; when the source has only the train split, the recipe's holdout splits are
carved out of it, seeded and stratified by label.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Collection
from pathlib import Path

import datasets
import numpy as np
from datasets import Dataset, DatasetDict

from pipeline.data.checks import check_column_values
from pipeline.data.files import read_files
from pipeline.errors import PipelineError, unusable
from pipeline.paths import file_digest, resolve_local_path
from pipeline.recipe.schema import DEFAULT_HOLDOUT, DataConfig
from pipeline.recipe.tasks import TaskSection

log = logging.getLogger(__name__)


def read_class_folders(root: Path) -> tuple[Dataset, int]:
    """`root/<label>/*.txt` as a data set with `text` and `label` columns, in sorted (label, file) order.

    Returns the data set and the number of files that were not valid UTF-8 (decoded with replacement
    characters rather than dropped).
    """
    texts, labels, undecodable = [], [], 0
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        for file in sorted(folder.glob("*.txt")):
            raw = file.read_bytes()
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                undecodable += 1
                text = raw.decode("utf-8", errors="replace")
            texts.append(text)
            labels.append(folder.name)
    if not texts:
        raise PipelineError(f"no <label>/*.txt files under '{root}'", field="data.folder")
    return Dataset.from_dict({"text": texts, "label": labels}), undecodable


def stratified_holdout(
    data: Dataset, label_column: str | None, fractions: dict[str, float], seed: int, train_split: str
) -> DatasetDict:
    """Split one data set into train plus `fractions` (name → share), keeping each label's share in every split.

    Within each label the examples are shuffled with `seed`; every split gets `round(share × count)` of them
    (at least one when the label has enough examples), the train split the rest. Without a label column the
    whole data set is one stratum.
    """
    rng = np.random.default_rng(seed)
    labels = (
        np.asarray([str(value) for value in data[label_column]]) if label_column else np.zeros(len(data), dtype=str)
    )
    chosen: dict[str, list[int]] = {name: [] for name in [train_split, *fractions]}
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        start = 0
        for name, share in fractions.items():
            take = max(1, round(share * len(members))) if len(members) > len(fractions) else 0
            chosen[name].extend(members[start : start + take].tolist())
            start += take
        chosen[train_split].extend(members[start:].tolist())
    return DatasetDict({name: data.select(sorted(indices)) for name, indices in chosen.items()})


def _load_source(cfg: DataConfig) -> tuple[DatasetDict, dict[str, str]]:
    """The splits as the source has them, and where each split's rows come from (for error messages)."""
    if cfg.hub_id is not None:
        try:
            splits = datasets.load_dataset(cfg.hub_id, cfg.hub_config, revision=cfg.revision)
        except Exception as error:  # the Hub client raises many unrelated types; all mean "cannot load"
            raise unusable(f"cannot load '{cfg.hub_id}'", error, field="data.hub_id") from None
        return splits, dict.fromkeys(splits, f"Hub data set {cfg.hub_id}")
    if cfg.files is not None:
        mapping = {cfg.train_split: cfg.files} if isinstance(cfg.files, str) else cfg.files
        return read_files(
            {split: resolve_local_path(path) for split, path in mapping.items()}, cfg.conll_columns, cfg.csv
        ), dict(mapping)
    folder_data, undecodable = read_class_folders(resolve_local_path(cfg.folder))
    if undecodable:
        log.warning("%d file(s) under %s were not UTF-8; undecodable bytes became U+FFFD", undecodable, cfg.folder)
    return DatasetDict({cfg.train_split: folder_data}), {cfg.train_split: cfg.folder}


def holdouts(cfg: DataConfig, read: Collection[str]) -> dict[str, float]:
    """The splits to carve out of the train split where the data lacks them: those `data.holdout` names (always:
    a later run may read them unseen), or by default a `validation` split only when an eval split (`read`) reads it."""
    if cfg.holdout is not None:
        return dict(cfg.holdout)
    return {"validation": DEFAULT_HOLDOUT} if "validation" in read else {}


def load_splits(cfg: DataConfig, task: TaskSection, read: Collection[str]) -> tuple[DatasetDict, dict[str, int]]:
    """Load the recipe's data as named splits, every value the task reads checked; returns the splits and, per
    split, the rows left out for a missing label (`data.drop_missing_labels`).

    Holdout splits the source lacks (`holdouts`) are carved out of the train split, stratified by
    `data.stratify_by`, else by the task's label column (none: not stratified). `read`: the run's eval splits (which
    evaluation during training and early stopping watch too); the default validation split is carved only when one
    of them reads it, else every training row trains. Either is said in one line.
    """
    splits, sources = _load_source(cfg)
    if cfg.train_split not in splits:
        raise PipelineError(
            f"no split '{cfg.train_split}' in the data (it has {sorted(splits)})", field="data.train_split"
        )
    dropped = {}
    for name in list(splits):
        splits[name], dropped[name] = check_column_values(
            splits[name], name, sources[name], task.columns(), cfg.drop_missing_labels
        )
    carve = {name: share for name, share in holdouts(cfg, read).items() if name not in splits}
    if cfg.holdout is None and "validation" not in splits and "validation" not in carve:
        log.info("no validation split carved: no eval split reads one, so every row of '%s' trains", cfg.train_split)
    if carve:
        stratum = cfg.stratify_by or task.stratify_column()
        if stratum is not None and stratum not in splits[cfg.train_split].column_names:
            raise PipelineError(
                f"column '{stratum}' not in the data (columns: {splits[cfg.train_split].column_names})",
                field="data.stratify_by" if cfg.stratify_by else "task.label_column",
            )
        carved = stratified_holdout(splits[cfg.train_split], stratum, carve, cfg.split_seed, cfg.train_split)
        if len(splits) > 1:
            log.info("the data has no %s split: carved out of '%s' (data.holdout)", " or ".join(carve), cfg.train_split)
        splits = DatasetDict({**splits, **carved})
    for name, split in splits.items():
        if len(split) == 0:
            raise PipelineError(f"split '{name}' is empty", field="data")
    return splits, dropped


def data_fingerprint(cfg: DataConfig) -> dict[str, str]:
    """SHA-256 of every local data file (a folder: of its files' names and contents), or the Hub id and revision:
    what a resumed run must find unchanged."""
    if cfg.hub_id is not None:
        return {"hub": f"{cfg.hub_id}/{cfg.hub_config or ''}@{cfg.revision or 'default'}"}
    if cfg.files is not None:
        mapping = {cfg.train_split: cfg.files} if isinstance(cfg.files, str) else cfg.files
        return {split: file_digest(resolve_local_path(path)) for split, path in mapping.items()}
    root = resolve_local_path(cfg.folder)
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(f"{path.relative_to(root)}\0{file_digest(path)}\n".encode())
    return {"folder": digest.hexdigest()}


def limit_splits(cfg: DataConfig, raw: DatasetDict) -> DatasetDict:
    """`data.max_train_samples` / `max_eval_samples`: a seeded subset of each split (after labels are fitted)."""
    limits = dict.fromkeys(raw, cfg.max_eval_samples) | {cfg.train_split: cfg.max_train_samples}
    return DatasetDict({name: limit_examples(split, limits[name], cfg.split_seed) for name, split in raw.items()})


def limit_examples(split: Dataset, limit: int | None, seed: int) -> Dataset:
    """A seeded random subset of `limit` examples (all of them when limit is None or larger)."""
    if limit is None or limit >= len(split):
        return split
    return split.shuffle(seed=seed).select(range(limit))
