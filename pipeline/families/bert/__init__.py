"""The BERT family (encoders with a learned absolute position table): its spec; the implementation is `family`."""

from pipeline.families.spec import FamilySpec

SPEC = FamilySpec(
    "bert",
    "any encoder with absolute position embeddings: BERT, RoBERTa, DistilBERT, MiniLM, ELECTRA...",
    lora_targets=("query", "key", "value", "dense"),
)
