"""`sequence-classification`: one label per text or text pair (topic, sentiment, genre...).

Its recipe section (`section`), prediction record and compared scores (`records`) and its adapter
(`adapter`, imported when a run needs it), and its
classical baselines (`classical`: TF-IDF, Doc2Vec, a frozen encoder's mean vector)."""

from __future__ import annotations

from pipeline.lazy import Lazy
from pipeline.tasks.sequence_classification.records import COMPARED, ClassificationRecord
from pipeline.tasks.sequence_classification.section import SequenceClassificationTask
from pipeline.tasks.task_type import TaskType

TASK = TaskType(
    "sequence-classification",
    SequenceClassificationTask,
    Lazy("pipeline.tasks.sequence_classification.adapter:SequenceClassification"),
    ClassificationRecord,
    COMPARED,
    Lazy("pipeline.tasks.sequence_classification.classical:classical_baselines"),
    {"tfidf": None, "doc2vec": ("gensim", "vectors"), "frozen-mean": None},
    pipeline_tag="text-classification",
)
