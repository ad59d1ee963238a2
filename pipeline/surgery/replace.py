"""Layer surgery: replace the token-embedding table or the position table of a loaded model.

Each `replace` variant of the token table has a small named function that makes its rows (`TOKEN_TABLES`, keyed by
the variant's class), as each position-table variant has in `pipeline.surgery.positions`; where a family keeps its
tables is asked of the `Family`. `apply_surgery` runs the recipe's `replace` policies and reports the result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from pipeline.errors import PipelineError
from pipeline.families.base import Family
from pipeline.paths import resolve_local_path
from pipeline.recipe.layers import (
    TRANSFERS,
    LayersConfig,
    RandomTable,
    ReplacedTable,
    Transfer,
    VectorFile,
    VectorTable,
    WeightedTransfer,
)
from pipeline.recipe.positions import NewTable, Positions, ReplacedPositions
from pipeline.resources import require_memory
from pipeline.surgery.positions import replace_positions
from pipeline.surgery.rows import TrainableRowsHead
from pipeline.surgery.tables import (
    PER_POSITION_KEY,
    PerPositionTable,
    ProjectedLookup,
    table_of,
)
from pipeline.surgery.transfer import apply_plan, plan_transfer, route_counts
from pipeline.surgery.transplant import refine_plans
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


def _tokenizer_lowercases(tokenizer: PreTrainedTokenizerBase) -> bool:
    return bool(getattr(tokenizer, "do_lower_case", False)) or tokenizer.tokenize("A") == tokenizer.tokenize("a")


def policy_vectors(policy: VectorFile) -> WordVectors:
    """The static vectors a token-embedding policy names (`vectors`, `vectors_format`, `vectors_vocab`)."""
    return load_vectors(
        resolve_local_path(policy.vectors),
        policy.vectors_format,
        policy.vectors_vocab and resolve_local_path(policy.vectors_vocab),
    )


def _vector_table(
    tokenizer: PreTrainedTokenizerBase,
    policy: VectorTable,
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


@dataclass
class TableSlot:
    """Where a new token table goes: the old table module, the new table's rows (the new vocabulary's size where a
    tokenizer replaces the pretrained one) and width, its padding row, the seed, the pretrained table's tokenizer
    (`original`, when a new one replaces it) and vectors trained on the corpus."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    old: nn.Embedding
    rows: int
    width: int
    padding_idx: int | None
    seed: int
    original: PreTrainedTokenizerBase | None
    trained: WordVectors | None


@dataclass
class NewRows:
    """A new token table (rows, width or narrower), what it is in words, and the alignment or transfer report."""

    table: torch.Tensor
    how: str
    alignment: Alignment | None = None
    transfer: dict[str, Any] | None = None


def random_rows(policy: RandomTable, slot: TableSlot) -> NewRows:
    """Normal rows with the policy's std or the old table's (a seeded generator where the vocabulary is new)."""
    std = policy.std or float(slot.old.weight.detach().std())
    if slot.original is not None:
        table = torch.randn(slot.rows, slot.width, generator=torch.Generator().manual_seed(slot.seed)) * std
    else:
        new = nn.Embedding(slot.rows, slot.width, padding_idx=slot.padding_idx)
        nn.init.normal_(new.weight, std=std)
        table = new.weight.detach()
    return NewRows(table, f"random normal (std {std:.4f})")


def transferred_rows(policy: Transfer, slot: TableSlot) -> NewRows:
    """The pretrained table moved to the new tokenizer (`pipeline.surgery.transfer`, and for `focus` and `omp`
    `pipeline.surgery.transplant`: `slot.trained` holds their token vectors); an untied LM head follows."""
    vectors = policy_vectors(policy) if isinstance(policy, WeightedTransfer) else None
    plans = plan_transfer(slot.original, slot.tokenizer, vectors)
    refine_plans(policy, plans, slot.tokenizer, slot.trained)
    table = apply_plan(slot.old.weight.detach().cpu(), plans, slot.seed)
    transfer = {"old_vocabulary": slot.old.weight.shape[0], "new_vocabulary": slot.rows, "rows": route_counts(plans)}
    output = slot.model.get_output_embeddings()
    if output is not None and not output_tied_to_input(slot.model):  # an untied LM head follows the same plan
        head = nn.Linear(slot.width, slot.rows, bias=False)
        head.weight = nn.Parameter(
            apply_plan(output.weight.detach().cpu(), plans, slot.seed + 1).to(output.weight.device)
        )
        slot.model.set_output_embeddings(head)
    routes = ", ".join(f"{route} {n:,}" for route, n in transfer["rows"].items() if n)
    return NewRows(table, f"transferred from the pretrained table ({routes})", transfer=transfer)


def vector_rows(policy: VectorTable, slot: TableSlot) -> NewRows:
    """Static vectors (a file, or trained on the corpus) aligned to the vocabulary, padded where the policy says."""
    table, alignment, dim = _vector_table(slot.tokenizer, policy, slot.rows, slot.width, slot.seed, slot.trained)
    source = f"{policy.train.method} vectors trained on {policy.train.corpus}" if policy.train else policy.vectors
    fit = (
        f"projected {dim} → {slot.width}" if table.shape[1] < slot.width else "zero-padded" if dim < slot.width
        else "same width"
    )  # fmt: skip
    return NewRows(table, f"vectors {source} ({fit})", alignment=alignment)


# A token-table `replace` variant → the function that makes its rows.
TOKEN_TABLES: dict[type[ReplacedTable], Callable[[Any, TableSlot], NewRows]] = {
    RandomTable: random_rows,
    VectorTable: vector_rows,
    **dict.fromkeys(TRANSFERS, transferred_rows),
}


def replace_token_embeddings(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    policy: ReplacedTable,
    seed: int,
    original: PreTrainedTokenizerBase | None = None,
    trained: WordVectors | None = None,
    positions: int | None = None,
) -> tuple[str, Alignment | None, dict[str, Any] | None]:
    """Swap the token-embedding table for the one the policy's variant makes: random, static vectors, or (`original`:
    the tokenizer the pretrained table belongs to, replaced by `tokenizer`) transferred; returns a description, the
    vector alignment (vectors) and the transfer's row counts (transfer). With a new tokenizer the table gets its
    vocabulary's size.

    trained: vectors trained on the corpus (`train: {...}`), used in place of a vectors file; positions: the tables
    `per_position` gives (the recipe's `model.max_length`)."""
    old = table_of(model.get_input_embeddings())
    rows, width = (len(tokenizer) if original is not None else old.weight.shape[0]), old.weight.shape[1]
    padding_idx = tokenizer.pad_token_id if original is not None else old.padding_idx
    slot = TableSlot(model, tokenizer, old, rows, width, padding_idx, seed, original, trained)
    made = TOKEN_TABLES[type(policy)](policy, slot)
    if isinstance(policy, RandomTable) and policy.per_position:
        model.set_input_embeddings(per_position_table(model, made.table.shape[0], width, positions, policy, seed))
        model.config.vocab_size = rows
        return made.how + f", one table per position ({positions} positions)", made.alignment, made.transfer
    lookup = nn.Embedding.from_pretrained(made.table, freeze=False, padding_idx=padding_idx)
    new_module: nn.Module = (
        lookup
        if made.table.shape[1] == width
        else ProjectedLookup(lookup, nn.Linear(made.table.shape[1], width, bias=False))
    )
    model.set_input_embeddings(new_module.to(old.weight.device))
    model.config.vocab_size = rows
    return made.how, made.alignment, made.transfer


def per_position_table(
    model: PreTrainedModel, rows: int, width: int, positions: int | None, policy: RandomTable, seed: int
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
    if isinstance(cfg.token_embeddings, ReplacedTable):
        tied = output_tied_to_input(model)
        report.sources["token_embeddings"], report.alignment, report.transfer = replace_token_embeddings(
            model, tokenizer, cfg.token_embeddings, seed, original, trained, positions
        )
        if tied:
            retie_output_embeddings(model)
    if family.rotary:
        report.sources["positions"], report.rotary = rotary_positions(family, model, cfg.positions)
    elif isinstance(cfg.positions, NewTable):
        report.sources["positions"], report.position_rows = replace_positions(family, model, cfg.positions)
    report.sources["output_embeddings"] = describe_output_embeddings(model)
    return report


def rotary_positions(family: Family, model: PreTrainedModel, policy: Positions) -> tuple[str, dict[str, Any] | None]:
    """A rotary family's position policy applied; returns what rotates (a line, and the details)."""
    replaced = isinstance(policy, ReplacedPositions)
    if replaced:
        family.replace_rotary_positions(model, policy)
    details = family.rotary_positions(model)
    if details is None:
        return f"none ({family.no_position_table})", None
    kept = "" if replaced else f" (policy {policy.policy}: the rotation has no parameters, nothing to train)"
    return details["summary"] + kept, {key: value for key, value in details.items() if key != "summary"}
