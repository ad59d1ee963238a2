"""GPU-only checks (skipped where no CUDA device is present): bf16 autocast training on one GPU."""

from __future__ import annotations

import json
import math

import pytest
import torch
from helpers import recipe_dict

from pipeline.experiment.recipes import validate_recipe
from pipeline.training.run import train

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def test_bf16_training_on_one_gpu(tmp_path, jsonl_data, tiny_bert):
    run_dir = train(
        validate_recipe(recipe_dict(tiny_bert, jsonl_data, tmp_path / "run", train={"mixed_precision": "bf16"}))
    )
    summary = json.loads((run_dir / "metrics.json").read_text())["train"]
    assert summary["steps"] == 4
    assert summary["peak_memory_mb"] > 0  # torch.cuda.max_memory_allocated, not RSS
    assert json.loads((run_dir / "batching.json").read_text())["processes"] == 1


def test_bilstm_language_model_in_bf16_on_one_gpu(tmp_path):
    from test_language_modeling import lm_recipe, templated_sentences

    files = {}
    for split, count in (("train", 64), ("validation", 16)):
        path = tmp_path / f"{split}.txt"
        path.write_text("\n".join(templated_sentences(count, seed=count)) + "\n")
        files[split] = str(path)
    recipe = lm_recipe(tmp_path, files, train={"mixed_precision": "bf16", "max_steps": 4, "eval_every_steps": None})
    run_dir = train(validate_recipe(recipe))
    scores = json.loads((run_dir / "metrics.json").read_text())["validation"]
    assert math.isfinite(scores["perplexity"]) and scores["perplexity"] > 1
