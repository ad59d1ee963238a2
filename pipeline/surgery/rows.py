"""Rows of a token table: new rows for added tokens, training only some rows, and the LM head tied to the table.

- `grow_table`: the table (and an untied LM head) grows by one row per added token, initialised as the recipe says:
  `mean` (transformers' mean_resizing: the mean of the old rows plus noise of their covariance), `compose` (the mean
  of the old rows of the pieces the old tokenizer cuts the token's text into, as vocabulary transfer composes a
  row), `random` (normal with the table's std) or `copy` (another token's row).
- `TrainableRows`: training only some rows costs what those rows cost. The whole table stays one frozen tensor; the
  chosen rows live in a small trainable tensor (rows × width) that replaces them in every lookup, so the other rows
  stay bit-identical, and the optimizer holds state for the chosen rows alone. A tied LM head (`TrainableRowsHead`)
  takes its logits of those rows from the same small tensor. On save both are merged into one plain table.
- `untie_output_embeddings`: a tied LM head copied into a tensor of its own.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from pipeline.errors import PipelineError
from pipeline.recipe.model import AddTokens, CopyRow
from pipeline.surgery.distill import distill_rows, snippets_for
from pipeline.vocabulary.added import AddedTokens, pieces

FIELD = "layers.token_embeddings"


class TrainableRows(nn.Module):
    """A frozen table (rows, width) with some rows trainable: ids (...) → vectors (..., width).

    `table` keeps every row (frozen); `trained` (k, width) holds the chosen rows `rows` (k,), which replace the
    table's in every lookup."""

    def __init__(self, table: nn.Embedding, rows: Sequence[int]):
        super().__init__()
        self.table = table
        table.weight.requires_grad_(False)
        self.register_buffer("rows", torch.tensor(list(rows), dtype=torch.long))
        slots = torch.full((table.num_embeddings,), -1, dtype=torch.long)
        slots[self.rows] = torch.arange(len(self.rows))
        self.register_buffer("slots", slots, persistent=False)
        self.trained = nn.Parameter(table.weight.detach()[self.rows].clone())

    @property
    def num_embeddings(self) -> int:
        return self.table.num_embeddings

    @property
    def padding_idx(self) -> int | None:
        return self.table.padding_idx

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        vectors = F.embedding(ids, self.table.weight, self.table.padding_idx)
        slot = self.slots[ids]
        chosen = self.trained[slot.clamp_min(0)].to(vectors.dtype)
        return torch.where((slot >= 0).unsqueeze(-1), chosen, vectors)

    def merged(self) -> torch.Tensor:
        """The plain table (rows, width): the frozen rows with the trained ones in their places."""
        table = self.table.weight.detach().clone()
        table[self.rows] = self.trained.detach().to(table.dtype)
        return table


class TrainableRowsHead(nn.Module):
    """The LM head tied to a `TrainableRows` table: hidden (..., width) → logits (..., rows), the chosen rows' logits
    from the trained rows (the same tensor the lookup reads, so input and output rows train together)."""

    def __init__(self, source: TrainableRows, bias: torch.Tensor | None = None):
        super().__init__()
        self.__dict__["source"] = source  # not a submodule: the table is registered once, where the model keeps it
        self.bias = bias

    @property
    def weight(self) -> torch.Tensor:
        return self.source.merged()

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        logits = F.linear(hidden, self.source.table.weight, self.bias)
        trained = F.linear(hidden, self.source.trained.to(hidden.dtype))
        if self.bias is not None:
            trained = trained + self.bias[self.source.rows]
        return logits.index_copy(-1, self.source.rows, trained)


def table_std(weight: torch.Tensor) -> float:
    return float(weight.detach().float().std())


def copied_row(init: CopyRow, text: str, weight: torch.Tensor, old: PreTrainedTokenizerBase,
               generator: torch.Generator) -> tuple[torch.Tensor, str]:  # fmt: skip
    """`{copy: TOKEN}`: the row of that token."""
    if init.copy_of not in old.get_vocab():
        raise PipelineError(f"copy: '{init.copy_of}' is not a token of the vocabulary", field="model.add_tokens.init")
    return weight[old.convert_tokens_to_ids(init.copy_of)].clone(), f"copy of {init.copy_of}"


def mean_row(init: str, text: str, weight: torch.Tensor, old: PreTrainedTokenizerBase,
             generator: torch.Generator) -> tuple[torch.Tensor, str]:  # fmt: skip
    """`mean`: the mean of the table."""
    return weight.mean(dim=0), "mean of the table"


def random_row(init: str, text: str, weight: torch.Tensor, old: PreTrainedTokenizerBase,
               generator: torch.Generator, why: str = "random") -> tuple[torch.Tensor, str]:  # fmt: skip
    """`random`: normal with the table's std."""
    noise = torch.randn(weight.shape[1], generator=generator) * table_std(weight)
    return noise.to(weight.dtype), why


def composed_row(init: str, text: str, weight: torch.Tensor, old: PreTrainedTokenizerBase,
                 generator: torch.Generator) -> tuple[torch.Tensor, str]:  # fmt: skip
    """`compose`: the mean of the rows of the pieces the old tokenizer splits the text into (random without any)."""
    ids = [i for i in pieces(old, text) if i != old.unk_token_id and i < len(weight)]
    if ids:
        return weight[ids].mean(dim=0), "compose: " + " + ".join(old.convert_ids_to_tokens(ids))
    return random_row(init, text, weight, old, generator, "random (no known piece)")


ROW_MAKERS: dict[str, Callable[..., tuple[torch.Tensor, str]]] = {
    "mean": mean_row,
    "compose": composed_row,
    "random": random_row,
}


def new_row(
    init: Any, token: str, text: str, weight: torch.Tensor, old: PreTrainedTokenizerBase, generator: torch.Generator
) -> tuple[torch.Tensor, str]:
    """The row (width,) of one added token from the old rows `weight` (old rows, width), and how it was made."""
    maker = copied_row if isinstance(init, CopyRow) else ROW_MAKERS[init]
    return maker(init, text, weight, old, generator)


def grow_table(
    model: PreTrainedModel,
    added: AddedTokens,
    cfg: AddTokens,
    old: PreTrainedTokenizerBase,
    seed: int,
    new: PreTrainedTokenizerBase | None = None,
    texts: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Give every added token a row (and a row of an untied LM head); returns one entry per token: token, id, init.

    old: the tokenizer before the tokens were added (whose pieces `compose` averages); new and texts: the tokenizer
    with them and the training texts, which `init: distill` fits the rows on (`pipeline.surgery.distill`)."""
    table = model.get_input_embeddings()
    rows_before, needed = table.weight.shape[0], max(added.ids) + 1
    output = model.get_output_embeddings()
    untied_head = output is not None and output.weight is not table.weight
    old_rows = table.weight.detach()[: added.old_size].clone()
    old_head = output.weight.detach()[: added.old_size].clone() if untied_head else None
    all_fresh = min(added.ids) >= rows_before
    if needed > rows_before:
        # transformers' mean_resizing: the old rows' mean plus noise of their covariance (rows the resize makes)
        model.resize_token_embeddings(needed, mean_resizing=cfg.rows_from_the_mean() and all_fresh)
    report = [{"token": token, "id": token_id} for token, token_id in zip(added.tokens, added.ids, strict=True)]
    if cfg.rows_from_the_mean() and all_fresh:
        return [entry | {"init": "mean (with noise of the table's covariance)"} for entry in report]
    generator = torch.Generator().manual_seed(seed)
    weight = model.get_input_embeddings().weight
    head = model.get_output_embeddings().weight if untied_head else None
    with torch.no_grad():
        for entry in report:
            text = cfg.describe.get(entry["token"], entry["token"])
            start = cfg.row_start()
            row, entry["init"] = new_row(start, entry["token"], text, old_rows, old, generator)
            weight[entry["id"]] = row.to(weight.dtype)
            if head is not None:
                head[entry["id"]] = new_row(start, entry["token"], text, old_head, old, generator)[0].to(head.dtype)
    if cfg.fits_rows():
        distill_added_rows(model, report, cfg, (new, old), texts or [], seed)
    return report


def distill_added_rows(
    model: PreTrainedModel,
    report: list[dict[str, Any]],
    cfg: AddTokens,
    tokenizers: tuple[PreTrainedTokenizerBase | None, PreTrainedTokenizerBase],
    texts: list[str],
    seed: int,
) -> None:
    """`init: distill`: fit the composed rows of the tokens the training text holds (the others keep theirs); each
    report entry says which, and the gap before and after goes in the first entry's `distill`."""
    new, old = tokenizers
    if new is None:
        raise PipelineError("init: distill needs the tokenizer with the added tokens", field="model.add_tokens.init")
    rng = random.Random(seed)
    snippets, fitted = [], []
    for entry in report:
        # the token's own text: `describe` is refused for every init but compose, so it never applies here
        found = snippets_for(entry["id"], entry["token"], texts, (new, old), cfg.distill, rng)
        if found:
            snippets += found
            fitted.append(entry["id"])
            entry["init"] += f", distilled on {len(found)} snippets"
    if not fitted:
        raise PipelineError("init: distill found none of the added tokens in the training text", "model.add_tokens")
    pad = new.pad_token_id if new.pad_token_id is not None else 0
    report[0]["distill"] = distill_rows(model, fitted, snippets, cfg.distill, pad)


def rows_to_train(
    rows: Any, tokenizer: PreTrainedTokenizerBase, added: AddedTokens | None, table_rows: int
) -> list[int]:
    """The ids `layers.token_embeddings.rows` names: `new` (the added tokens), tokens or ids."""
    if rows == "new":
        if added is None or not added.ids:
            raise PipelineError(
                "rows: new trains the added tokens' rows, and no token was added", field=f"{FIELD}.rows"
            )
        return list(added.ids)
    vocabulary, ids = tokenizer.get_vocab(), []
    for row in rows:
        if isinstance(row, int):
            if not 0 <= row < table_rows:
                raise PipelineError(f"row {row} is outside the table's {table_rows} rows", field=f"{FIELD}.rows")
            ids.append(row)
        elif row in vocabulary:
            ids.append(vocabulary[row])
        else:
            raise PipelineError(f"'{row}' is not a token of the vocabulary", field=f"{FIELD}.rows")
    return sorted(set(ids))


def train_rows(model: PreTrainedModel, ids: list[int]) -> None:
    """Make only rows `ids` of the token table trainable (a tied LM head follows them)."""
    table = model.get_input_embeddings()
    if not isinstance(table, nn.Embedding):
        raise PipelineError(
            "rows applies to a plain token table (not a replaced, projected one)", field=f"{FIELD}.rows"
        )
    output = model.get_output_embeddings()
    tied = output is not None and output.weight is table.weight
    rows = TrainableRows(table, ids)
    model.set_input_embeddings(rows)
    if tied:
        model.set_output_embeddings(TrainableRowsHead(rows, getattr(output, "bias", None)))


def untie_output_embeddings(model: PreTrainedModel) -> None:
    """A tied LM head becomes a tensor of its own (a copy of the table), which the head's policy then governs."""
    table, output = model.get_input_embeddings(), model.get_output_embeddings()
    if output is None or getattr(table, "weight", None) is None or output.weight is not table.weight:
        raise PipelineError(
            "tie: untie needs an LM head tied to the token table, and this model has none", field=f"{FIELD}.tie"
        )
    head = nn.Linear(table.weight.shape[1], table.weight.shape[0], bias=getattr(output, "bias", None) is not None)
    with torch.no_grad():
        head.weight.copy_(table.weight)
        if head.bias is not None:
            head.bias.copy_(output.bias)
    model.set_output_embeddings(head.to(table.weight.device))
    model.config.tie_word_embeddings = False
