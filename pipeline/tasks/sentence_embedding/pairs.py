"""A split's pairs as the recipe's `task` section names them, its distinct documents, and the rank of each query's
own document (no torch): what the adapter encodes and scores and the classical baselines search."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
from datasets import Dataset, DatasetDict

from pipeline.tasks.sentence_embedding.section import SentenceEmbeddingTask


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def pairs_of(cfg: SentenceEmbeddingTask, split: Dataset) -> dict[str, list[Any]]:
    """`anchor` and `positive` texts per row (from their columns, or a text's first line and the rest), and
    `negative` and `score` where the recipe names them."""
    if cfg.pairs_from_first_line:
        heads = [_text(text).strip().partition("\n") for text in split[cfg.pairs_from_first_line]]
        pairs = {"anchor": [head.strip() for head, _, _ in heads], "positive": [rest.strip() for *_, rest in heads]}
    else:
        columns = {"anchor": cfg.anchor_column, "positive": cfg.positive_column}
        pairs = {name: [_text(text) for text in split[column]] for name, column in columns.items()}
    if cfg.negative_column:
        pairs["negative"] = [_text(text) for text in split[cfg.negative_column]]
    if cfg.score_column:
        pairs["score"] = [float(value) for value in split[cfg.score_column]]
    return pairs


def distinct(keys: Sequence[Hashable]) -> tuple[list[int], list[int]]:
    """The row of each distinct key's first occurrence (in first-seen order: the documents), and each row's column
    among them (its document)."""
    column: dict[Hashable, int] = {}
    rows = []
    for row, key in enumerate(keys):
        if key not in column:
            column[key] = len(rows)
            rows.append(row)
    return rows, [column[key] for key in keys]


def documents_of(positives: list[str]) -> tuple[list[str], list[int]]:
    """The distinct positives (the documents a query searches, in first-seen order) and each pair's document."""
    rows, columns = distinct(positives)
    return [positives[row] for row in rows], columns


def collection_of(cfg: SentenceEmbeddingTask, source: DatasetDict) -> list[str]:
    """The distinct positives of every split of the data (splits by name, then rows): the documents the queries of
    `documents: collection` search. A split without the task's columns adds nothing."""
    positives = []
    for name in sorted(source):
        # A split without them (one the run never reads, or a broken one) adds nothing: `check_columns` vets the
        # splits the run reads, in one line.
        if set(cfg.columns()) <= set(source[name].column_names):
            positives += pairs_of(cfg, source[name])["positive"]
    return documents_of(positives)[0]


def searched_documents(positives: list[str], collection: list[str]) -> tuple[list[str], list[int]]:
    """The documents a split's queries search: its distinct positives and the collection's (a document once), and
    each query's own among them."""
    documents, columns = documents_of(positives + collection)
    return documents, columns[: len(positives)]


def ranks_from_scores(scores: np.ndarray, relevant: list[int], anchors: Sequence[Hashable] | None = None) -> list[int]:
    """(queries, documents) scores and each query's relevant document: its rank (1 = first; ties count against it).

    anchors: each query's anchor (text or key). An anchor with several positives is several queries, each ranking
    its own positive; the other positives of the same anchor are relevant too, so they are not counted against it
    (the filtered rank: without it such a query could never rank first, and recall@1 of an anchor with two
    positives would be at most 0.5)."""
    own = scores[np.arange(len(relevant)), relevant]
    ranks = (scores >= own[:, None]).sum(axis=1).astype(int)
    if anchors is not None:
        positives: dict[Hashable, set[int]] = {}
        for anchor, document in zip(anchors, relevant, strict=True):
            positives.setdefault(anchor, set()).add(document)
        for query, (anchor, document) in enumerate(zip(anchors, relevant, strict=True)):
            others = sorted(positives[anchor] - {document})
            if others:
                ranks[query] -= int((scores[query, others] >= own[query]).sum())
    return ranks.tolist()
