"""The rotary decoder family: Llama-architecture models (Llama, SmolLM2, Qwen2/3, Mistral, Gemma...) and kin.

These models have a token table (`embed_tokens`) and no position table: rotary position embeddings rotate the
queries and keys inside every attention layer, so there is nothing to freeze, fine-tune or replace there. Token
embedding policies apply as to any family (an LM head tied to the table follows it). Like GPT-2, they pad with
EOS and their sequence head pools the last non-pad token.
"""

from __future__ import annotations

from pipeline.families.base import CAUSAL_LM, Family
from pipeline.families.llama import SPEC


class LlamaFamily(Family):
    name = SPEC.name
    description = SPEC.description
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
    no_position_table = SPEC.no_position_table
    block_list_names = ("layers",)


FAMILY = LlamaFamily()
