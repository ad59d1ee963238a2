"""The rotary decoder family (Llama architecture and kin): its spec; the implementation is `family`."""

from pipeline.families.spec import FamilySpec

SPEC = FamilySpec(
    "llama",
    "rotary-position decoders of the Llama architecture: Llama, SmolLM2, Qwen2, Mistral... (no position table)",
    objective="causal",
    no_position_table="rotary: positions rotate queries and keys inside attention; no table",
    rotary=True,
    lora_targets=("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
)
