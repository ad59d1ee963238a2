"""The GPT-2 family: decoders with a learned absolute position table `wpe` beside the token table `wte`.

GPT-2 has no pad token: it pads with EOS, which the attention mask hides, and its sequence head pools the last
non-pad token (so padding must be on the right).
"""

from __future__ import annotations

from torch import nn
from transformers import PreTrainedModel

from pipeline.families.base import CAUSAL_LM, Family
from pipeline.families.gpt2 import SPEC


class GPT2Family(Family):
    spec = SPEC
    scratch_model_type = "gpt2"
    checkpoint_model_types = frozenset({"gpt2", "gpt_neo", "gpt_bigcode"})
    pad_with_eos = True
    lm_objective = CAUSAL_LM
    block_list_names = ("h",)
    lora_fan_in_fan_out = True

    def position_slot(self, model: PreTrainedModel) -> tuple[nn.Module, str] | None:
        base = model.base_model
        return (base, "wpe") if isinstance(getattr(base, "wpe", None), nn.Module) else None

    def set_positions(self, model: PreTrainedModel, table: nn.Module, rows: int) -> None:
        super().set_positions(model, table, rows)
        model.config.n_positions = rows  # GPT2Config maps max_position_embeddings to n_positions

    def position_limit(self, model: PreTrainedModel) -> int | None:
        return getattr(model.config, "n_positions", None)

    def embedding_modules(self, model: PreTrainedModel) -> list[nn.Module]:
        base = model.base_model
        return [module for module in (getattr(base, "wte", None), getattr(base, "wpe", None)) if module is not None]


FAMILY = GPT2Family()
