"""Base of the metric scripts that score predicted numbers (regression), shared by `correlation` and
`regression_errors`. `evaluate` copies each metric script into its module cache, so they import this absolutely."""

import datasets
import evaluate


class ValueMetric(evaluate.Metric):
    """A metric of one predicted and one true number per example."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=(self.__doc__ or "").strip(),
            citation="",
            inputs_description="predictions, references: one number per example",
            features=datasets.Features(
                {"predictions": datasets.Value("float64"), "references": datasets.Value("float64")}
            ),
        )
