"""The surgery registry: every variant a recipe can name has an implementation (the list below is the recipe
language's), a missing one is found at import, tags come from the variants' `Literal` fields, and a new token-table
init is one variant class and one registered implementation that the front door picks up."""

from __future__ import annotations

import importlib
import re
from typing import Literal

import pytest
import torch
from pydantic import Field
from transformers import AutoTokenizer, BertForSequenceClassification

from pipeline.families.registry import family_named
from pipeline.recipe.layers import LayersConfig, MeanTransfer, RandomTable, ReplacedTable
from pipeline.recipe.variants import union_members
from pipeline.surgery import operate as front_door
from pipeline.surgery import registry
from pipeline.surgery.operate import SurgeryContext, operate
from pipeline.surgery.registry import implements, missing_implementations, recipe_variants
from pipeline.surgery.replace import NewRows, ReplacedTableSurgery, TableSlot

EVERY_VARIANT = {
    "layers.token_embeddings": {
        "FinetunedTable", "FrozenTable", "RandomTable", "VectorTable", "MeanTransfer", "WeightedTransfer",
        "FocusTransfer", "OmpTransfer",
    },
    "layers.positions": {
        "FinetunedPositions", "FrozenPositions", "SinusoidalPositions", "LearnedPositions", "ExtendedPositions",
        "NoPositions", "RopePositions",
    },
    "layers.encoder": {"FinetunedBody", "FrozenBody", "LoraBody"},
    "layers.head": {"FinetunedHead", "FrozenHead"},
}  # fmt: skip


def test_every_variant_a_recipe_can_name_has_an_implementation():
    named = {layer: {variant.__name__ for variant in variants} for layer, variants in recipe_variants().items()}
    assert named == EVERY_VARIANT
    assert missing_implementations() == []


def test_a_missing_implementation_is_listed_and_refused_at_import(monkeypatch):
    monkeypatch.delitem(registry.IMPLEMENTATIONS, RandomTable)
    assert missing_implementations() == ["layers.token_embeddings: RandomTable"]
    with pytest.raises(
        RuntimeError, match=re.escape("without an implementation: layers.token_embeddings: RandomTable")
    ):
        importlib.reload(front_door)
    monkeypatch.undo()
    importlib.reload(front_door)  # the registry whole again: the front door imports


def test_tags_are_the_variants_literal_fields_in_matching_order():
    assert RandomTable.tags == {"policy": "replace", "init": "random"}
    assert MeanTransfer.tags == {"policy": "replace", "init": "transfer", "transfer": "mean"}
    for name, field in LayersConfig.model_fields.items():
        tags = [tuple(variant.tags.items()) for variant in union_members(field)]
        assert len(set(tags)) == len(tags), f"two variants of layers.{name} share their tags"


class ConstantTable(ReplacedTable):
    """A new init as a user would add it: every row the same constant."""

    init: Literal["constant"] = Field(description="Every row `value`.")
    value: float = Field(0.5, description="The value of every entry.")


@implements(ConstantTable)
class ConstantTableSurgery(ReplacedTableSurgery):
    def rows(self, policy: ConstantTable, slot: TableSlot) -> NewRows:
        return NewRows(torch.full((slot.rows, slot.width), policy.value), f"constant {policy.value}")


def test_a_new_init_is_one_class_and_one_implementation(tiny_bert):
    assert ConstantTable.tags == {"policy": "replace", "init": "constant"}
    model = BertForSequenceClassification.from_pretrained(tiny_bert, num_labels=2)
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    layers = LayersConfig.model_construct(**{**LayersConfig().__dict__, "token_embeddings": ConstantTable(
        init="constant", value=0.25, then="freeze")})  # fmt: skip
    done = operate(model, tokenizer, layers, SurgeryContext(family=family_named("bert"), seed=0))
    table = model.get_input_embeddings().weight
    assert torch.all(table == 0.25) and not table.requires_grad  # its rows, then: freeze as for any replaced table
    assert done.report.sources.token_embeddings == "constant 0.25"
