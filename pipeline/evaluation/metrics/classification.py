"""Base of the metric scripts that score single-label classes (integer class ids); the scores themselves are the
plain functions of `scores`. `evaluate` copies each metric script into its module cache, so the scripts import
this module absolutely."""

from __future__ import annotations

import datasets
import evaluate


class ClassificationMetric(evaluate.Metric):
    """Base of the project's metric scripts: integer class ids in, one score out."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=(self.__doc__ or "").strip(),
            citation="",
            inputs_description="predictions, references: lists of integer class ids",
            features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
        )
