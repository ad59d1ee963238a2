"""Helpers the tests share: tiny labelled data, tiny checkpoints built from configs, recipe builders, a fresh
training run. Nothing here touches the network: models are random-initialised from small configs."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path
from typing import Any

import torch
import yaml

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


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> str:
    """Rows as JSON lines; returns the path as a recipe names it."""
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def reset_accelerate_state() -> None:
    """Accelerate keeps process-wide singletons: forget them, as a new process would start."""
    from accelerate.state import AcceleratorState, PartialState

    AcceleratorState._reset_state(True)
    PartialState._reset_state()


def train_fresh(raw: dict[str, Any]) -> Path:
    """Validate a raw recipe and train it as a new process would (a test may train several runs)."""
    from pipeline.experiment.recipes import validate_recipe
    from pipeline.training.run import train

    reset_accelerate_state()
    return train(validate_recipe(raw))


def build(raw: dict[str, Any]):
    """Validate a raw recipe and build its experiment (no training)."""
    from pipeline.experiment.build import build_experiment
    from pipeline.experiment.recipes import validate_recipe

    return build_experiment(validate_recipe(raw))


def write_glove(path: Path, words: list[str], dim: int = 4) -> dict[str, Any]:
    """A GloVe text file of seeded random vectors; returns each word's vector as written (6 decimals)."""
    import numpy as np

    rng = np.random.default_rng(0)
    vectors = {word: rng.normal(size=dim).astype(np.float32) for word in words}
    path.write_text("".join(f"{w} {' '.join(f'{x:.6f}' for x in v)}\n" for w, v in vectors.items()))
    return {w: np.round(v, 6) for w, v in vectors.items()}


def save_tiny_bert(folder: Path, init_seed: int = 0, **config: Any) -> Path:
    """A 2-layer, 32-wide BERT with a WordPiece vocabulary of the test words, saved like a Hub checkpoint."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    vocab = SPECIAL + FILLER + POSITIVE + NEGATIVE
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizerFast(vocab=str(folder / "vocab.txt"), model_max_length=64)
    tokenizer.save_pretrained(folder)
    bert_config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        **config,
    )
    torch.manual_seed(init_seed)  # the same "pretrained" weights in every session
    BertModel(bert_config).save_pretrained(folder)
    return folder


def save_tiny_decoder(folder: Path, model_class: Any, config: Any) -> Path:
    """A tiny decoder checkpoint with the real GPT-2 BPE tokenizer shipped in the package."""
    from transformers import AutoTokenizer

    from pipeline.paths import resolve_local_path

    tokenizer = AutoTokenizer.from_pretrained(resolve_local_path(GPT2_TOKENIZER))
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    model_class(config).save_pretrained(folder)
    return folder


def save_tiny_llama(folder: Path) -> Path:
    """A 2-layer, 32-wide Llama causal LM (rotary positions, tied LM head, as SmolLM2) with the GPT-2 tokenizer."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=50257,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=64,
        bos_token_id=50256,
        eos_token_id=50256,
        tie_word_embeddings=True,
    )
    return save_tiny_decoder(folder, LlamaForCausalLM, config)


def recipe_dict(
    model_dir: Path | None, data_files: dict[str, str], output_dir: Path, family: str = "bert", **sections: Any
) -> dict[str, Any]:
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


# Language modeling: tiny bi-LSTM and GPT-2 configs, sentences of a fixed, learnable shape.
BILSTM_LM = {
    "hidden_size": 16,
    "lstm_size": 32,
    "num_layers": 2,
    "char_cnn": True,
    "max_characters": 10,
    "char_filters": 4,
    "char_max_width": 3,
}
GPT2_LM = {"n_embd": 16, "n_layer": 2, "n_head": 2, "n_positions": 64}


def fresh_bilstm_model(max_length: int = 16) -> dict[str, Any]:
    """A recipe's `model` section: a fresh small bi-LSTM with a word tokenizer built on the training text."""
    return {
        "family": "bilstm",
        "name_or_path": None,
        "config": BILSTM_LM,
        "tokenizer": {"build": "word", "min_frequency": 1},
        "max_length": max_length,
    }


def templated_sentences(count: int, seed: int) -> list[str]:
    """Sentences with a fixed shape (determiner noun verb preposition the noun .): learnable word order."""
    rng = random.Random(seed)
    nouns, verbs = ["cat", "dog", "bird", "child", "horse"], ["sat", "slept", "waited", "stood"]
    return [
        f"{rng.choice(['the', 'a'])} {rng.choice(nouns)} {rng.choice(verbs)} {rng.choice(['on', 'near', 'under'])} "
        f"the {rng.choice(nouns)} ."
        for _ in range(count)
    ]


def lm_recipe(tmp_path: Path, files: dict[str, str], family: str = "bilstm", **sections: Any) -> dict[str, Any]:
    is_bilstm = family == "bilstm"
    recipe = recipe_dict(None, files, tmp_path / f"{family}-lm", family=family, **sections)
    recipe["model"] = {
        "family": family,
        "config": BILSTM_LM if is_bilstm else GPT2_LM,
        "tokenizer": {"build": "word" if is_bilstm else "bpe", "vocab_size": 300, "min_frequency": 1},
        "max_length": 16,
        **sections.get("model", {}),
    }
    recipe["task"] = {
        "type": "language-modeling",
        "objective": "bidirectional" if is_bilstm else "causal",
        **sections.get("task", {}),
    }
    recipe["eval"] = {"splits": ["validation"], "batch_size": 8}
    recipe["train"] = {
        **recipe["train"],
        "max_steps": 80,
        "eval_every_steps": 40,
        "lr": 1e-2,
        "scheduler": "linear",
        **sections.get("train", {}),
    }
    return recipe


# Token classification: POS-style tags of a fixed sentence shape.
WORDS = {
    "DET": ["the", "a"],
    "NOUN": ["cat", "dog", "bird", "horse"],
    "VERB": ["sat", "slept", "waited"],
    "ADP": ["on", "near"],
}
SHAPE = ["DET", "NOUN", "VERB", "ADP", "DET", "NOUN"]
BILSTM_TAGGER = {
    "hidden_size": 16,
    "lstm_size": 32,
    "num_layers": 1,
    "char_cnn": True,
    "max_characters": 10,
    "char_filters": 4,
    "char_max_width": 3,
}


def tagged_sentences(count: int, seed: int) -> list[dict[str, list[str]]]:
    rng = random.Random(seed)
    return [{"tokens": [rng.choice(WORDS[tag]) for tag in SHAPE], "tags": list(SHAPE)} for _ in range(count)]


def tagging_recipe(
    tmp_path: Path, files: dict[str, str], model_dir: Path | None = None, family: str = "bilstm", **sections
) -> dict:
    recipe = recipe_dict(model_dir, files, tmp_path / f"{family}-pos", family=family, **sections)
    recipe["task"] = {"type": "token-classification"}
    if model_dir is None:
        recipe["model"] = {
            "family": "bilstm",
            "config": BILSTM_TAGGER,
            "tokenizer": {"build": "word", "vocab_size": 100, "min_frequency": 1},
            "max_length": 16,
        }
    recipe["eval"] = {"splits": ["validation"], "metrics": ["accuracy", "f1_macro"], "batch_size": 8}
    recipe["train"] = {**recipe["train"], "max_steps": 30, "lr": 1e-2}
    return recipe


# Sentence embeddings: anchors of two sentiment words, positives that hold them among filler words.
def toy_pairs(count: int, seed: int, scored: bool = False) -> list[dict]:
    """Anchors of two distinct words; each positive holds them among filler words (a score: how many it holds)."""
    rng = random.Random(seed)
    combos = list(itertools.permutations(POSITIVE + NEGATIVE, 2))
    rng.shuffle(combos)
    rows = []
    for first, second in combos[:count]:
        words = [first, second, *rng.sample(FILLER, 3)]
        rng.shuffle(words)
        row = {"anchor": f"{first} {second}", "positive": " ".join(words)}
        if scored:
            kept = rng.randint(0, 2)
            row["positive"] = " ".join([first, second][:kept] + rng.sample(FILLER, 4))
            row["score"] = float(kept)
        rows.append(row)
    return rows
