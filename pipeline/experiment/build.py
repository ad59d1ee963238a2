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
    check_vocabulary,
    load_tokenizer,
    original_tokenizer,
    resolve_max_length,
)
from pipeline.experiment.runtime import Runtime, start_runtime
from pipeline.families.base import Family
from pipeline.families.registry import family_named
from pipeline.recipe.layers import FinetunedTable, ReplacedTable, Transfer, VectorTable
from pipeline.recipe.schema import Recipe
from pipeline.surgery.policies import UnfreezeSchedule, apply_layer_policies, apply_training_scope
from pipeline.surgery.replace import SurgeryReport, apply_surgery, describe_output_embeddings
from pipeline.surgery.rows import grow_table
from pipeline.surgery.tables import check_per_position_start
from pipeline.surgery.trained_vectors import TrainedVectors, train_vectors
from pipeline.surgery.transplant import transplant_vectors
from pipeline.surgery.vectors import coverage_report
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
    input_report: dict[str, Any]
    unfreeze_schedule: UnfreezeSchedule
    skips_unread_positions: bool

    @property
    def accelerator(self) -> Accelerator:
        return self.runtime.accelerator

    def scheduled_parameters(self) -> list[torch.nn.Parameter]:
        """Parameters frozen now but unfrozen at a scheduled step or epoch (the optimizer holds them from the start)."""
        return [p for params in self.unfreeze_schedule.values() for p in params]


def build_layers(
    recipe: Recipe,
    family: Family,
    accelerator: Accelerator,
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    original: PreTrainedTokenizerBase | None = None,
    added: AddedTokens | None = None,
    trained: TrainedVectors | None = None,
    grown: dict[str, Any] | None = None,
) -> tuple[SurgeryReport, UnfreezeSchedule]:
    """Layer surgery, what trains inside a layer (tie, rows, LoRA), then the freeze / finetune policies; returns
    what surgery did (its report, complete: nothing adds to it later) and the unfreeze schedule.

    original: the pretrained table's tokenizer, when the recipe builds a new one; added: the tokens
    `model.add_tokens` added, and grown: how the table grew for them; trained: static vectors trained on the corpus
    (`train: {...}`)."""
    fresh = recipe.model.config is not None
    report = apply_surgery(
        family, model, tokenizer, recipe.layers, recipe.train.seed, pretrained=not fresh, original=original,
        trained=trained and trained.vectors, positions=recipe.model.max_length,
    )  # fmt: skip
    check_vocabulary(model, tokenizer)
    if report.position_rows and report.position_rows > tokenizer.model_max_length:
        # A longer position table: the tokenizer (saved with the model) must not truncate below it.
        tokenizer.model_max_length = report.position_rows
    report.scope = apply_training_scope(family, model, tokenizer, recipe.layers, added)
    if trained is not None:
        report.scope["trained_vectors"] = trained.report
    if grown is not None:
        report.scope["added_tokens"] = grown
    report.sources["output_embeddings"] = describe_output_embeddings(model, recipe.layers.head.policy)
    schedule = apply_layer_policies(family, model, recipe.layers)
    if "rows" in report.scope and accelerator.distributed_type == DistributedType.FSDP:
        raise PipelineError(
            "rows trains a few rows beside a frozen table, which FSDP would shard apart; train the whole table "
            "(drop rows) or run without FSDP (DDP keeps the rows whole)",
            field="layers.token_embeddings.rows",
        )
    if schedule and accelerator.num_processes > 1:
        raise PipelineError(
            "gradual unfreezing (unfreeze_at_step / unfreeze_at_epoch) runs in a single process for now", field="layers"
        )
    fsdp = accelerator.state.fsdp_plugin if accelerator.distributed_type == DistributedType.FSDP else None
    mixed = len({p.requires_grad for p in model.parameters()}) > 1
    if fsdp is not None and mixed and not getattr(fsdp, "use_orig_params", True):
        raise PipelineError(
            "FSDP with frozen and trainable parameters needs fsdp_use_orig_params: true in the accelerate config",
            field="layers",
        )
    return report, schedule


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
) -> dict[str, Any]:
    """What `input_layers.json` holds: each input layer's source, the data counts, vector coverage, the vocabulary."""
    counts = {name: dict(values) for name, values in data.counts.items()}
    if recipe.data.drop_missing_labels:
        for name, count in dropped.items():
            counts[name]["dropped_missing_labels"] = count
    report: dict[str, Any] = {"sources": surgery.sources, "data": counts}
    if vocabulary is not None:
        report["vocabulary"] = vocabulary
    if surgery.rotary is not None:
        report["rotary"] = surgery.rotary
    report |= surgery.scope
    if surgery.alignment is not None:
        report["coverage"] = coverage_report(surgery.alignment, data.splits[recipe.data.train_split]["input_ids"])
    return report


def table_changes(recipe: Recipe) -> list[str]:
    """What the recipe does to the shape of the token table: replace it, grow it, train it by rows."""
    table = recipe.layers.token_embeddings
    changes = ["layers.token_embeddings.policy: replace"] if isinstance(table, ReplacedTable) else []
    by_rows = isinstance(table, FinetunedTable) and table.rows is not None
    return changes + ["model.add_tokens"] * (recipe.model.add_tokens is not None) + ["rows"] * by_rows


def static_vectors(
    recipe: Recipe, texts: list[str], original: PreTrainedTokenizerBase | None, tokenizer: PreTrainedTokenizerBase
) -> TrainedVectors | None:
    """Vectors the token-table policy trains on the corpus: word vectors (`init: vectors` with `train`), or token
    vectors under both tokenizers (`transfer: focus`, and `omp` without a donor); none for the others."""
    table, seed = recipe.layers.token_embeddings, recipe.train.seed
    if isinstance(table, VectorTable) and table.train is not None:
        return train_vectors(table.train, texts, seed)
    spec = table.token_vectors() if isinstance(table, Transfer) else None
    if original is not None and spec is not None:
        return transplant_vectors(spec, texts, original, tokenizer, seed)
    return None


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
    check_per_position_start(model, table_changes(recipe))
    added, grown = None, None
    if additions is not None:
        before, added = additions
        new_rows = grow_table(model, added, recipe.model.add_tokens, before, recipe.train.seed, tokenizer, texts)
        grown = {"added": new_rows, "skipped": added.skipped, "special": added.special}
    trained = static_vectors(recipe, texts, original, tokenizer)
    surgery, schedule = build_layers(
        recipe, family, runtime.accelerator, model, tokenizer, original, added, trained, grown
    )
    max_length = resolve_max_length(recipe.model, family.position_limit(model), tokenizer)
    check_lengths(recipe, family, model)
    data = encoded_data(recipe, task, raw, tokenizer, max_length, family.token_features(model), runtime.accelerator)
    check_sizes(recipe, task, tokenizer, max_length, len(data.splits[train_split]))
    vocabulary = None
    if original is not None:
        vocabulary = {
            **(surgery.transfer or {"new_vocabulary": len(tokenizer), "old_vocabulary": len(original)}),
            "old_tokenizer": tokenization_stats(original, texts),
            "new_tokenizer": tokenization_stats(tokenizer, texts),
        }
    return Experiment(
        recipe=recipe, family=family, runtime=runtime, task=task, tokenizer=tokenizer, model=model, data=data,
        metrics=build_metrics(recipe, task), max_length=max_length,
        input_report=input_report(recipe, surgery, data, dropped, vocabulary), unfreeze_schedule=schedule,
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
        metrics=build_metrics(recipe, task), max_length=max_length, input_report={"sources": {}, "data": data.counts},
        unfreeze_schedule={}, skips_unread_positions=skip_unread_positions(recipe, family, model),
    )  # fmt: skip


def with_splits(data: EncodedData, splits: DatasetDict) -> EncodedData:
    """The same data with other encoded splits (numbered for the feature cache): a new value, the old one unchanged."""
    return dataclasses.replace(data, splits=splits)
