"""Layer surgery: replace the token-embedding table or the position table of a loaded model.

Each replacement is a small named function that swaps one module. The replacements are chosen so that a saved
model is still a plain Hugging Face model: fixed tables are buffers named `weight`, and a lookup followed by a
linear map (`ProjectedLookup`) folds into one plain table when saved (`standard_state_dict`), because
`linear(table[ids]) == linear(table)[ids]`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from pipeline.errors import PipelineError
from pipeline.models import POSITION_ATTRIBUTES, input_layers
from pipeline.paths import resolve_local_path
from pipeline.recipe import PositionPolicy, TokenEmbeddingPolicy
from pipeline.vectors import Alignment, align_vectors, load_vectors

POSITION_LIMIT_FIELDS = ("max_position_embeddings", "n_positions")


class FixedTable(nn.Module):
    """A lookup table that is never trained: a buffer named `weight` of shape (rows, hidden).

    ids (...) → vectors (..., hidden). Used for sinusoidal positions and for `none` (all zeros).
    """

    def __init__(self, table: torch.Tensor):
        super().__init__()
        self.register_buffer("weight", table)

    @property
    def num_embeddings(self) -> int:
        return self.weight.shape[0]

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return F.embedding(ids, self.weight)


class ProjectedLookup(nn.Module):
    """A lookup followed by a linear map: ids (...) → lookup (..., d_in) → projection (..., d_out).

    Used for narrow static vectors (GloVe 50-d into a 384-d encoder) and for `combine: concat`.
    """

    def __init__(self, lookup: nn.Module, projection: nn.Linear):
        super().__init__()
        self.lookup = lookup
        self.projection = projection

    @property
    def num_embeddings(self) -> int:
        return self.lookup.num_embeddings

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.projection(self.lookup(ids))

    def folded_table(self) -> torch.Tensor:
        """The equivalent plain table (rows, d_out)."""
        inner = self.lookup.folded_table() if isinstance(self.lookup, ProjectedLookup) else self.lookup.weight
        return self.projection(inner)


def table_of(module: nn.Module) -> nn.Module:
    """The innermost lookup (an `nn.Embedding` or `FixedTable`) of a possibly projected module."""
    while isinstance(module, ProjectedLookup):
        module = module.lookup
    return module


def sinusoidal_table(rows: int, width: int) -> torch.Tensor:
    """PE[pos, 2i] = sin(pos / 10000^(2i/d)), PE[pos, 2i+1] = cos(pos / 10000^(2i/d)); shape (rows, width)."""
    position = torch.arange(rows, dtype=torch.float64).unsqueeze(1)
    frequency = torch.exp(torch.arange(0, width, 2, dtype=torch.float64) * (-math.log(10000.0) / width))
    table = torch.zeros(rows, width, dtype=torch.float64)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency)[:, : width // 2]
    return table.float()


def extended_table(old: torch.Tensor, rows: int, mode: str, offset: int) -> torch.Tensor:
    """Grow a learned position table (old_rows, hidden) to (rows, hidden).

    copy: old rows kept, new rows repeat the old ones after `offset` (RoBERTa keeps rows 0..padding_idx for
    padding). interpolate: the old table resampled linearly over the new length (old rows move).
    """
    if rows <= old.shape[0]:
        raise PipelineError(f"extend needs max_positions above the current {old.shape[0]}", field="layers.positions.max_positions")
    if mode == "interpolate":
        return F.interpolate(old.T.unsqueeze(0), size=rows, mode="linear", align_corners=True)[0].T.contiguous()
    body = old[offset:]
    repeats = math.ceil((rows - offset) / body.shape[0])
    return torch.cat([old[:offset], body.repeat(repeats, 1)])[:rows].clone()


def _position_owner(model: PreTrainedModel) -> tuple[nn.Module, str]:
    base = model.base_model
    for owner in (getattr(base, "embeddings", None), base):
        for name in POSITION_ATTRIBUTES:
            if owner is not None and isinstance(getattr(owner, name, None), nn.Module):
                return owner, name
    raise PipelineError(
        f"{type(model).__name__} has no absolute position table (rotary or relative positions): "
        "layers.positions.policy: replace cannot apply",
        field="layers.positions",
    )


def _resize_position_buffers(owner: nn.Module, rows: int) -> None:
    """BERT-style embeddings cache `position_ids` / `token_type_ids` of the table's length; match the new one."""
    if isinstance(getattr(owner, "position_ids", None), torch.Tensor):
        owner.register_buffer("position_ids", torch.arange(rows).expand((1, -1)), persistent=False)
    if isinstance(getattr(owner, "token_type_ids", None), torch.Tensor):
        owner.register_buffer("token_type_ids", torch.zeros((1, rows), dtype=torch.long), persistent=False)


def replace_positions(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, policy: PositionPolicy) -> str:
    """Swap the position table as `policy.init` says; returns a one-line description of what was done."""
    owner, name = _position_owner(model)
    old = table_of(getattr(owner, name)).weight.detach()
    rows, width = policy.max_positions or old.shape[0], old.shape[1]
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
        padding_idx = getattr(table_of(getattr(owner, name)), "padding_idx", None)
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
    setattr(owner, name, new.to(old.device))
    for field in POSITION_LIMIT_FIELDS:
        if hasattr(model.config, field):
            setattr(model.config, field, rows)
    _resize_position_buffers(owner, rows)
    if rows > old.shape[0]:  # the tokenizer's own limit must not undo a longer table
        tokenizer.model_max_length = max(rows, tokenizer.model_max_length)
    # Guard against a model whose own code rebuilds or overwrites the table: read the values back.
    if not torch.equal(table_of(input_layers(model).positions).weight.detach().cpu(), expected.cpu()):
        raise PipelineError("the new position table did not survive in the model", field="layers.positions")
    return source


def _tokenizer_lowercases(tokenizer: PreTrainedTokenizerBase) -> bool:
    return bool(getattr(tokenizer, "do_lower_case", False)) or tokenizer.tokenize("A") == tokenizer.tokenize("a")


def replace_token_embeddings(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, policy: TokenEmbeddingPolicy, seed: int
) -> tuple[str, Alignment | None]:
    """Swap the token-embedding table for a random or a static-vector one; returns a description and the
    vector alignment (None for `init: random`)."""
    old = table_of(model.get_input_embeddings())
    rows, width = old.weight.shape
    if policy.init == "random":
        std = policy.std or float(old.weight.detach().std())
        new = nn.Embedding(rows, width, padding_idx=old.padding_idx)
        nn.init.normal_(new.weight, std=std)
        model.set_input_embeddings(new.to(old.weight.device))
        return f"random normal (std {std:.4f})", None

    vectors = load_vectors(resolve_local_path(policy.vectors), policy.vectors_format, policy.vectors_vocab and resolve_local_path(policy.vectors_vocab))
    # Indexed by id: the model's table may have rows past the vocabulary, and ids need not be contiguous.
    vocabulary = [f"<unused-{i}>" for i in range(rows)]
    for token, token_id in tokenizer.get_vocab().items():
        if token_id < rows:
            vocabulary[token_id] = token
    alignment = align_vectors(vocabulary, set(tokenizer.all_special_tokens), vectors, _tokenizer_lowercases(tokenizer), policy.fallback, seed)
    table = torch.from_numpy(alignment.table)
    if vectors.dim > width:
        raise PipelineError(f"{vectors.dim}-d vectors are wider than the model's {width}", field="layers.token_embeddings.vectors")
    if vectors.dim < width and policy.width == "pad":
        table = F.pad(table, (0, width - vectors.dim))
    lookup = nn.Embedding.from_pretrained(table, freeze=False, padding_idx=old.padding_idx)
    new: nn.Module = lookup
    if table.shape[1] < width:
        new = ProjectedLookup(lookup, nn.Linear(table.shape[1], width, bias=False))
    model.set_input_embeddings(new.to(old.weight.device))
    how = f"projected {vectors.dim} → {width}" if table.shape[1] < width else ("zero-padded" if vectors.dim < width else "same width")
    return f"vectors {policy.vectors} ({how})", alignment


def retie_output_embeddings(model: PreTrainedModel) -> None:
    """After the input table is replaced, point a tied LM output layer at the new table again (one tensor)."""
    output = model.get_output_embeddings()
    if output is None or not getattr(model.config, "tie_word_embeddings", False):
        return
    table = model.get_input_embeddings()
    if not isinstance(table, nn.Embedding):
        raise PipelineError(
            "the LM output layer is tied to the token table, and a projected table cannot be tied; "
            "use width: pad (or vectors as wide as the model)",
            field="layers.token_embeddings.width",
        )
    output.weight = table.weight


def describe_output_embeddings(model: PreTrainedModel) -> str:
    """What the LM output layer is, relative to the token-embedding table (for the run's input_layers.json)."""
    output = model.get_output_embeddings()
    if output is None:
        return "none (the task head reads the encoder's states)"
    if output.weight is getattr(model.get_input_embeddings(), "weight", None):
        return "tied to the token-embedding table: one tensor, so it is frozen, trained or replaced with it"
    return "untied: its own weights, trained with the head"


def standard_state_dict(model: nn.Module, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Fold every `ProjectedLookup` into one plain `weight`, so the saved weights fit the stock architecture."""
    folded = dict(state_dict)
    projected = {name: module for name, module in model.named_modules() if isinstance(module, ProjectedLookup)}
    outermost = [name for name in projected if not any(name.startswith(f"{other}.") for other in projected)]
    for name in outermost:
        for key in [k for k in folded if k.startswith(f"{name}.lookup.") or k.startswith(f"{name}.projection.")]:
            del folded[key]
        with torch.no_grad():
            folded[f"{name}.weight"] = projected[name].folded_table().detach().cpu().contiguous()
    return folded

