"""The GPT-2 family (decoders with a learned absolute position table): its spec; the implementation is `family`."""

from pipeline.families.spec import FamilySpec

SPEC = FamilySpec(
    "gpt2",
    "GPT-2 family (learned absolute positions `wpe`; pads with EOS, pools the last non-pad token)",
    objective="causal",
    lora_targets=("c_attn", "c_proj", "c_fc"),
)
