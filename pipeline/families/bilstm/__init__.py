"""The bi-LSTM family: this package's ELMo-style encoder (`modeling`, registered with the transformers Auto classes
when imported), its character ids (`characters`) and the family (`family`). This module holds only its spec."""

from pipeline.families.spec import FamilySpec

SPEC = FamilySpec(
    "bilstm",
    "this package's ELMo-style bi-LSTM (no position table)",
    objective="bidirectional",
    no_position_table="recurrent: the recurrence carries word order; no table",
    needs_max_length=True,
)
