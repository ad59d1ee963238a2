"""Model families (BERT, GPT-2, rotary decoders, the bi-LSTM): each owns what its models are, behind one protocol.

`families.base` defines the protocol (`Family`), `families.registry` maps `model.family` names to families, and one
package per family says where its input layers live: its `__init__` holds the `FamilySpec` that recipe checks read
(light: no torch), its `family` module the implementation. Nothing here reads a recipe: the experiment builder
builds a family's tokenizer and model from the recipe's `model` section.

Importing this package imports no model code. The bi-LSTM registers with the transformers Auto classes when
`pipeline.families.bilstm.modeling` is imported (a run does; to load a saved bi-LSTM elsewhere, import it first).
"""

from pipeline.families.registry import FAMILIES, family_named, family_spec, register_family
from pipeline.families.spec import FamilySpec

__all__ = ["FAMILIES", "FamilySpec", "family_named", "family_spec", "register_family"]
