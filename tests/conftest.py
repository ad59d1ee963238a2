"""Shared fixtures: tiny BERT and GPT-2 checkpoints built from configs, tiny labelled data, recipe builders.

Nothing here touches the network: models are random-initialised from small configs and saved to tmp folders.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import pytest
import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent
GPT2_TOKENIZER = "pkg://pipeline/assets/gpt2-tokenizer"
POSITIVE = ["good", "great", "fine", "happy", "nice"]
NEGATIVE = ["bad", "awful", "poor", "sad", "ugly"]
FILLER = ["the", "a", "movie", "was", "very", "and", "plot", "actors"]
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def make_examples(count: int, seed: int) -> list[dict[str, str]]:
    """Texts whose label is given by which sentiment words they hold (learnable in a few steps)."""
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        label = "pos" if i % 2 == 0 else "neg"
        words = rng.sample(FILLER, 4) + rng.sample(POSITIVE if label == "pos" else NEGATIVE, 2)
        rng.shuffle(words)
        rows.append({"text": " ".join(words), "label": label})
    return rows


def reset_accelerate_state() -> None:
    """Accelerate keeps process-wide singletons: forget them, as a new process would start."""
    from accelerate.state import AcceleratorState, PartialState

    AcceleratorState._reset_state(True)
    PartialState._reset_state()


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    """Each test starts from a clean slate."""
    reset_accelerate_state()
    yield
    reset_accelerate_state()


def train_fresh(raw: dict[str, Any]) -> Path:
    """Validate a raw recipe and train it as a new process would (a test may train several runs)."""
    from pipeline.recipe_io import parse_recipe
    from pipeline.train import train

    reset_accelerate_state()
    return train(parse_recipe(raw))


def write_glove(path: Path, words: list[str], dim: int = 4) -> dict[str, Any]:
    """A GloVe text file of seeded random vectors; returns each word's vector as written (6 decimals)."""
    import numpy as np

    rng = np.random.default_rng(0)
    vectors = {word: rng.normal(size=dim).astype(np.float32) for word in words}
    path.write_text("".join(f"{w} {' '.join(f'{x:.6f}' for x in v)}\n" for w, v in vectors.items()))
    return {w: np.round(v, 6) for w, v in vectors.items()}


def save_tiny_bert(folder: Path, **config: Any) -> Path:
    """A 2-layer, 32-wide BERT with a WordPiece vocabulary of the test words, saved like a Hub checkpoint."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    vocab = SPECIAL + FILLER + POSITIVE + NEGATIVE
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizerFast(vocab=str(folder / "vocab.txt"), model_max_length=64)
    tokenizer.save_pretrained(folder)
    bert_config = BertConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=64, **config,
    )
    BertModel(bert_config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    return save_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def tiny_bert_without_dropout(tmp_path_factory) -> Path:
    """Deterministic forward passes: one process and two must then compute the same thing."""
    return save_tiny_bert(tmp_path_factory.mktemp("tiny-bert-nodrop"), hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


@pytest.fixture(scope="session")
def tiny_gpt2(tmp_path_factory) -> Path:
    """A 2-layer, 32-wide GPT-2 with the real GPT-2 BPE tokenizer shipped in the package."""
    from transformers import AutoTokenizer, GPT2Config, GPT2Model

    from pipeline.paths import resolve_local_path

    folder = tmp_path_factory.mktemp("tiny-gpt2")
    tokenizer = AutoTokenizer.from_pretrained(resolve_local_path(GPT2_TOKENIZER))
    tokenizer.save_pretrained(folder)
    GPT2Model(GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=2, n_head=2, n_positions=64)).save_pretrained(folder)
    return folder


@pytest.fixture
def jsonl_data(tmp_path) -> dict[str, str]:
    """train/validation JSONL files of the toy sentiment task."""
    paths = {}
    for split, count, seed in (("train", 48, 0), ("validation", 16, 1)):
        path = tmp_path / f"{split}.jsonl"
        path.write_text("".join(json.dumps(row) + "\n" for row in make_examples(count, seed)))
        paths[split] = str(path)
    return paths


def recipe_dict(model_dir: Path | None, data_files: dict[str, str], output_dir: Path, family: str = "bert", **sections: Any) -> dict[str, Any]:
    """A small, fast recipe as a raw mapping; `sections` replace or extend its top-level sections."""
    recipe = {
        "output_dir": str(output_dir),
        "model": {"family": family, "name_or_path": str(model_dir) if model_dir else None, "max_length": 32},
        "task": {"type": "sequence-classification"},
        "data": {"files": data_files},
        "train": {"max_steps": 4, "batch_size": 8, "lr": 1e-3, "log_every_steps": 1, "seed": 0},
        "eval": {"metrics": ["accuracy", "f1_macro"], "splits": ["validation"], "batch_size": 8},
    }
    for name, value in sections.items():
        recipe[name] = {**recipe.get(name, {}), **value} if isinstance(value, dict) else value
    return recipe


def write_recipe(path: Path, recipe: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path
