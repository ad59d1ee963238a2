"""The files that make a saved sentence encoder a sentence-transformers model: `SentenceTransformer("runs/x/model")`
loads the encoder from the folder itself (module 0), then its pooling (`1_Pooling`) and, where the run normalised
its vectors, `2_Normalize`, and gives the vectors the run scored with. Plain JSON: sentence-transformers is needed
only to load the model, never to write it."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.errors import PipelineError
from pipeline.storage import atomic_write_text

MODULE = "sentence_transformers.models."
POOLING_MODES = {"mean": "pooling_mode_mean_tokens", "cls": "pooling_mode_cls_token",
                 "max": "pooling_mode_max_tokens", "last": "pooling_mode_lasttoken"}  # fmt: skip
WIDTH_KEYS = ("hidden_size", "n_embd", "d_model", "dim")  # what configs call the width of their hidden states


def hidden_width(folder: Path) -> int:
    """The width of the saved encoder's hidden states, from its `config.json`."""
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    width = next((config[key] for key in WIDTH_KEYS if isinstance(config.get(key), int)), None)
    if width is None:
        raise PipelineError(f"{folder / 'config.json'} names no hidden size ({', '.join(WIDTH_KEYS)})")
    return width


def write_sentence_transformers_files(folder: Path, pooling: str, normalize: bool, max_length: int) -> None:
    """modules.json, sentence_bert_config.json, 1_Pooling/config.json (and 2_Normalize) beside a saved encoder."""
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": f"{MODULE}Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": f"{MODULE}Pooling"},
    ]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": f"{MODULE}Normalize"})
        (folder / "2_Normalize").mkdir(exist_ok=True)
    pooling_config = {"word_embedding_dimension": hidden_width(folder), "pooling_mode_mean_sqrt_len_tokens": False,
                      "pooling_mode_weightedmean_tokens": False, "include_prompt": True}  # fmt: skip
    pooling_config |= {mode: name == pooling for name, mode in POOLING_MODES.items()}
    (folder / "1_Pooling").mkdir(exist_ok=True)
    atomic_write_text(folder / "1_Pooling" / "config.json", json.dumps(pooling_config, indent=2) + "\n")
    atomic_write_text(folder / "modules.json", json.dumps(modules, indent=2) + "\n")
    settings = {"max_seq_length": max_length, "do_lower_case": False}
    atomic_write_text(folder / "sentence_bert_config.json", json.dumps(settings, indent=2) + "\n")
    atomic_write_text(
        folder / "config_sentence_transformers.json", json.dumps({"similarity_fn_name": "cosine"}, indent=2) + "\n"
    )
