"""The rotary decoder family: Llama-architecture models (Llama, SmolLM2, Qwen2/3, Mistral, Gemma...) and kin.

These models have a token table (`embed_tokens`) and no position table: rotary position embeddings rotate the
queries and keys inside every attention layer. Their position policies (`rotary`) change the rotation: its base,
its scaling, the share of each head it rotates, or no rotation at all; freeze and finetune change nothing (the
rotation has no parameters). Token embedding policies apply as to any family (an LM head tied to the table follows
it). Like GPT-2, they pad with EOS and their sequence head pools the last non-pad token.
"""

from __future__ import annotations

from typing import Any

from torch import nn
from transformers import PreTrainedModel

from pipeline.errors import PipelineError
from pipeline.families.base import CAUSAL_LM, Family
from pipeline.families.llama import SPEC, rotary


class LlamaFamily(Family):
    spec = SPEC
    scratch_model_type = "llama"
    checkpoint_model_types = frozenset(
        {
            "llama",
            "mistral",
            "mixtral",
            "qwen2",
            "qwen3",
            "smollm3",
            "gemma",
            "gemma2",
            "olmo",
            "olmo2",
            "phi3",
            "granite",
            "stablelm",
            "gpt_neox",
        }
    )
    pad_with_eos = True
    lm_objective = CAUSAL_LM
    block_list_names = ("layers",)

    def new_rotation(self, model: PreTrainedModel, policy: Any) -> None:
        rotary.apply_rope(model, policy, self.recognised_blocks(model))

    def stop_rotation(self, model: PreTrainedModel, layers: list[int] | None) -> None:
        rotary.apply_no_rotation(model, layers, self.recognised_blocks(model))

    def recognised_blocks(self, model: PreTrainedModel) -> nn.ModuleList | None:
        """The blocks, where the rotation in them is one this family knows how to change (one line otherwise)."""
        blocks = self.blocks(model)
        why_not = rotary.why_not_recognised(model, blocks)
        if why_not is not None:
            raise PipelineError(f"cannot apply a position policy: {why_not}", field="layers.positions")
        return blocks

    def rotary_positions(self, model: PreTrainedModel) -> dict[str, Any] | None:
        blocks = self.blocks(model)
        if rotary.why_not_recognised(model, blocks) is not None:
            return None
        details = rotary.describe(model, blocks)
        return {**details, "summary": rotary.summary(details)}

    def restore_saved_policies(self, model: PreTrainedModel) -> None:
        rotary.restore_rotation(model, self.blocks(model))


FAMILY = LlamaFamily()
