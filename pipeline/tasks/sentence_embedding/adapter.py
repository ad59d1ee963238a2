"""`sentence-embedding`: a bi-encoder. The recipe's encoder (its family's bare model, every input-layer policy
applied to it as in other tasks), a pooling and an optional normalisation give one vector per text; pairs train
with in-batch negatives and are scored by retrieval, scored pairs train with CoSENT and are scored by the
correlation of cosine similarity and score.

A query searches the whole collection (`documents: collection`: the distinct positives of every split of the data,
encoded once beside the splits as the task's reference rows and embedded once per state of the weights) or its own
split's positives.

A batch holds each pair's texts in groups (anchors, positives, any hard negatives), each padded to its own longest
text (a title is not padded to its article's length); the encoder runs once per group, and one backward pass
follows (as sentence-transformers does, which DDP allows).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from datasets import Dataset, DatasetDict
from torch.utils.data import DataLoader
from transformers import AutoModel, PreTrainedTokenizerBase

from pipeline.errors import PipelineError
from pipeline.evaluation.metrics import LoadedMetric, compute_all
from pipeline.families.base import NO_TOKEN_FEATURES, Family, TokenFeatures
from pipeline.recipe.schema import EvalConfig
from pipeline.tasks.base import REFERENCE, Records, Scores, TaskDefaults, require_columns
from pipeline.tasks.sentence_embedding.export import write_sentence_transformers_files
from pipeline.tasks.sentence_embedding.losses import cosent_loss, in_batch_negatives_loss, pool
from pipeline.tasks.sentence_embedding.pairs import collection_of, distinct, pairs_of, ranks_from_scores
from pipeline.tasks.sentence_embedding.records import EmbeddingRecord
from pipeline.tasks.sentence_embedding.section import SentenceEmbeddingTask

GROUPS = ("", "positive_", "negative_")  # the column prefixes of a pair's texts, in the order a batch stacks them
KEYS = ("pair_key", "doc_key")  # per pair: a digest of its anchor and of its positive text (duplicates, documents)


def text_key(text: str) -> int:
    """A 60-bit digest of a text (fits int64): equal texts, equal keys."""
    return int(hashlib.sha256(text.encode()).hexdigest()[:15], 16)


class PairCollator:
    """Encoded pairs → one batch: each text of a pair (anchor, positive, negative: the column prefixes of `GROUPS`)
    padded on the right to the longest of its own group (short titles are not padded to their articles' length),
    with `pair_key`, `doc_key` and any `labels` (scores) per pair."""

    def __init__(self, pad_token_id: int):
        self.pad_values = {"input_ids": pad_token_id, "attention_mask": 0, "token_type_ids": 0}

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        batch = {}
        for group in (group for group in GROUPS if f"{group}input_ids" in features[0]):
            longest = max(len(feature[f"{group}input_ids"]) for feature in features)
            for key, pad in self.pad_values.items():
                if f"{group}{key}" in features[0]:
                    rows = [feature[f"{group}{key}"] for feature in features]
                    padded = [row + [pad] * (longest - len(row)) for row in rows]
                    batch[f"{group}{key}"] = torch.tensor(padded, dtype=torch.long)
        for key in (*KEYS, "labels"):
            if key in features[0]:
                batch[key] = torch.tensor([feature[key] for feature in features])
        return batch


class SentenceEmbedding(TaskDefaults):
    """The adapter of `sentence-embedding` (see the module's docstring)."""

    auto_class = AutoModel  # the family's bare encoder: its last hidden states are pooled
    labels_per_token = False
    body_outputs_cacheable = False  # the loss reads every position of every text, not a head's input

    def __init__(self, cfg: SentenceEmbeddingTask, family: Family, eval_cfg: EvalConfig):
        self.cfg, self.family = cfg, family
        self.eval_batch_size = eval_cfg.batch_size
        self.collection: list[str] = []  # the texts of `documents: collection`, from `see_source`
        self.reference: Dataset | None = None  # the collection encoded (`use_reference`), longest first
        self.pad_token_id = 0
        # the collection's vectors and keys, and the state of the weights they were embedded with (`collection_vectors`)
        self.embedded: tuple[tuple[int, float, float], torch.Tensor, list[int]] | None = None

    # --- data ---------------------------------------------------------------------------------------------------
    def check_columns(self, splits: DatasetDict) -> None:
        cfg = self.cfg
        wanted = (
            {"task.pairs_from_first_line": cfg.pairs_from_first_line}
            if cfg.pairs_from_first_line
            else {"task.anchor_column": cfg.anchor_column, "task.positive_column": cfg.positive_column}
        )
        for field in ("negative_column", "score_column"):
            if getattr(cfg, field) is not None:
                wanted[f"task.{field}"] = getattr(cfg, field)
        require_columns(splits, wanted)

    def see_source(self, source: DatasetDict) -> None:
        """With `documents: collection`, keep the distinct positives of every split (`pairs.collection_of`)."""
        if self.cfg.documents == "collection" and self.cfg.score_column is None:
            self.collection = collection_of(self.cfg, source)

    def reference_split(self) -> Dataset | None:
        return Dataset.from_dict({"document": self.collection}) if self.collection else None

    def use_reference(self, encoded: Dataset) -> None:
        lengths = [len(ids) for ids in encoded["positive_input_ids"]]
        self.reference = encoded.select(sorted(range(len(lengths)), key=lambda row: -lengths[row]))

    def pairs(self, split: Dataset) -> dict[str, list[Any]]:
        """The split's pairs (`pairs.pairs_of`)."""
        return pairs_of(self.cfg, split)

    def texts(self, split: Dataset) -> list[str]:
        """Every text of every pair (for building a tokenizer or training vectors)."""
        pairs = self.pairs(split)
        return [text for name in ("anchor", "positive", "negative") for text in pairs.get(name, [])]

    def display_rows(self, split: Dataset) -> list[dict[str, Any]] | None:
        """What a reader of the predictions needs of each pair: the anchor, and the positive's opening."""
        pairs = self.pairs(split)
        return [{"anchor": anchor, "positive": positive[:200]}
                for anchor, positive in zip(pairs["anchor"], pairs["positive"], strict=True)]  # fmt: skip

    def fit_labels(self, train: Dataset) -> None:
        """No labels to learn; scored pairs must not all hold one score (CoSENT learns from their order: one score
        gives loss 0 at every step)."""
        scores = set(self.pairs(train).get("score", []))
        if self.cfg.score_column is not None and len(scores) == 1:
            raise PipelineError(
                f"column '{self.cfg.score_column}' holds the same score ({scores.pop():g}) in every training pair: "
                "CoSENT learns from the order of the scores, so it would learn nothing",
                field="task.score_column",
            )

    def use_labels(self, id2label: dict[int, str]) -> None:
        """Nothing to reuse."""

    def head_kwargs(self) -> dict[str, Any]:
        return {}

    def default_metrics(self) -> list[str]:
        cfg = self.cfg
        return list(cfg.correlation_metrics if cfg.score_column else cfg.retrieval_metrics)

    def prepare_model(self, model: torch.nn.Module) -> None:
        """A bare BERT's pooler (dense + tanh on the first token) is read by no pooling here: left in, its parameters
        would get no gradient, which DDP refuses. The saved model lacks it; sentence-transformers never reads it."""
        if getattr(model, "pooler", None) is not None:
            model.pooler = None

    def reserved_tokens(self, tokenizer: PreTrainedTokenizerBase) -> int:
        return tokenizer.num_special_tokens_to_add(pair=False)

    def make_collator(self, pad_token_id: int, pad_values: dict[str, int]) -> PairCollator:
        if pad_values:  # the bi-LSTM's character ids: one per token of every text of the pair
            raise PipelineError(
                "sentence-embedding does not take a family's extra per-token inputs (the bi-LSTM's characters) yet",
                field="model.family",
            )
        self.pad_token_id = pad_token_id  # the collection's loader pads alike
        return PairCollator(pad_token_id)

    def encode(
        self,
        split: Dataset,
        tokenizer: PreTrainedTokenizerBase,
        max_length: int,
        name: str,
        token_features: TokenFeatures = NO_TOKEN_FEATURES,
        for_training: bool = False,
    ) -> tuple[Dataset, dict[str, int]]:
        """Each pair's texts tokenized (truncated to `max_length`, unpadded) under the column prefixes of `GROUPS`,
        with the keys of its anchor and positive and its score (`labels`) where there is one. The reference rows
        (the collection) are documents only: the positive group and `doc_key`."""
        pairs = {"positive": list(split["document"])} if name == REFERENCE else self.pairs(split)
        columns: dict[str, list[Any]] = {}
        truncated, empty = 0, 0
        for group, texts in (
            ("", pairs.get("anchor")),
            ("positive_", pairs["positive"]),
            ("negative_", pairs.get("negative")),
        ):
            if texts is None:
                continue
            encoded = tokenizer(texts, truncation=True, max_length=max_length)
            check_some_tokens(encoded["input_ids"], name, group, self.cfg)
            full = tokenizer(texts, truncation=False, verbose=False)["input_ids"]
            truncated += sum(len(ids) > max_length for ids in full)
            empty += sum(not text.strip() for text in texts)
            for key in ("input_ids", "attention_mask", "token_type_ids"):
                if key in encoded:
                    columns[f"{group}{key}"] = encoded[key]
        if name != REFERENCE and not for_training and "score" not in pairs:
            check_enough_documents(pairs["positive"], self.collection, name)
        if "anchor" in pairs:
            columns["pair_key"] = [text_key(text) for text in pairs["anchor"]]
        columns["doc_key"] = [text_key(text) for text in pairs["positive"]]
        if "score" in pairs:
            columns["labels"] = pairs["score"]
        counts = {"examples": len(split), "empty_texts": empty, "truncated": truncated}
        return Dataset.from_dict(columns), counts

    # --- training and scoring -----------------------------------------------------------------------------------
    def embed(self, model: torch.nn.Module, batch: dict[str, torch.Tensor], group: str = "") -> torch.Tensor:
        """(pairs, width) vectors of one group of a batch's texts (`GROUPS`): the last hidden states, pooled."""
        keys = ("input_ids", "attention_mask", "token_type_ids")
        inputs = {key: batch[f"{group}{key}"] for key in keys if f"{group}{key}" in batch}
        hidden = model(**inputs)[0]  # (pairs, seq, width): the last hidden states
        vectors = pool(hidden, inputs["attention_mask"], self.cfg.pooling)
        return torch.nn.functional.normalize(vectors, dim=-1) if self.cfg.normalize else vectors

    def training_loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """In-batch negatives over the batch's pairs (CoSENT where pairs carry scores). One forward pass per group
        (anchors, positives, negatives), each padded to its own longest text; one backward pass for all."""
        anchors = self.embed(model, batch)
        candidates = torch.cat(
            [self.embed(model, batch, group) for group in GROUPS[1:] if f"{group}input_ids" in batch]
        )
        if "labels" in batch:
            return cosent_loss(anchors, candidates, batch["labels"].to(anchors.dtype), self.cfg.scale)
        same_anchor = batch["pair_key"][:, None] == batch["pair_key"][None, :]
        return in_batch_negatives_loss(anchors, candidates, same_anchor, self.cfg.scale)

    def evaluate(
        self, accelerator: Accelerator, model: torch.nn.Module, loader: DataLoader, metrics: list[LoadedMetric]
    ) -> tuple[Scores, Records]:
        """Retrieval: every anchor a query over the split's distinct positives (its own the relevant one); one record
        per query. Scored pairs: the correlation of cosine similarity and score; one record per pair."""
        model.eval()
        anchors, positives, doc_keys, anchor_keys, labels = [], [], [], [], []
        for batch in loader:
            with torch.inference_mode(), accelerator.autocast():
                queries, answers = self.embed(model, batch).float(), self.embed(model, batch, "positive_").float()
            extra = (batch["labels"].float(),) if "labels" in batch else ()
            gathered = accelerator.gather_for_metrics((queries, answers, batch["doc_key"], batch["pair_key"], *extra))
            anchors.append(gathered[0].cpu())
            positives.append(gathered[1].cpu())
            doc_keys += gathered[2].tolist()
            anchor_keys += gathered[3].tolist()
            labels += gathered[4].tolist() if extra else []
        queries, answers = torch.cat(anchors), torch.cat(positives)
        if self.reference is not None and not labels:
            extra, extra_keys = self.collection_vectors(accelerator, model)
            answers, doc_keys = torch.cat([answers, extra]), doc_keys + extra_keys
        if labels:
            similarity = torch.nn.functional.cosine_similarity(queries, answers, dim=-1).tolist()
            records: Records = [EmbeddingRecord(i, similarity=round(s, 6), label=gold)
                                for i, (s, gold) in enumerate(zip(similarity, labels, strict=True))]  # fmt: skip
            return compute_all(metrics, "values", similarity, labels), records
        # the split's own positives come first
        ranks, documents = retrieval_ranks(queries, answers, doc_keys, anchor_keys)
        records = [EmbeddingRecord(i, rank=rank, documents=documents) for i, rank in enumerate(ranks)]
        return compute_all(metrics, "ranks", ranks, [1] * len(ranks)), records

    def collection_vectors(self, accelerator: Accelerator, model: torch.nn.Module) -> tuple[torch.Tensor, list[int]]:
        """(documents, width) vectors of the collection and their keys, over all processes; embedded once per state
        of the weights (the final evaluation scores several splits against the same collection)."""
        with torch.no_grad():  # the weights' sum and sum of squares: any optimizer step changes them
            weights = [parameter.detach().float() for parameter in model.parameters()]
            sums = torch.stack([torch.stack([w.sum(), w.square().sum()]) for w in weights]).sum(0).tolist()
            state = (id(model), *sums)
        if self.embedded is not None and self.embedded[0] == state:
            return self.embedded[1], self.embedded[2]
        loader = DataLoader(self.reference, batch_size=self.eval_batch_size, collate_fn=PairCollator(self.pad_token_id))
        vectors, keys = [], []
        for batch in accelerator.prepare_data_loader(loader):
            with torch.inference_mode(), accelerator.autocast():
                embedded = self.embed(model, batch, "positive_").float()
            gathered = accelerator.gather_for_metrics((embedded, batch["doc_key"]))
            vectors.append(gathered[0].cpu())
            keys += gathered[1].tolist()
        self.embedded = state, torch.cat(vectors), keys
        return self.embedded[1], self.embedded[2]

    def write_model_extras(self, folder: Path, max_length: int) -> None:
        """The files that make the saved model a sentence-transformers model (pooling and normalisation)."""
        write_sentence_transformers_files(folder, self.cfg.pooling, self.cfg.normalize, max_length)


def check_some_tokens(ids: list[list[int]], split: str, group: str, cfg: SentenceEmbeddingTask) -> None:
    """Every text must become at least one token: an empty text has no vector (a decoder, which adds no special
    token, would pool nothing and fail after the whole training run)."""
    empty = [row for row, tokens in enumerate(ids) if not tokens]
    if empty:
        column = {"": "anchor", "positive_": "positive", "negative_": "negative"}[group]
        field = "task.pairs_from_first_line" if cfg.pairs_from_first_line else f"task.{column}_column"
        raise PipelineError(
            f"split '{split}': {len(empty)} {column} text(s) become no token (first: row {empty[0]}); an empty text "
            "has no vector to compare: fill or drop those rows",
            field=field,
        )


def check_enough_documents(positives: list[str], collection: list[str], split: str) -> None:
    """A query must have something to be ranked against: one document to search makes every rank 1."""
    documents = len(set(positives) | set(collection))
    if documents < 2:
        raise PipelineError(
            f"split '{split}': its queries would search {documents} document(s), so every one ranks first and the "
            "scores mean nothing; give pairs with different positives (or documents: collection)",
            field="task.positive_column",
        )


def retrieval_ranks(
    queries: torch.Tensor, answers: torch.Tensor, doc_keys: list[int], anchor_keys: list[int] | None = None
) -> tuple[list[int], int]:
    """queries (n, width); answers (m ≥ n, width), query i's own answer row i, the rest other documents (the
    collection), with the key of each answer's text: the rank (1 = first) of each query's own answer among the
    distinct answers by cosine similarity (ties counted against it; the other positives of the same anchor, by
    `anchor_keys`, not: see `ranks_from_scores`), and how many there are."""
    rows, columns = distinct(doc_keys)
    documents = torch.nn.functional.normalize(answers[rows], dim=-1)  # (documents, width)
    scores = torch.nn.functional.normalize(queries, dim=-1) @ documents.T  # (n, documents)
    return ranks_from_scores(scores.numpy(), columns[: len(queries)], anchor_keys), len(rows)
