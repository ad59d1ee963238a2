"""Perplexity: exp of the mean negative log-likelihood per predicted token, pooled over all examples."""

import datasets
import evaluate

import pipeline.evaluation.metrics.scores as scores


class Perplexity(evaluate.Metric):
    """Perplexity of a language model: exp(Σ summed token NLL / Σ predicted tokens), the NLL in nats."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=(self.__doc__ or "").strip(),
            citation="",
            inputs_description="predictions: summed token NLL (nats) of each example; references: its number of "
            "predicted tokens",
            features=datasets.Features(
                {"predictions": datasets.Value("float64"), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions, references):
        return scores.perplexity(predictions, references)
