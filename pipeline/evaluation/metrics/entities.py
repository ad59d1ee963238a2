"""Entity-level precision, recall and F1 of BIO / IOB2 / BIOES tag sequences, as `seqeval` computes them."""

import datasets
import evaluate

import pipeline.evaluation.metrics.scores as scores


class EntityScores(evaluate.Metric):
    """Entities are spans of tags (B-PER I-PER ...); a predicted entity counts only when its span and type both match
    (seqeval's default, conlleval-compatible mode). Micro-averaged over all entities, and F1 per entity type."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=(self.__doc__ or "").strip(),
            citation="seqeval: https://github.com/chakki-works/seqeval",
            inputs_description="predictions, references: one list of tag strings per sentence",
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("string")),
                    "references": datasets.Sequence(datasets.Value("string")),
                }
            ),
        )

    def _compute(self, predictions, references):
        return scores.entities(predictions, references)
