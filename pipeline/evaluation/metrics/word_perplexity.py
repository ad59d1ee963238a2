"""Perplexity per word: exp of the NLL per word of text, pooled over all examples; comparable across tokenizers
(a tokenizer that cuts words into more pieces predicts more, easier tokens, which lowers its perplexity per token)."""

import datasets
import evaluate

import pipeline.evaluation.metrics.scores as scores


class WordPerplexity(evaluate.Metric):
    """Perplexity per word of a language model: exp(Σ summed token NLL / Σ words), the NLL in nats."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=(self.__doc__ or "").strip(),
            citation="",
            inputs_description="predictions: summed token NLL (nats) of each example; references: the words of text "
            "its predicted tokens hold",
            features=datasets.Features(
                {"predictions": datasets.Value("float64"), "references": datasets.Value("float64")}
            ),
        )

    def _compute(self, predictions, references):
        return scores.word_perplexity(predictions, references)
