"""Precision, recall and F1 of multi-label predictions (0/1 vectors over the labels), micro or macro averaged, or
per label."""

import datasets
import evaluate

import pipeline.evaluation.metrics.scores as scores


class MultiLabelScores(evaluate.Metric):
    """`score` (f1, precision or recall) averaged `micro` (over all label decisions) or `macro` (over labels), or,
    with `per_label`, precision, recall and F1 of every label (named by `label_names`)."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=(self.__doc__ or "").strip(),
            citation="",
            inputs_description="predictions, references: one 0/1 vector over the labels per example",
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("int8")),
                    "references": datasets.Sequence(datasets.Value("int8")),
                }
            ),
        )

    def _compute(self, predictions, references, score="f1", average="micro", per_label=False, label_names=None):
        return scores.multilabel(predictions, references, score, average, per_label, label_names)
