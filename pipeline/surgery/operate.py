"""Surgery's front door: `operate(model, tokenizer, layers, context)` carries out the recipe's `layers` section on a
loaded model and returns what it did (`Surgery`: the typed report, the unfreeze schedule).

In order: rows for the tokens `model.add_tokens` added; the static vectors the token table's variant trains on the
corpus; the new token table and positions (each variant's `replace`); what trains inside a layer (an untied LM head,
some rows, LoRA: `scope`); then the freeze / finetune flags (`frozen`) and the checks that need the whole picture
(FSDP, several processes). Each step asks the registry for the implementation of the recipe's policy; nothing here
asks what a policy is.
"""

from __future__ import annotations

from dataclasses import dataclass

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from pipeline.errors import PipelineError
from pipeline.recipe.layers import LayersConfig
from pipeline.surgery import body, positions, replace, transplant  # noqa: F401  (they register the implementations)
from pipeline.surgery.job import SurgeryContext, SurgeryJob
from pipeline.surgery.policies import UnfreezeSchedule, apply_layer_policies
from pipeline.surgery.registry import implementation_of, missing_implementations
from pipeline.surgery.replace import describe_output_embeddings
from pipeline.surgery.report import AddedRows, LayerSources, SurgeryReport
from pipeline.surgery.rows import grow_table, untie_output_embeddings
from pipeline.surgery.tables import check_per_position_start, check_vocabulary

__all__ = ["Surgery", "SurgeryContext", "SurgeryReport", "UnfreezeSchedule", "check_vocabulary", "operate"]

if missing_implementations():  # a recipe variant without an implementation would fail deep inside a run
    raise RuntimeError(f"layer variants without an implementation: {', '.join(missing_implementations())}")


@dataclass(frozen=True)
class Surgery:
    """What `operate` did: its report (`input_layers.json`'s layers part) and the parameters frozen now but
    unfrozen at a step or epoch."""

    report: SurgeryReport
    schedule: UnfreezeSchedule


def operate(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, layers: LayersConfig, context: SurgeryContext
) -> Surgery:
    """Carry out `layers` on `model` (and the tokenizer's length limit, where positions grow); see the module."""
    job = SurgeryJob(model, tokenizer, layers, context, SurgeryReport(starting_sources(model, context)))
    table = implementation_of(layers.token_embeddings)
    check_per_position_start(model, table_changes(layers, context))
    if context.added is not None:
        before, added = context.added
        rows = grow_table(model, added, context.add_tokens, before, context.seed, tokenizer, context.texts)
        job.report.added_tokens = AddedRows(rows, added.skipped, added.special)
    job.trained = table.vectors(layers.token_embeddings, job)
    job.report.trained_vectors = job.trained and job.trained.report
    job.report.sources.token_embeddings = (
        table.replace(layers.token_embeddings, job) or job.report.sources.token_embeddings
    )
    job.report.sources.positions = (
        implementation_of(layers.positions).replace(layers.positions, job) or job.report.sources.positions
    )
    check_vocabulary(model, tokenizer)
    if job.report.position_rows and job.report.position_rows > tokenizer.model_max_length:
        # A longer position table: the tokenizer (saved with the model) must not truncate below it.
        tokenizer.model_max_length = job.report.position_rows
    if layers.token_embeddings.tie == "untie":
        untie_output_embeddings(model)
        job.report.tie = "untie: the LM head is a copy of the table, a tensor of its own (layers.head governs it)"
    table.scope(layers.token_embeddings, job)
    implementation_of(layers.encoder).scope(layers.encoder, job)
    job.report.sources.output_embeddings = describe_output_embeddings(model, layers.head.is_frozen())
    schedule = apply_layer_policies(job)
    check_distribution(job, schedule)
    return Surgery(job.report, schedule)


def starting_sources(model: PreTrainedModel, context: SurgeryContext) -> LayerSources:
    """Each input layer before surgery: pretrained, or random where the model was built from `model.config`."""
    start = "pretrained" if context.pretrained else "random (built from model.config)"
    family = context.family
    has_positions = family.input_layers(model).positions is not None
    return LayerSources(start, start if has_positions else f"none ({family.no_position_table or 'no absolute table'})")


def table_changes(layers: LayersConfig, context: SurgeryContext) -> list[str]:
    """What the recipe does to the shape of the token table: replace it, grow it, train it by rows."""
    table = layers.token_embeddings
    return (
        ["layers.token_embeddings.policy: replace"] * table.replaces_table()
        + ["model.add_tokens"] * (context.add_tokens is not None)
        + ["rows"] * (table.trained_rows() is not None)
    )


def check_distribution(job: SurgeryJob, schedule: UnfreezeSchedule) -> None:
    """What the run's processes cannot do with this surgery: rows under FSDP, gradual unfreezing in several
    processes, frozen and trainable parameters under FSDP without `use_orig_params`."""
    fsdp = job.context.fsdp
    if job.report.rows is not None and fsdp is not None:
        raise PipelineError(
            "rows trains a few rows beside a frozen table, which FSDP would shard apart; train the whole table "
            "(drop rows) or run without FSDP (DDP keeps the rows whole)",
            field="layers.token_embeddings.rows",
        )
    if schedule and job.context.processes > 1:
        raise PipelineError(
            "gradual unfreezing (unfreeze_at_step / unfreeze_at_epoch) runs in a single process for now", field="layers"
        )
    mixed = len({p.requires_grad for p in job.model.parameters()}) > 1
    if fsdp is not None and mixed and not getattr(fsdp, "use_orig_params", True):
        raise PipelineError(
            "FSDP with frozen and trainable parameters needs fsdp_use_orig_params: true in the accelerate config",
            field="layers",
        )
