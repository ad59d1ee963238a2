"""Layer surgery: replace the token-embedding table or the position table of a loaded model.

Each replacement is a small named function that swaps one module and returns what it did; where a family keeps
its tables is asked of the `Family`. `apply_surgery` runs the recipe's `replace` policies and reports the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from pipeline.errors import PipelineError
from pipeline.families.base import Family
from pipeline.paths import resolve_local_path
from pipeline.recipe.layers import LayersConfig, PositionPolicy, TokenEmbeddingPolicy
from pipeline.resources import require_memory
from pipeline.surgery.rows import TrainableRowsHead
from pipeline.surgery.tables import (
    PER_POSITION_KEY,
    FixedTable,
    PerPositionTable,
    ProjectedLookup,
    extended_table,
    sinusoidal_table,
    table_of,
)
from pipeline.surgery.transfer import apply_plan, plan_transfer, route_counts
from pipeline.surgery.vectors import Alignment, WordVectors, align_vectors, load_vectors
from pipeline.vocabulary.spelling import spelling_of


@dataclass
class SurgeryReport:
    """What surgery did: a description per input layer, the vector alignment (if any), and the new number of
    positions when the position table was resized (None otherwise)."""

    sources: dict[str, str] = field(default_factory=dict)
    alignment: Alignment | None = None
    position_rows: int | None = None
    transfer: dict[str, Any] | None = None  # vocabulary transfer: old and new sizes, rows by route
    rotary: dict[str, Any] | None = None  # rotary decoders: what rotates, base, scaling, dimensions, layers
    scope: dict[str, Any] = field(default_factory=dict)  # added tokens, untied head, rows, LoRA (input_layers.json)


def replace_positions(family: Family, model: PreTrainedModel, policy: PositionPolicy) -> tuple[str, int]:
    """Swap the position table as `policy.init` says; returns a one-line description and the new row count."""
    slot = family.position_slot(model)
    if slot is None:
        raise PipelineError(
            f"{type(model).__name__} has no absolute position table (rotary or relative positions): "
            "layers.positions.policy: replace cannot apply",
            field="layers.positions",
        )
    current = table_of(getattr(*slot))
    old = current.weight.detach()
    rows, width = policy.max_positions or old.shape[0], old.shape[1]
    require_memory(
        rows * width * old.element_size(), f"a position table of {rows:,} rows", "layers.positions.max_positions"
    )
    if policy.init == "sinusoidal":
        table = sinusoidal_table(rows, width)
        scale = policy.scale or float(old.std()) / float(table.std())
        new, source = FixedTable(table * scale), f"sinusoidal (fixed, ×{scale:.4g})"
    elif policy.init == "none":
        new, source = FixedTable(torch.zeros(rows, width)), "none (zeros: no position signal)"
    elif policy.init == "learned":
        new = nn.Embedding(rows, width)
        nn.init.normal_(new.weight, std=policy.std or float(old.std()))
        source = "learned (fresh)"
    else:
        padding_idx = getattr(current, "padding_idx", None)
        offset = 0 if padding_idx is None else padding_idx + 1
        new = nn.Embedding(rows, width)
        with torch.no_grad():
            new.weight.copy_(extended_table(old, rows, policy.extend_mode, offset))
        source = f"extended {old.shape[0]} → {rows} ({policy.extend_mode})"
    expected = new.weight.detach().clone()
    if policy.combine == "concat":
        # [token; position] @ W.T == token @ W_t.T + position @ W_p.T: the position half of W lives here,
        # the token half (with the bias) on the token side, so the model's own "add" does the concatenation.
        new = ProjectedLookup(new, nn.Linear(width, width, bias=False))
        model.set_input_embeddings(ProjectedLookup(model.get_input_embeddings(), nn.Linear(width, width)))
        source += ", combined by concat + projection"
    family.set_positions(model, new.to(old.device), rows)
    # Guard against a model whose own code rebuilds or overwrites the table: read the values back.
    if not torch.equal(table_of(family.input_layers(model).positions).weight.detach().cpu(), expected.cpu()):
        raise PipelineError("the new position table did not survive in the model", field="layers.positions")
    return source, rows


def _tokenizer_lowercases(tokenizer: PreTrainedTokenizerBase) -> bool:
    return bool(getattr(tokenizer, "do_lower_case", False)) or tokenizer.tokenize("A") == tokenizer.tokenize("a")


def policy_vectors(policy: TokenEmbeddingPolicy) -> WordVectors:
    """The static vectors a token-embedding policy names (`vectors`, `vectors_format`, `vectors_vocab`)."""
    return load_vectors(
        resolve_local_path(policy.vectors),
        policy.vectors_format,
        policy.vectors_vocab and resolve_local_path(policy.vectors_vocab),
    )


def _vector_table(
    tokenizer: PreTrainedTokenizerBase,
    policy: TokenEmbeddingPolicy,
    rows: int,
    width: int,
    seed: int,
    trained: WordVectors | None = None,
) -> tuple[torch.Tensor, Alignment, int]:
    """Static vectors (`trained` on the corpus, or the policy's file) aligned to the vocabulary: the table (rows,
    ≤ width), the alignment, the vectors' width."""
    vectors = trained if trained is not None else policy_vectors(policy)
    # Indexed by id: the model's table may have rows past the vocabulary, and ids need not be contiguous.
    tokens = [f"<unused-{i}>" for i in range(rows)]
    for token, token_id in tokenizer.get_vocab().items():
        if token_id < rows:
            tokens[token_id] = token
    specials = set(tokenizer.all_special_tokens)
    words = [token if token in specials else spelling_of(token, tokenizer) for token in tokens]
    alignment = align_vectors(tokens, words, specials, vectors, _tokenizer_lowercases(tokenizer), policy.fallback, seed)
    table = torch.from_numpy(alignment.table)
    if vectors.dim > width:
        raise PipelineError(
            f"{vectors.dim}-d vectors are wider than the model's {width}", field="layers.token_embeddings.vectors"
        )
    if vectors.dim < width and policy.width == "pad":
        table = F.pad(table, (0, width - vectors.dim))
    return table, alignment, vectors.dim


def replace_token_embeddings(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    policy: TokenEmbeddingPolicy,
    seed: int,
    original: PreTrainedTokenizerBase | None = None,
    trained: WordVectors | None = None,
    positions: int | None = None,
) -> tuple[str, Alignment | None, dict[str, Any] | None]:
    """Swap the token-embedding table for a random, a static-vector or (`original`: the tokenizer the pretrained table
    belongs to, replaced by `tokenizer`) a transferred one; returns a description, the vector alignment (vectors)
    and the transfer's row counts (transfer). With a new tokenizer the table gets its vocabulary's size.

    trained: vectors trained on the corpus (`train: {...}`), used in place of a vectors file; positions: the tables
    `per_position` gives (the recipe's `model.max_length`)."""
    old = table_of(model.get_input_embeddings())
    rows, width = (len(tokenizer) if original is not None else old.weight.shape[0]), old.weight.shape[1]
    padding_idx = tokenizer.pad_token_id if original is not None else old.padding_idx
    alignment, transfer = None, None
    if policy.init == "random":
        std = policy.std or float(old.weight.detach().std())
        table = (
            torch.randn(rows, width, generator=torch.Generator().manual_seed(seed)) * std
            if original is not None
            else None
        )
        if table is None:
            new = nn.Embedding(rows, width, padding_idx=padding_idx)
            nn.init.normal_(new.weight, std=std)
            table = new.weight.detach()
        how = f"random normal (std {std:.4f})"
    elif policy.init == "transfer":
        vectors = policy_vectors(policy) if policy.transfer == "weighted" else None
        plans = plan_transfer(original, tokenizer, vectors)
        table = apply_plan(old.weight.detach().cpu(), plans, seed)
        transfer = {"old_vocabulary": old.weight.shape[0], "new_vocabulary": rows, "rows": route_counts(plans)}
        output = model.get_output_embeddings()
        if output is not None and not output_tied_to_input(model):  # an untied LM head follows the same plan
            head = nn.Linear(width, rows, bias=False)
            head.weight = nn.Parameter(
                apply_plan(output.weight.detach().cpu(), plans, seed + 1).to(output.weight.device)
            )
            model.set_output_embeddings(head)
        how = (
            "transferred from the pretrained table ("
            + ", ".join(f"{route} {n:,}" for route, n in transfer["rows"].items() if n)
            + ")"
        )
    else:
        table, alignment, dim = _vector_table(tokenizer, policy, rows, width, seed, trained)
        source = f"{policy.train.method} vectors trained on {policy.train.corpus}" if policy.train else policy.vectors
        how = (
            f"vectors {source} ("
            + (
                f"projected {dim} → {width}"
                if table.shape[1] < width
                else "zero-padded"
                if dim < width
                else "same width"
            )
            + ")"
        )
    if policy.per_position:
        model.set_input_embeddings(per_position_table(model, table.shape[0], width, positions, policy, seed))
        model.config.vocab_size = rows
        return how + f", one table per position ({positions} positions)", alignment, transfer
    lookup = nn.Embedding.from_pretrained(table, freeze=False, padding_idx=padding_idx)
    new_module: nn.Module = (
        lookup if table.shape[1] == width else ProjectedLookup(lookup, nn.Linear(table.shape[1], width, bias=False))
    )
    model.set_input_embeddings(new_module.to(old.weight.device))
    model.config.vocab_size = rows
    return how, alignment, transfer


def per_position_table(
    model: PreTrainedModel, rows: int, width: int, positions: int | None, policy: TokenEmbeddingPolicy, seed: int
) -> PerPositionTable:
    """A random table (positions, rows, width) drawn like the shared one (normal, the policy's or the old table's
    std; padding rows zero), refused where it and its training state (gradient, two Adam moments) would not fit."""
    if positions is None:
        raise PipelineError("per_position needs model.max_length (the number of position tables)", field="model")
    require_memory(4 * positions * rows * width * 4, f"per-position tables ({positions} × {rows:,} × {width})",
                   "layers.token_embeddings.per_position")  # fmt: skip
    old = table_of(model.get_input_embeddings())
    std = policy.std or float(old.weight.detach().std())
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(positions, rows, width, generator=generator) * std
    if old.padding_idx is not None:
        weight[:, old.padding_idx] = 0.0
    setattr(model.config, PER_POSITION_KEY, positions)
    return PerPositionTable(weight.to(old.weight.device))


def output_tied_to_input(model: PreTrainedModel) -> bool:
    """Whether the LM output layer and the token-embedding table are one tensor (or, trained by rows, one frozen
    tensor and the same trained rows)."""
    output = model.get_output_embeddings()
    if isinstance(output, TrainableRowsHead):
        return True
    return output is not None and output.weight is getattr(table_of(model.get_input_embeddings()), "weight", None)


def retie_output_embeddings(model: PreTrainedModel) -> None:
    """After the input table is replaced, point a tied LM output layer at the new table again (one tensor)."""
    table = model.get_input_embeddings()
    if not isinstance(table, nn.Embedding):
        raise PipelineError(
            "the LM output layer is tied to the token table, and a projected table cannot be tied; "
            "use width: pad (or vectors as wide as the model)",
            field="layers.token_embeddings.width",
        )
    model.get_output_embeddings().weight = table.weight


def describe_output_embeddings(model: PreTrainedModel, head_policy: str = "finetune") -> str:
    """What the LM output layer is, relative to the token-embedding table (for input_layers.json and inspect)."""
    output = model.get_output_embeddings()
    if output is None:
        return "none (the task head reads the encoder's states)"
    if isinstance(output, TrainableRowsHead):
        return "tied to the token-embedding table: the same rows train in both, the other rows stay as they are"
    if output_tied_to_input(model):
        return "tied to the token-embedding table: one tensor, so it is frozen, trained or replaced with it"
    return f"untied: its own weights, {'frozen' if head_policy == 'freeze' else 'trained'} with the head (layers.head)"


def apply_surgery(
    family: Family,
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    cfg: LayersConfig,
    seed: int,
    pretrained: bool = True,
    original: PreTrainedTokenizerBase | None = None,
    trained: WordVectors | None = None,
    positions: int | None = None,
) -> SurgeryReport:
    """Carry out the recipe's `replace` policies on `model`; returns what each input layer now is.

    pretrained: False for a model built from `model.config`, whose layers start random; original: the tokenizer of
    the pretrained table when the recipe builds a new one; trained: vectors trained on the corpus (`train: {...}`);
    positions: the number of per-position tables (`per_position`).
    """
    start = "pretrained" if pretrained else "random (built from model.config)"
    has_positions = family.input_layers(model).positions is not None
    report = SurgeryReport(
        {
            "token_embeddings": start,
            "positions": start if has_positions else f"none ({family.no_position_table or 'no absolute table'})",
        }
    )
    if cfg.token_embeddings.policy == "replace":
        tied = output_tied_to_input(model)
        report.sources["token_embeddings"], report.alignment, report.transfer = replace_token_embeddings(
            model, tokenizer, cfg.token_embeddings, seed, original, trained, positions
        )
        if tied:
            retie_output_embeddings(model)
    if family.rotary:
        report.sources["positions"], report.rotary = rotary_positions(family, model, cfg.positions)
    elif cfg.positions.policy == "replace":
        report.sources["positions"], report.position_rows = replace_positions(family, model, cfg.positions)
    report.sources["output_embeddings"] = describe_output_embeddings(model)
    return report


def rotary_positions(
    family: Family, model: PreTrainedModel, policy: PositionPolicy
) -> tuple[str, dict[str, Any] | None]:
    """A rotary family's position policy applied; returns what rotates (a line, and the details)."""
    if policy.policy == "replace":
        family.replace_rotary_positions(model, policy)
    details = family.rotary_positions(model)
    if details is None:
        return f"none ({family.no_position_table})", None
    kept = (
        ""
        if policy.policy == "replace"
        else f" (policy {policy.policy}: the rotation has no parameters, nothing to train)"
    )
    return details["summary"] + kept, {key: value for key, value in details.items() if key != "summary"}
