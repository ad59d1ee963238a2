"""The Family protocol: everything the pipeline knows about one kind of model, in one place.

A family says where a model keeps its token-embedding table and its absolute position table (or why it has
none), how to swap the position table, which modules are its blocks, how it pads, which language-modeling
objective it trains with, and which extra per-token inputs its model reads. Nothing outside `pipeline/families/`
names a Hugging Face attribute of an input layer; the rest of the pipeline asks the family.

Adding a family: subclass `Family`, fill in the class attributes, override what differs, and register an
instance (`pipeline.families.registry.register_family`). The facts recipe checks read (name, objective, kind of
positions, LoRA targets) are its `spec`, a `FamilySpec`: a built-in family's is the light `SPEC` of its package.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn
from transformers import AutoModelForCausalLM, BatchEncoding, PreTrainedModel, PreTrainedTokenizerBase

from pipeline.families.spec import FamilySpec


@dataclass
class InputLayers:
    """The input layers of a model.

    token_embeddings: ids (batch, seq) → vectors (batch, seq, hidden); a table of shape (vocab_size, hidden),
        one row per token id shared by all positions (possibly a narrower table plus a projection after surgery).
    positions: position ids (batch, seq) → vectors (batch, seq, hidden) added to the token vectors, or None
        when the model has no absolute table (rotary or relative positions, or a recurrent model).
    """

    token_embeddings: nn.Module
    positions: nn.Module | None


class TokenFeatures:
    """Extra per-token inputs a family's model reads beside `input_ids` (none by default).

    A family with such inputs (the bi-LSTM's character ids) returns a subclass from `Family.token_features`; the
    tasks and the collator handle them only through this interface, never by name.
    """

    pad_values: ClassVar[dict[str, int]] = {}  # feature name → value its padding positions get
    needs_offsets: ClassVar[bool] = False  # whether `add` reads the tokenizer's `offset_mapping`

    def add(
        self,
        encoded: BatchEncoding,
        tokenizer: PreTrainedTokenizerBase,
        texts: list[str] | list[list[str]],
        pairs: list[str] | None,
        split_into_words: bool = False,
    ) -> None:
        """Add the features of every example of a batch encoding: one list entry per token."""

    def of_token(self, tokenizer: PreTrainedTokenizerBase, token: str) -> dict[str, Any]:
        """The features of one vocabulary token standing alone (e.g. the separator in packed text)."""
        return {}


NO_TOKEN_FEATURES = TokenFeatures()


@dataclass(frozen=True)
class LMObjective:
    """A language-modeling objective: the Auto class that adds its head, and the directions it predicts.

    directions: (score prefix, output attribute holding the logits (batch, seq, vocab), shift) per direction;
    shift +1 means position t predicts token t+1, −1 that it predicts token t−1.
    """

    name: str
    auto_class: Any
    directions: tuple[tuple[str, str, int], ...]


CAUSAL_LM = LMObjective("causal", AutoModelForCausalLM, (("", "logits", 1),))


class Family:
    """Base of every model family; the defaults fit a Hugging Face transformer with no absolute position table.

    What recipe checks read of a family (its name, objective, kind of positions, default LoRA targets...) is written
    once, in its `spec`; the family reads those facts from there."""

    spec: ClassVar[FamilySpec]
    scratch_model_type: ClassVar[str]  # `model_type` of a model built from `model.config`
    # `model_type`s of checkpoints that certainly belong here; a checkpoint of another family's type is refused.
    checkpoint_model_types: ClassVar[frozenset[str]] = frozenset()
    pad_with_eos: ClassVar[bool] = False  # padding is always masked out, so EOS may double as the pad token
    lm_objective: ClassVar[LMObjective | None] = None  # its name is the spec's `objective`
    lora_fan_in_fan_out: ClassVar[bool] = False  # the layers store their weight transposed (GPT-2's Conv1D)
    block_list_names: ClassVar[tuple[str, ...]] = ("layer", "layers", "h", "block", "blocks")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        spec = getattr(cls, "spec", None)
        objective = cls.lm_objective.name if cls.lm_objective is not None else None
        if isinstance(spec, FamilySpec) and spec.objective != objective:
            raise TypeError(
                f"family {spec.name}: its spec says objective {spec.objective}, its lm_objective {objective}"
            )

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def description(self) -> str:
        return self.spec.description

    @property
    def no_position_table(self) -> str | None:
        """Why the family has no absolute position table; None when it has one."""
        return self.spec.no_position_table

    @property
    def rotary(self) -> bool:
        """Positions rotate queries and keys (see `rotary_positions`)."""
        return self.spec.rotary

    @property
    def lora_targets(self) -> tuple[str, ...]:
        """The linear layers `layers.encoder: lora` adapts by default."""
        return self.spec.lora_targets

    # --- the input layers -------------------------------------------------------------------------------------
    def position_slot(self, model: PreTrainedModel) -> tuple[nn.Module, str] | None:
        """(module owning the absolute position table, its attribute name), or None when there is none."""
        return None

    def input_layers(self, model: PreTrainedModel) -> InputLayers:
        slot = self.position_slot(model)
        positions = getattr(*slot) if slot is not None else None
        return InputLayers(token_embeddings=model.get_input_embeddings(), positions=positions)

    def set_positions(self, model: PreTrainedModel, table: nn.Module, rows: int) -> None:
        """Put a new position module of `rows` positions in place, with the config and buffers that go with it."""
        slot = self.position_slot(model)
        if slot is None:
            raise ValueError(f"family {self.name} has no position table")
        setattr(*slot, table)

    def position_limit(self, model: PreTrainedModel) -> int | None:
        """The longest input the model's positions allow (None: no limit stated)."""
        return getattr(model.config, "max_position_embeddings", None)

    def embedding_modules(self, model: PreTrainedModel) -> list[nn.Module]:
        """Modules at the model's input (tables and what sits beside them); layer-wise decay treats them as depth 0."""
        return [model.get_input_embeddings()]

    def blocks(self, model: PreTrainedModel) -> nn.ModuleList | None:
        """The stack of blocks, bottom first (for `freeze_bottom` and layer-wise decay); None if not found."""
        for name, module in model.base_model.named_modules():
            if isinstance(module, nn.ModuleList) and name.rsplit(".", 1)[-1] in self.block_list_names and len(module):
                return module
        return None

    # --- rotary positions (families with `rotary = True`) -------------------------------------------------------------
    def new_rotation(self, model: PreTrainedModel, policy: Any) -> None:
        """`init: rope`: rotate with a new base, scaling or share of each head (a `RopePositions`)."""
        raise ValueError(f"family {self.name} has no rotary positions")

    def stop_rotation(self, model: PreTrainedModel, layers: list[int] | None) -> None:
        """`init: none`: no rotation in these layers (None: in every layer)."""
        raise ValueError(f"family {self.name} has no rotary positions")

    def rotary_positions(self, model: PreTrainedModel) -> dict[str, Any] | None:
        """What rotates, with which base and scaling, over which dimensions, in which layers (None: not rotary)."""
        return None

    def restore_saved_policies(self, model: PreTrainedModel) -> None:
        """Re-apply what a saved model's config records of policies done in code (default: nothing)."""

    def compute_read_positions_only(self, model: PreTrainedModel) -> str | None:
        """Make the model compute only the positions its task head reads; returns why it cannot, or None when done."""
        return f"family {self.name} computes every position"

    # --- inputs and building ----------------------------------------------------------------------------------
    def token_features(self, model: PreTrainedModel) -> TokenFeatures:
        """The extra per-token inputs this model reads (default: none)."""
        return NO_TOKEN_FEATURES

    def prepare_fresh_model(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
        """Finish a model built from `model.config` with what it needs from the tokenizer (default: nothing)."""


def resize_position_buffers(owner: nn.Module, rows: int) -> None:
    """Embedding modules that cache `position_ids` / `token_type_ids` of the table's length: match the new one."""
    if isinstance(getattr(owner, "position_ids", None), torch.Tensor):
        owner.register_buffer("position_ids", torch.arange(rows).expand((1, -1)), persistent=False)
    if isinstance(getattr(owner, "token_type_ids", None), torch.Tensor):
        owner.register_buffer("token_type_ids", torch.zeros((1, rows), dtype=torch.long), persistent=False)
