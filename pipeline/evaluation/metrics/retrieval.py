"""`ndcg@10`, `mrr@10`, `recall@1`, `recall@10`: retrieval measures from the rank of each query's relevant document."""

import datasets
import evaluate

import pipeline.evaluation.metrics.scores as scores


class Retrieval(evaluate.Metric):
    """Retrieval measures of one relevant document per query, from its rank (1 = first) among the documents."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=(self.__doc__ or "").strip(),
            citation="",
            inputs_description="predictions: the relevant document's rank per query (1 = first); references: unused",
            features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
        )

    def _compute(self, predictions, references, measure="ndcg", k=10):
        return scores.retrieval(predictions, references, measure, k)
