"""What `sentence-embedding` writes per query (retrieval) or per pair (scored pairs), and the scores a comparison
of runs tests from it."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.evaluation.counts import CountedMetric, ratio, ratio_counts
from pipeline.evaluation.metrics.scores import retrieval_gain
from pipeline.tasks.records import PredictionRecord


@dataclass
class EmbeddingRecord(PredictionRecord):
    """Retrieval: the rank (1 = first) of the query's relevant document among the split's documents, and how many
    there were. Scored pairs: the cosine similarity of the pair and its gold score (no rank)."""

    rank: int | None = None
    documents: int | None = None
    similarity: float | None = None
    label: float | None = None

    def setting(self) -> str | None:
        return None if self.rank is None else f"{self.documents} documents"

    def example_score(self) -> tuple[str, float, int]:
        if self.rank is None:
            return "absolute difference of similarity and score", abs(float(self.similarity) - float(self.label)), 1
        return "reciprocal rank", 1.0 / self.rank, 1


def _measure(name: str, measure: str, k: int) -> CountedMetric:
    """A retrieval measure as a mean over queries (what a comparison pairs per query)."""
    return CountedMetric(name, lambda r, c: ratio_counts([(retrieval_gain(x.rank, measure, k), 1.0) for x in r]), ratio)


COMPARED = (
    _measure("ndcg@10", "ndcg", 10),
    _measure("mrr@10", "mrr", 10),
    _measure("recall@1", "recall", 1),
    _measure("recall@10", "recall", 10),
)
