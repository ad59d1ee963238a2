"""The last block computing position 0 only: the same logits and gradients as every position, same weights."""

from __future__ import annotations

import pytest
import torch
from transformers import (
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    BertConfig,
    CamembertConfig,
    ElectraConfig,
    RobertaConfig,
    XLMRobertaConfig,
)

from pipeline.families.bert.family import FAMILY as BERT

SIZES = {
    "vocab_size": 50,
    "hidden_size": 16,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 32,
    "max_position_embeddings": 40,
    "pad_token_id": 1,
}
CONFIGS = {
    "bert": BertConfig,
    "roberta": RobertaConfig,
    "xlm-roberta": XLMRobertaConfig,
    "camembert": CamembertConfig,
    "electra": ElectraConfig,
}


def pair(config_class: type, attention: str, dropout: float = 0.0, **head) -> tuple[torch.nn.Module, torch.nn.Module]:
    """Two copies of one randomly initialised classifier; the second reads position 0 only."""
    config = config_class(
        **SIZES, hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout, num_labels=3, **head
    )
    torch.manual_seed(0)
    full = AutoModelForSequenceClassification.from_config(config, attn_implementation=attention)
    trimmed = AutoModelForSequenceClassification.from_config(config, attn_implementation=attention)
    trimmed.load_state_dict(full.state_dict())
    assert BERT.compute_read_positions_only(trimmed) is None
    return full, trimmed


def batch() -> dict[str, torch.Tensor]:
    """Three texts of lengths 9, 5 and 2: padding the first query row must ignore."""
    ids = torch.randint(5, 50, (3, 9), generator=torch.Generator().manual_seed(1))
    mask = torch.tensor([[1] * 9, [1] * 5 + [0] * 4, [1] * 2 + [0] * 7])
    return {"input_ids": ids.masked_fill(mask == 0, 1), "attention_mask": mask, "labels": torch.tensor([0, 2, 1])}


@pytest.mark.parametrize("model_type", sorted(CONFIGS))
@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_same_logits_and_gradients_as_every_position(model_type: str, attention: str) -> None:
    full, trimmed = pair(CONFIGS[model_type], attention)
    assert type(BERT.blocks(trimmed)[-1]).__name__.startswith("FirstPosition")
    assert type(BERT.blocks(trimmed)[0]) is type(BERT.blocks(full)[0])  # only the last block changes
    full.train()
    trimmed.train()  # dropout 0: training mode, exact
    out_full, out_trimmed = full(**batch()), trimmed(**batch())
    torch.testing.assert_close(out_trimmed.logits, out_full.logits, rtol=1e-5, atol=1e-6)
    out_full.loss.backward()
    out_trimmed.loss.backward()
    for (name, p_full), p_trimmed in zip(full.named_parameters(), trimmed.parameters(), strict=True):
        grad_full = p_full.grad if p_full.grad is not None else torch.zeros_like(p_full)
        grad_trimmed = p_trimmed.grad if p_trimmed.grad is not None else torch.zeros_like(p_trimmed)
        torch.testing.assert_close(grad_trimmed, grad_full, rtol=1e-4, atol=1e-6, msg=name)


def test_the_last_block_costs_a_fraction_of_its_arithmetic() -> None:
    """The last block's feed-forward network sees one position per text instead of nine."""
    _, trimmed = pair(BertConfig, "sdpa")
    seen = []
    BERT.blocks(trimmed)[-1].intermediate.register_forward_hook(
        lambda module, args, output: seen.append(tuple(output.shape))
    )
    trimmed(**batch())
    assert seen == [(3, 1, SIZES["intermediate_size"])]


def test_weights_names_and_saved_model_are_unchanged(tmp_path) -> None:
    full, trimmed = pair(BertConfig, "sdpa", dropout=0.1)
    assert list(trimmed.state_dict()) == list(full.state_dict())
    trimmed.save_pretrained(tmp_path)
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert not any(type(m).__name__.startswith("FirstPosition") for m in reloaded.modules())
    with torch.no_grad():
        torch.testing.assert_close(trimmed.eval()(**batch()).logits, reloaded(**batch()).logits, rtol=1e-5, atol=1e-6)
    assert BERT.compute_read_positions_only(trimmed) is None  # a second call changes nothing


def test_heads_that_read_every_position_are_left_alone() -> None:
    config = BertConfig(**SIZES, num_labels=3)
    tagger = AutoModelForTokenClassification.from_config(config)
    assert "not a head known" in BERT.compute_read_positions_only(tagger)
    assert not any(type(m).__name__.startswith("FirstPosition") for m in tagger.modules())
    returns_states = AutoModelForSequenceClassification.from_config(BertConfig(**SIZES, output_hidden_states=True))
    assert "hidden states" in BERT.compute_read_positions_only(returns_states)
