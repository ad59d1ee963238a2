"""`pipeline inspect`: the model's input layers after surgery, without training."""

from __future__ import annotations

from dataclasses import asdict

from pipeline.experiment.build import Experiment
from pipeline.surgery.report import SurgeryReport
from pipeline.surgery.rows import TrainableRows
from pipeline.surgery.tables import table_of
from pipeline.training.optimizer import build_optimizer
from pipeline.training.parameters import format_group_table, parameter_rows


def module_rows(module: object) -> object:
    """The trained rows of a table trained by rows (None for any other table)."""
    return module.trained if isinstance(module, TrainableRows) else None


def describe_scope(report: SurgeryReport) -> list[str]:
    """Added tokens (with how each row began), the rows trained, and LoRA on the body."""
    lines = []
    added = report.added_tokens
    if added:
        shown = ", ".join(f"{row['token']} ({row['id']}: {row['init']})" for row in added.added[:20])
        more = f" and {len(added.added) - 20} more" if len(added.added) > 20 else ""
        lines.append(f"added tokens: {len(added.added)}: {shown}{more}")
        if added.skipped:
            lines.append(f"  not added (already one token): {', '.join(added.skipped[:20])}")
    rows = report.rows
    if rows:
        lines.append(f"rows trained: {rows.trained:,} of {rows.of:,} ({', '.join(rows.tokens[:20])})")
    lora = report.lora
    if lora:
        lines.append(
            f"encoder: LoRA r {lora['r']}, alpha {lora['alpha']:g} (scaling {lora['scaling']:g}), dropout "
            f"{lora['dropout']:g} on {lora['adapted_layers']} layers ({', '.join(lora['target_modules'])}): "
            f"{lora['adapter_parameters']:,} adapter parameters; the rest of the body frozen"
        )
    return lines


def describe_input_layers(exp: Experiment) -> str:
    """Each input table's shape, source and status, vector coverage, and parameter / optimizer-state counts."""
    layers = exp.family.input_layers(exp.model)
    report = exp.input_report
    sources = asdict(report.surgery.sources) if report.surgery else {}
    lines = [
        f"model: {type(exp.model).__name__} (family {exp.family.name}), max_length {exp.max_length} tokens "
        "(truncation; block length for language modeling)",
        "",
    ]
    for group, module in (("token_embeddings", layers.token_embeddings), ("positions", layers.positions)):
        if module is None:
            lines.append(f"{group}: {sources.get(group, 'none')}")
            continue
        table = table_of(module)
        trains = any(p.requires_grad for p in table.parameters())
        status = "trainable" if trains else "frozen" if list(table.parameters()) else "fixed buffer"
        if isinstance(module, TrainableRows):
            status = f"frozen but {len(module.rows):,} rows trained beside it"
        lines.append(f"{group}: {tuple(table.weight.shape)} {status}; {sources.get(group, 'pretrained')}")
        extra = [
            p
            for p in module.parameters()
            if all(p is not q for q in table.parameters()) and p is not module_rows(module)
        ]
        if extra:
            lines.append(f"  + linear projection: {sum(p.numel() for p in extra):,} parameters, trainable")
    if "output_embeddings" in sources:
        lines.append(f"output embeddings: {sources['output_embeddings']}")
    lines += describe_scope(report.surgery) if report.surgery else []
    vocabulary = report.vocabulary
    if vocabulary:
        old, new = vocabulary["old_tokenizer"], vocabulary["new_tokenizer"]
        lines += [
            "",
            f"vocabulary: a new tokenizer of {vocabulary['new_vocabulary']:,} tokens (the pretrained one: "
            f"{vocabulary['old_vocabulary']:,}); "
            f"on {new['texts']:,} training texts, pieces per word {old['pieces_per_word']:.3f} → "
            f"{new['pieces_per_word']:.3f}, "
            f"tokens per text {old['tokens_per_text']:.1f} → {new['tokens_per_text']:.1f}",
        ]
        if "rows" in vocabulary:
            lines.append(
                "  rows of the new table: " + ", ".join(f"{route} {n:,}" for route, n in vocabulary["rows"].items())
            )
    coverage = report.coverage
    if coverage:
        lines += [
            "",
            f"vector coverage: {coverage['from_vectors']:,} of {coverage['vocabulary_size']:,} vocabulary entries "
            "from the file; "
            f"{coverage['train_token_coverage']:.1%} of training tokens",
            "  by route: " + ", ".join(f"{route} {count:,}" for route, count in coverage["by_route"].items() if count),
            "  most frequent training tokens without a vector: "
            + ", ".join(f"{row['token']} ({row['count']})" for row in coverage["top_missed_in_train"]),
        ]
    optimizer = build_optimizer(exp.family, exp.model, exp.recipe.layers, exp.recipe.train, exp.scheduled_parameters())
    rows = parameter_rows(exp.family, exp.model, optimizer)
    in_optimizer = sum(p.numel() for group in optimizer.param_groups for p in group["params"] if p.requires_grad)
    lines += [
        "",
        format_group_table(rows),
        f"optimizer state (AdamW, two moments once stepped): {2 * in_optimizer:,} scalars",
    ]
    return "\n".join(lines)
