"""A sweep's cells: the factorial product of the grids; keys joined by + vary together."""

from __future__ import annotations

import pytest

from pipeline.errors import PipelineError
from pipeline.sweeps.plan import cells_of, parse_grid


def test_grids_cross_and_joined_keys_vary_together():
    cells = cells_of(
        [
            parse_grid("model.add_tokens+layers.token_embeddings=[null, finetune],[{from_data: 5}, {rows: new}]"),
            parse_grid("train.lr=1e-3,1e-4"),
        ]
    )
    assert [cell.overrides for cell in cells] == [
        ("model.add_tokens=null", "layers.token_embeddings=finetune", "train.lr=1e-3"),
        ("model.add_tokens=null", "layers.token_embeddings=finetune", "train.lr=1e-4"),
        ("model.add_tokens={from_data: 5}", "layers.token_embeddings={rows: new}", "train.lr=1e-3"),
        ("model.add_tokens={from_data: 5}", "layers.token_embeddings={rows: new}", "train.lr=1e-4"),
    ]
    assert cells[2].name == "add_tokens=5,token_embeddings=new,lr=1e-3"


def test_joined_keys_need_a_value_per_key():
    with pytest.raises(PipelineError, match="2 keys joined by \\+ vary together"):
        parse_grid("a+b=[1, 2],[3]")
