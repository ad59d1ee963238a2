"""The GPT-2 family (decoders with a learned absolute position table): its spec; the implementation is `family`."""

from pipeline.families.spec import FamilySpec

SPEC = FamilySpec(
    "gpt2",
    "GPT-2 family (learned absolute positions `wpe`; pads with EOS, pools the last non-pad token)",
    objective="causal",
)
