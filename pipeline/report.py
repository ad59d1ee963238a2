"""`pipeline inspect`: the model's input layers after surgery, without training."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.layers import build_optimizer, format_group_table, parameter_rows
from pipeline.models import input_layers
from pipeline.surgery import table_of

if TYPE_CHECKING:
    from pipeline.experiment import Experiment


def describe_input_layers(exp: Experiment) -> str:
    """Each input table's shape, source and status, vector coverage, and parameter / optimizer-state counts."""
    layers = input_layers(exp.model)
    lines = [f"model: {type(exp.model).__name__}, max_length {exp.max_length} tokens (truncation; block length for language modeling)", ""]
    for group, module in (("token_embeddings", layers.token_embeddings), ("positions", layers.positions)):
        if module is None:
            lines.append(f"{group}: none (no absolute position table: rotary or relative positions, or a recurrent model)")
            continue
        table = table_of(module)
        trains = any(p.requires_grad for p in table.parameters())
        status = "trainable" if trains else "frozen" if list(table.parameters()) else "fixed buffer"
        source = exp.input_report["sources"].get(group, "pretrained")
        lines.append(f"{group}: {tuple(table.weight.shape)} {status}; {source}")
        extra = [p for p in module.parameters() if all(p is not q for q in table.parameters())]
        if extra:
            lines.append(f"  + linear projection: {sum(p.numel() for p in extra):,} parameters, trainable")
    if "output_embeddings" in exp.input_report["sources"]:
        lines.append(f"output embeddings: {exp.input_report['sources']['output_embeddings']}")
    coverage = exp.input_report.get("coverage")
    if coverage:
        lines += [
            "",
            f"vector coverage: {coverage['from_vectors']:,} of {coverage['vocabulary_size']:,} vocabulary entries from the file; "
            f"{coverage['train_token_coverage']:.1%} of training tokens",
            "  by route: " + ", ".join(f"{route} {count:,}" for route, count in coverage["by_route"].items() if count),
            "  most frequent training tokens without a vector: "
            + ", ".join(f"{row['token']} ({row['count']})" for row in coverage["top_missed_in_train"]),
        ]
    optimizer = build_optimizer(exp.model, exp.recipe.layers, exp.recipe.train, exp.scheduled_parameters())
    rows = parameter_rows(exp.model, optimizer)
    in_optimizer = sum(p.numel() for group in optimizer.param_groups for p in group["params"] if p.requires_grad)
    lines += ["", format_group_table(rows), f"optimizer state (AdamW, two moments once stepped): {2 * in_optimizer:,} scalars"]
    return "\n".join(lines)
