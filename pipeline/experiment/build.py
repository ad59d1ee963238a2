"""Building an experiment from a recipe: the process group, the task's adapter, the data, the tokenizer and model
(with layer surgery and policies), the metrics. `build_experiment` (for training) and `build_evaluation` (for
re-scoring a saved model) raise `PipelineError` on bad input before any output exists; what they return is frozen,
and the applications (train, eval, inspect, diagnose) read it without changing it.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType
from datasets import DatasetDict
from transformers import AutoConfig, PreTrainedModel, PreTrainedTokenizerBase

from pipeline.data.sources import limit_splits
from pipeline.errors import PipelineError, unusable
from pipeline.evaluation.metrics import LoadedMetric, load_metric
from pipeline.experiment.data import EncodedData, encoded_data, raw_splits
from pipeline.experiment.modeling import (
    add_recipe_tokens,
    build_model,
    load_tokenizer,
    original_tokenizer,
    resolve_max_length,
)
from pipeline.experiment.report import InputLayerReport
from pipeline.experiment.runtime import Runtime, start_runtime
from pipeline.families.base import Family
from pipeline.families.registry import family_named
from pipeline.recipe.schema import Recipe
from pipeline.surgery.operate import SurgeryContext, SurgeryReport, UnfreezeSchedule, check_vocabulary, operate
from pipeline.tasks.base import Task
from pipeline.tasks.registry import build_task
from pipeline.vocabulary.added import AddedTokens
from pipeline.vocabulary.usage import tokenization_stats

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Experiment:
    """Everything a run needs, built and checked before the run folder is created.

    model: the model with its task head, after surgery and policies (training changes its weights, nothing else);
    input_report: what each input layer is, vector coverage and data counts (`input_layers.json`);
    unfreeze_schedule: parameters frozen now and unfrozen at a step or epoch;
    skips_unread_positions: the last block computes only the positions the head reads."""

    recipe: Recipe
    family: Family
    runtime: Runtime
    task: Task
    tokenizer: PreTrainedTokenizerBase
    model: PreTrainedModel
    data: EncodedData
    metrics: list[LoadedMetric]
    max_length: int
    input_report: InputLayerReport
    unfreeze_schedule: UnfreezeSchedule
    skips_unread_positions: bool

    @property
    def accelerator(self) -> Accelerator:
        return self.runtime.accelerator

    def scheduled_parameters(self) -> list[torch.nn.Parameter]:
        """Parameters frozen now but unfrozen at a scheduled step or epoch (the optimizer holds them from the start)."""
        return [p for params in self.unfreeze_schedule.values() for p in params]


def surgery_context(
    recipe: Recipe,
    family: Family,
    accelerator: Accelerator,
    texts: list[str],
    original: PreTrainedTokenizerBase | None,
    added: tuple[PreTrainedTokenizerBase, AddedTokens] | None,
) -> SurgeryContext:
    """What surgery needs of the recipe and the run besides the model and the tokenizer."""
    fsdp = accelerator.state.fsdp_plugin if accelerator.distributed_type == DistributedType.FSDP else None
    return SurgeryContext(
        family=family, seed=recipe.train.seed, pretrained=recipe.model.config is None,
        max_length=recipe.model.max_length, texts=texts, original=original, add_tokens=recipe.model.add_tokens,
        added=added, fsdp=fsdp, processes=accelerator.num_processes,
    )  # fmt: skip


def check_sizes(
    recipe: Recipe, task: Task, tokenizer: PreTrainedTokenizerBase, max_length: int, train_examples: int
) -> None:
    """Refuse what cannot be honoured: a length with no room for text, a batch larger than the training set."""
    reserved = task.reserved_tokens(tokenizer)
    if max_length <= reserved:
        raise PipelineError(
            f"{max_length} leaves no room for text: each input needs {reserved} token(s) beside it",
            field="model.max_length",
        )
    if recipe.train.batch_size > train_examples:
        raise PipelineError(
            f"{recipe.train.batch_size} examples per step, but the training split has only {train_examples}",
            field="train.batch_size",
        )


def check_lengths(recipe: Recipe, family: Family, model: PreTrainedModel) -> None:
    """`task.lengths` past a learned position table cannot be scored (a rotation extrapolates; a table has no rows)."""
    limit = family.position_limit(model)
    lengths = recipe.task.scored_lengths()
    if lengths and not family.rotary and limit is not None and max(lengths) > limit:
        raise PipelineError(
            f"{max(lengths)} exceeds the model's {limit} positions (extend the table first: "
            "layers.positions: {policy: replace, init: extend, max_positions: ...})",
            field="task.lengths",
        )


def build_metrics(recipe: Recipe, task: Task) -> list[LoadedMetric]:
    """The recipe's metrics (its task's defaults were filled in at load), or, where the task chooses them from the
    data (token classification), the task's choice; loaded for the task's kinds of output."""
    names = recipe.eval.metrics if recipe.eval.metrics is not None else task.default_metrics()
    try:
        return [load_metric(name, recipe.task.metric_inputs) for name in names]
    except Exception as error:  # evaluate raises many types (network, import, file); all mean "unusable metric"
        raise unusable("cannot load metric", error, field="eval.metrics") from None


def skip_unread_positions(recipe: Recipe, family: Family, model: PreTrainedModel) -> bool:
    """`train.skip_unread_positions`: whether the model now computes only the positions its head reads."""
    if not recipe.train.skip_unread_positions:
        return False
    why_not = family.compute_read_positions_only(model)
    if why_not is not None:
        log.info("every position of the last block is computed: %s", why_not)
    return why_not is None


def input_report(
    recipe: Recipe,
    surgery: SurgeryReport,
    data: EncodedData,
    dropped: dict[str, int],
    vocabulary: dict[str, Any] | None,
) -> InputLayerReport:
    """What `input_layers.json` holds: each input layer's source, the data counts, vector coverage, the vocabulary."""
    counts = {name: dict(values) for name, values in data.counts.items()}
    if recipe.data.drop_missing_labels:
        for name, count in dropped.items():
            counts[name]["dropped_missing_labels"] = count
    coverage = surgery.coverage(data.splits[recipe.data.train_split]["input_ids"])
    return InputLayerReport(counts, surgery, vocabulary, coverage)


def build_experiment(recipe: Recipe, built_tokenizer: Path | None = None) -> Experiment:
    """Data, tokenizer, model (with layer surgery and policies) and metrics for training.

    built_tokenizer: where a resumed run saved the tokenizer it built (`model.tokenizer: {build: ...}`)."""
    runtime = start_runtime(recipe)
    family = family_named(recipe.model.family)
    task = build_task(recipe, family)
    train_split = recipe.data.train_split
    raw, dropped = raw_splits(recipe, task, list(dict.fromkeys([train_split, *recipe.eval.splits])))
    task.fit_labels(raw[train_split])
    raw = limit_splits(recipe.data, raw)
    texts = task.texts(raw[train_split])
    tokenizer = load_tokenizer(recipe.model, family, texts, built_tokenizer)
    original = original_tokenizer(recipe, family)
    for each in (tokenizer, original):
        if each is not None:
            task.prepare_tokenizer(each)
    additions = add_recipe_tokens(recipe.model, tokenizer, texts)
    model = build_model(
        recipe.model, family, task.auto_class, tokenizer, task.head_kwargs(), recipe.replaces_vocabulary()
    )
    task.prepare_model(model)
    context = surgery_context(recipe, family, runtime.accelerator, texts, original, additions)
    surgery = operate(model, tokenizer, recipe.layers, context)
    max_length = resolve_max_length(recipe.model, family.position_limit(model), tokenizer)
    check_lengths(recipe, family, model)
    data = encoded_data(recipe, task, raw, tokenizer, max_length, family.token_features(model), runtime.accelerator)
    check_sizes(recipe, task, tokenizer, max_length, len(data.splits[train_split]))
    vocabulary = None
    if original is not None:
        vocabulary = {
            **(surgery.report.transfer or {"new_vocabulary": len(tokenizer), "old_vocabulary": len(original)}),
            "old_tokenizer": tokenization_stats(original, texts),
            "new_tokenizer": tokenization_stats(tokenizer, texts),
        }
    return Experiment(
        recipe=recipe, family=family, runtime=runtime, task=task, tokenizer=tokenizer, model=model, data=data,
        metrics=build_metrics(recipe, task), max_length=max_length,
        input_report=input_report(recipe, surgery.report, data, dropped, vocabulary),
        unfreeze_schedule=surgery.schedule,
        skips_unread_positions=skip_unread_positions(recipe, family, model),
    )  # fmt: skip


def build_evaluation(recipe: Recipe, model_dir: Path) -> Experiment:
    """The eval splits and a saved fine-tuned model (its label order reused) for re-scoring.

    A saved run already holds its replaced layers as plain tables, so no surgery or policy applies.
    """
    runtime = start_runtime(recipe)
    family = family_named(recipe.model.family)
    task = build_task(recipe, family)
    raw = limit_splits(recipe.data, raw_splits(recipe, task, list(dict.fromkeys(recipe.eval.splits)))[0])
    task.use_labels({int(k): v for k, v in AutoConfig.from_pretrained(model_dir).id2label.items()})
    saved = recipe.model.model_copy(
        update={"name_or_path": str(model_dir), "tokenizer": None, "config": None, "revision": None}
    )
    tokenizer = load_tokenizer(saved, family)
    task.prepare_tokenizer(tokenizer)
    model = build_model(saved, family, task.auto_class, tokenizer, task.head_kwargs())
    task.prepare_model(model)
    check_vocabulary(model, tokenizer)
    max_length = resolve_max_length(saved, family.position_limit(model), tokenizer)
    data = encoded_data(recipe, task, raw, tokenizer, max_length, family.token_features(model), runtime.accelerator)
    return Experiment(
        recipe=recipe, family=family, runtime=runtime, task=task, tokenizer=tokenizer, model=model, data=data,
        metrics=build_metrics(recipe, task), max_length=max_length, input_report=InputLayerReport(data.counts),
        unfreeze_schedule={}, skips_unread_positions=skip_unread_positions(recipe, family, model),
    )  # fmt: skip


def with_splits(data: EncodedData, splits: DatasetDict) -> EncodedData:
    """The same data with other encoded splits (numbered for the feature cache): a new value, the old one unchanged."""
    return dataclasses.replace(data, splits=splits)
