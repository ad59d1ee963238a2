"""`sentence-embedding`: a bi-encoder trained with in-batch negatives (pairs) or CoSENT (scored pairs), scored by
retrieval (nDCG@10, MRR@10, recall@1/10) or by correlation, saved as a sentence-transformers model.

Its recipe section (`section`), prediction record and compared scores (`records`), and its adapter (`adapter`,
with `losses` and `export`, imported when a run needs it)."""

from __future__ import annotations

from pipeline.tasks.sentence_embedding.records import COMPARED, EmbeddingRecord
from pipeline.tasks.sentence_embedding.section import SentenceEmbeddingTask
from pipeline.tasks.task_type import TaskType


def _adapter() -> type:
    from pipeline.tasks.sentence_embedding.adapter import SentenceEmbedding

    return SentenceEmbedding


TASK = TaskType("sentence-embedding", SentenceEmbeddingTask, _adapter, EmbeddingRecord, COMPARED)
