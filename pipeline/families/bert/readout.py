"""The last block of a BERT-layout encoder under a sequence-level head computes its first position only.

The heads of `BertForSequenceClassification` (the pooler on `hidden[:, 0]`) and of RoBERTa, XLM-R, CamemBERT and
ELECTRA (a classifier on `hidden[:, 0]`) read nothing of the last block's output but position 0, yet a plain
forward pass computes every position: the query projection, the attention output, the feed-forward network and
their backward passes, for all tokens. `read_first_position_only` swaps the last block's class for a subclass
whose forward computes position 0 alone, its keys and values still from every position. That is the same function
of the inputs (not an approximation) and saves about five sixths of the block's work; only the dropout masks of the
block are drawn for fewer positions, so a run's random stream differs from one that computes every position.

The weights, their names and the saved model are untouched: the subclass only replaces `forward`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.models.bert.modeling_bert import eager_attention_forward

# model_type → the sequence-level head class known to read only position 0 of the last hidden states.
HEADS_ON_FIRST_POSITION = {
    "bert": "BertForSequenceClassification",
    "roberta": "RobertaForSequenceClassification",
    "xlm-roberta": "XLMRobertaForSequenceClassification",
    "camembert": "CamembertForSequenceClassification",
    "electra": "ElectraForSequenceClassification",
}
BLOCK_PARTS = (
    "attention.self.query",
    "attention.self.key",
    "attention.self.value",
    "attention.output",
    "intermediate",
    "output",
)
_FIRST_POSITION_CLASSES: dict[type, type] = {}


def first_position_forward(
    self: nn.Module, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None, *args: Any, **kwargs: Any
) -> torch.Tensor:
    """A BERT-layout block on hidden_states (batch, seq, hidden) → its output at position 0 only, (batch, 1, hidden).

    attention_mask: None, or the model's additive / boolean mask (batch, 1, seq or 1, seq); its first query row is used.
    """
    kwargs = {key: value for key, value in kwargs.items() if key not in ("encoder_attention_mask", "past_key_values")}
    attention = self.attention.self
    batch, length, _ = hidden_states.shape
    first = hidden_states[:, :1]

    def heads(
        projected: torch.Tensor, positions: int
    ) -> torch.Tensor:  # (batch, positions, hidden) → (batch, heads, positions, head size)
        return projected.view(batch, positions, -1, attention.attention_head_size).transpose(1, 2)

    query = heads(attention.query(first), 1)
    key, value = heads(attention.key(hidden_states), length), heads(attention.value(hidden_states), length)
    if attention_mask is not None and attention_mask.dim() == 4:
        attention_mask = attention_mask[:, :, :1]
    interface = ALL_ATTENTION_FUNCTIONS.get_interface(attention.config._attn_implementation, eager_attention_forward)
    context, _ = interface(
        attention,
        query,
        key,
        value,
        attention_mask,
        dropout=attention.dropout.p if attention.training else 0.0,
        scaling=attention.scaling,
        **kwargs,
    )
    attended = self.attention.output(context.reshape(batch, 1, -1).contiguous(), first)
    return self.feed_forward_chunk(attended)


def first_position_class(block_class: type) -> type:
    """The subclass of `block_class` whose forward computes position 0 only (one per block class)."""
    if block_class not in _FIRST_POSITION_CLASSES:
        _FIRST_POSITION_CLASSES[block_class] = type(
            f"FirstPosition{block_class.__name__}",
            (block_class,),
            {"forward": first_position_forward, "__module__": __name__},
        )
    return _FIRST_POSITION_CLASSES[block_class]


def why_not_first_position(model: PreTrainedModel, last_block: nn.Module | None) -> str | None:
    """Why the last block must compute every position for this model, or None when position 0 is enough."""
    config = model.config
    if HEADS_ON_FIRST_POSITION.get(config.model_type) != type(model).__name__:
        return f"{type(model).__name__} is not a head known to read only the first position"
    if config._attn_implementation not in ("eager", "sdpa"):
        return f"attention implementation {config._attn_implementation}"
    if config.is_decoder or getattr(config, "add_cross_attention", False):
        return "a decoder"
    if config.output_hidden_states or config.output_attentions:
        return "the model returns hidden states or attentions"
    if (
        last_block is None
        or not all(_has_part(last_block, part) for part in BLOCK_PARTS)
        or not hasattr(last_block, "feed_forward_chunk")
    ):
        return "the last block does not have the BERT layout"
    return None


def _has_part(module: nn.Module, dotted: str) -> bool:
    try:
        module.get_submodule(dotted)
    except AttributeError:
        return False
    return True


def read_first_position_only(model: PreTrainedModel, last_block: nn.Module | None) -> str | None:
    """Make `last_block` compute position 0 only, when the model's head reads nothing else; returns why not, or None."""
    why_not = why_not_first_position(model, last_block)
    if why_not is None and type(last_block) not in _FIRST_POSITION_CLASSES.values():
        last_block.__class__ = first_position_class(type(last_block))
    return why_not
