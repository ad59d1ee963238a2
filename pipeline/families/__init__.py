"""Model families (BERT, GPT-2, rotary decoders, the bi-LSTM): each owns what its models are, behind one protocol.

`families.base` defines the protocol, `families.registry` maps `model.family` names to families, and one module
(or package) per family says where its input layers live. Nothing here reads a recipe: `pipeline.training.modeling`
builds a family's tokenizer and model from the recipe's `model` section.
"""

from pipeline.families.base import Family, InputLayers, LMObjective, TokenFeatures
from pipeline.families.registry import FAMILIES, family_named, register_family

__all__ = ["FAMILIES", "Family", "InputLayers", "LMObjective", "TokenFeatures", "family_named", "register_family"]
