"""Fixtures: tiny BERT, GPT-2 and Llama checkpoints built from configs, tiny labelled data, a clean Accelerate state.

Shared helper functions live in `helpers.py` (on the path through pytest's `pythonpath`).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from helpers import (
    make_examples,
    reset_accelerate_state,
    save_tiny_bert,
    save_tiny_decoder,
    save_tiny_llama,
    write_jsonl,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault(
    "EMBEDLAB_CACHE", tempfile.mkdtemp(prefix="embedlab-test-cache-")
)  # cached features of frozen bodies
if os.environ.get("PYTEST_XDIST_WORKER"):
    # `pytest -n 2` on two cores: one thread per worker (and per process it starts), since two torch processes
    # with two threads each thrash.
    import torch

    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    """Each test starts from a clean slate."""
    reset_accelerate_state()
    yield
    reset_accelerate_state()


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    return save_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def tiny_bert_without_dropout(tmp_path_factory) -> Path:
    """Deterministic forward passes: one process and two must then compute the same thing."""
    return save_tiny_bert(
        tmp_path_factory.mktemp("tiny-bert-nodrop"), hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0
    )


@pytest.fixture(scope="session")
def tiny_gpt2(tmp_path_factory) -> Path:
    """A 2-layer, 32-wide GPT-2 with the real GPT-2 BPE tokenizer shipped in the package."""
    from transformers import GPT2Config, GPT2Model

    config = GPT2Config(vocab_size=50257, n_embd=32, n_layer=2, n_head=2, n_positions=64)
    return save_tiny_decoder(tmp_path_factory.mktemp("tiny-gpt2"), GPT2Model, config)


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    """A 2-layer, 32-wide Llama causal LM (rotary positions, tied LM head, as SmolLM2) with the GPT-2 tokenizer."""
    return save_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture
def jsonl_data(tmp_path) -> dict[str, str]:
    """train/validation JSONL files of the toy sentiment task."""
    return {
        split: write_jsonl(tmp_path / f"{split}.jsonl", make_examples(count, seed))
        for split, count, seed in (("train", 48, 0), ("validation", 16, 1))
    }
