"""Entity-level precision, recall and F1 of BIO / IOB2 / BIOES tag sequences, as `seqeval` computes them."""

import datasets
import evaluate
from seqeval.metrics import classification_report

AVERAGES = ("micro avg", "macro avg", "weighted avg")


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
        report = classification_report(references, predictions, output_dict=True, zero_division=0)
        micro = report.get("micro avg", {"precision": 0.0, "recall": 0.0, "f1-score": 0.0})
        scores = {
            "entity_precision": micro["precision"],
            "entity_recall": micro["recall"],
            "entity_f1": micro["f1-score"],
        }
        for entity_type, row in report.items():
            if entity_type not in AVERAGES:
                scores[f"entity_f1/{entity_type}"] = row["f1-score"]
        return scores
