"""The token-embedding table's variants: each one's implementation, registered beside the functions that make its
rows (`pipeline.surgery.registry`). The kept tables (`freeze`, `finetune`) change nothing here (`finetune` may train
only some rows); each `replace` variant makes a new table (random, static vectors, or transferred to another
tokenizer: `mean` and `weighted` here, `focus` and `omp` in `pipeline.surgery.transplant`), put in the model by
`ReplacedTableSurgery.replace`. Where a family keeps its tables is asked of the `Family`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from pipeline.errors import PipelineError
from pipeline.paths import resolve_local_path
from pipeline.recipe.layers import (
    FinetunedTable,
    FrozenTable,
    MeanTransfer,
    RandomTable,
    Transfer,
    VectorFile,
    VectorTable,
    WeightedTransfer,
)
from pipeline.resources import require_memory
from pipeline.surgery.job import SurgeryJob
from pipeline.surgery.registry import TokenTableSurgery, implements
from pipeline.surgery.report import TrainedRows
from pipeline.surgery.rows import TrainableRows, TrainableRowsHead, rows_to_train, train_rows
from pipeline.surgery.tables import PER_POSITION_KEY, PerPositionTable, ProjectedLookup, table_of
from pipeline.surgery.trained_vectors import TrainedVectors, train_vectors
from pipeline.surgery.transfer import RowPlan, apply_plan, plan_transfer, route_counts
from pipeline.surgery.vectors import Alignment, WordVectors, align_vectors, load_vectors
from pipeline.vocabulary.spelling import spelling_of

log = logging.getLogger(__name__)


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


def transferred_rows(method: TransferSurgery, policy: Transfer, slot: TableSlot) -> NewRows:
    """The pretrained table moved to the new tokenizer (`pipeline.surgery.transfer`, re-planned by the method: for
    `focus` and `omp` `slot.trained` holds their token vectors); an untied LM head follows."""
    plans = plan_transfer(slot.original, slot.tokenizer, method.plan_vectors(policy))
    if not any(plan.route == "copied" for plan in plans):
        log.warning(
            "the new tokenizer shares no token with the pretrained one: no row is copied, every row is made from the "
            "old rows (is model.tokenizer the tokenizer meant?)"
        )
    method.refine(policy, plans, slot)
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


@implements(FrozenTable)
class KeptTable(TokenTableSurgery):
    """`freeze`: the pretrained table as it is."""


@implements(FinetunedTable)
class FinetunedTableSurgery(TokenTableSurgery):
    """`finetune`: the pretrained table trained; with `rows`, only those rows train beside the frozen table."""

    def scope(self, policy: FinetunedTable, job: SurgeryJob) -> None:
        if policy.rows is None:
            return
        table_rows = job.model.get_input_embeddings().num_embeddings
        added = job.context.added[1] if job.context.added is not None else None
        ids = rows_to_train(policy.rows, job.tokenizer, added, table_rows)
        train_rows(job.model, ids)
        job.report.rows = TrainedRows(len(ids), table_rows, job.tokenizer.convert_ids_to_tokens(ids[:100]))

    def frozen(self, policy: FinetunedTable, job: SurgeryJob, parameters: dict[str, nn.Parameter]) -> list:
        table = job.family.input_layers(job.model).token_embeddings
        return [table_of(table).weight] if isinstance(table, TrainableRows) else []  # trained by rows: the rest stays


class ReplacedTableSurgery(TokenTableSurgery):
    """`replace`: a new table made by `rows` (the variant's), put where the old one was; a tied LM head follows."""

    def rows(self, policy: Any, slot: TableSlot) -> NewRows:
        raise NotImplementedError

    def replace(self, policy: Any, job: SurgeryJob) -> str:
        model, tokenizer, original = job.model, job.tokenizer, job.context.original
        tied = output_tied_to_input(model)
        old = table_of(model.get_input_embeddings())
        rows, width = (len(tokenizer) if original is not None else old.weight.shape[0]), old.weight.shape[1]
        padding_idx = tokenizer.pad_token_id if original is not None else old.padding_idx
        trained = job.trained and job.trained.vectors
        slot = TableSlot(model, tokenizer, old, rows, width, padding_idx, job.context.seed, original, trained)
        made = self.rows(policy, slot)
        job.report.alignment, job.report.transfer = made.alignment, made.transfer
        how = self.install(policy, made, slot, job)
        model.config.vocab_size = rows
        if tied:
            retie_output_embeddings(model)
        return how

    def install(self, policy: Any, made: NewRows, slot: TableSlot, job: SurgeryJob) -> str:
        """Put the new rows in the model: a lookup table, projected to the model's width where they are narrower."""
        lookup = nn.Embedding.from_pretrained(made.table, freeze=False, padding_idx=slot.padding_idx)
        new_module: nn.Module = (
            lookup
            if made.table.shape[1] == slot.width
            else ProjectedLookup(lookup, nn.Linear(made.table.shape[1], slot.width, bias=False))
        )
        slot.model.set_input_embeddings(new_module.to(slot.old.weight.device))
        return made.how


@implements(RandomTable)
class RandomTableSurgery(ReplacedTableSurgery):
    """`replace` × `random`: fresh normal rows, one table or one per position."""

    def rows(self, policy: RandomTable, slot: TableSlot) -> NewRows:
        return random_rows(policy, slot)

    def install(self, policy: RandomTable, made: NewRows, slot: TableSlot, job: SurgeryJob) -> str:
        if not policy.per_position:
            return super().install(policy, made, slot, job)
        positions = job.context.max_length
        table = per_position_table(slot.model, made.table.shape[0], slot.width, positions, policy, slot.seed)
        slot.model.set_input_embeddings(table)
        return made.how + f", one table per position ({positions} positions)"


@implements(VectorTable)
class VectorTableSurgery(ReplacedTableSurgery):
    """`replace` × `vectors`: static vectors from a file, or trained on the corpus first."""

    def vectors(self, policy: VectorTable, job: SurgeryJob) -> TrainedVectors | None:
        return None if policy.train is None else train_vectors(policy.train, job.context.texts, job.context.seed)

    def rows(self, policy: VectorTable, slot: TableSlot) -> NewRows:
        return vector_rows(policy, slot)


class TransferSurgery(ReplacedTableSurgery):
    """`replace` × `transfer`: the pretrained rows moved to the new tokenizer by a plan per row; a method re-plans
    the tokens to make (`refine`)."""

    def plan_vectors(self, policy: Transfer) -> WordVectors | None:
        """Word vectors the plan weighs neighbours by (`weighted`; none for the others)."""
        return None

    def refine(self, policy: Transfer, plans: list[RowPlan], slot: TableSlot) -> None:
        """Re-plan the tokens to make (the plan of `pipeline.surgery.transfer` kept by default)."""

    def rows(self, policy: Transfer, slot: TableSlot) -> NewRows:
        return transferred_rows(self, policy, slot)


@implements(MeanTransfer)
class MeanTransferSurgery(TransferSurgery):
    """`transfer: mean`: a new token is the mean of its old pieces' rows (the plan as it is)."""


@implements(WeightedTransfer)
class WeightedTransferSurgery(TransferSurgery):
    """`transfer: weighted`: a new token mixes the old tokens closest to it in a word-vector file."""

    def plan_vectors(self, policy: WeightedTransfer) -> WordVectors:
        return policy_vectors(policy)


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


def describe_output_embeddings(model: PreTrainedModel, head_frozen: bool = False) -> str:
    """What the LM output layer is, relative to the token-embedding table (for input_layers.json and inspect)."""
    output = model.get_output_embeddings()
    if output is None:
        return "none (the task head reads the encoder's states)"
    if isinstance(output, TrainableRowsHead):
        return "tied to the token-embedding table: the same rows train in both, the other rows stay as they are"
    if output_tied_to_input(model):
        return "tied to the token-embedding table: one tensor, so it is frozen, trained or replaced with it"
    return f"untied: its own weights, {'frozen' if head_frozen else 'trained'} with the head (layers.head)"
