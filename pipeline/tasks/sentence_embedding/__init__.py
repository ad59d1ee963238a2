"""`sentence-embedding`: a bi-encoder trained with in-batch negatives (pairs) or CoSENT (scored pairs), scored by
retrieval (nDCG@10, MRR@10, recall@1/10) or by correlation, saved as a sentence-transformers model.

Its recipe section (`section`), prediction record and compared scores (`records`), and its adapter (`adapter`,
with `pairs`, `losses` and `export`, imported when a run needs it), and its classical baselines (`classical`: TF-IDF
and BM25 retrieval, the untrained encoder, the mean of its token-table rows)."""

from __future__ import annotations

from pipeline.lazy import Lazy
from pipeline.tasks.sentence_embedding.records import COMPARED, EmbeddingRecord
from pipeline.tasks.sentence_embedding.section import SentenceEmbeddingTask
from pipeline.tasks.task_type import TaskType

TASK = TaskType(
    "sentence-embedding",
    SentenceEmbeddingTask,
    Lazy("pipeline.tasks.sentence_embedding.adapter:SentenceEmbedding"),
    EmbeddingRecord,
    COMPARED,
    Lazy("pipeline.tasks.sentence_embedding.classical:classical_baselines"),
    {"tfidf": None, "bm25": ("bm25s", "retrieval"), "frozen": None, "static": None, "static:": ("gensim", "vectors")},
    pipeline_tag="sentence-similarity",
)
