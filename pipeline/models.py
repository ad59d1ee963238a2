"""Builders for tokenizers and encoders with task heads, and the one interface to their input layers.

The layer policies reach the token-embedding and positional modules only through `input_layers`, so no other
module special-cases model classes.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from transformers import AutoConfig, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase
from transformers.models.auto.configuration_auto import CONFIG_MAPPING

from pipeline import bilstm
from pipeline.errors import PipelineError
from pipeline.paths import resolve_model_path
from pipeline.recipe import ModelConfig, TokenizerBuild
from pipeline.vocabulary import build_tokenizer

log = logging.getLogger(__name__)

# Model type of a freshly initialised model (`model.config` in a recipe), per family.
SCRATCH_MODEL_TYPE = {"bert": "bert", "gpt2": "gpt2", "bilstm": bilstm.MODEL_TYPE}
# Families whose padding is always masked out, so the end-of-text token may double as the pad token.
PAD_WITH_EOS_FAMILIES = ("gpt2", "bilstm")
# Where Hugging Face encoders keep their absolute position table, on the base model or its `embeddings`.
POSITION_ATTRIBUTES = ("position_embeddings", "wpe", "embed_positions")
# Tokenizers report "no limit" as a huge sentinel; anything above this is treated as unknown.
UNBOUNDED_LENGTH = 1_000_000


@dataclass
class InputLayers:
    """The input layers of a model.

    token_embeddings: ids (batch, seq) → vectors (batch, seq, hidden); a table of shape (vocab_size, hidden),
        one row per token id shared by all positions (possibly a narrower table plus a projection after surgery).
    positions: position ids (batch, seq) → vectors (batch, seq, hidden) added to the token vectors, or None
        when the model has no absolute table (rotary or relative position schemes).
    """

    token_embeddings: nn.Module
    positions: nn.Module | None


def input_layers(model: PreTrainedModel) -> InputLayers:
    """Find the token-embedding and absolute positional modules of any supported model."""
    base = model.base_model
    positions = None
    for owner in (getattr(base, "embeddings", None), base):
        for name in POSITION_ATTRIBUTES:
            candidate = getattr(owner, name, None)
            if positions is None and isinstance(candidate, nn.Module):
                positions = candidate
    return InputLayers(token_embeddings=model.get_input_embeddings(), positions=positions)


def _load_error(field: str, value: str, error: Exception) -> PipelineError:
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return PipelineError(f"cannot load '{value}' ({first_line})", field=field)


def load_tokenizer(cfg: ModelConfig, train_texts: Iterable[str] = ()) -> PreTrainedTokenizerBase:
    """The recipe's tokenizer, loaded or (with `model.tokenizer: {build: ...}`) trained on `train_texts`.

    GPT-2 and bi-LSTM tokenizers without a pad token pad with EOS. Padding is on the right for every family: the
    GPT-2 head pools the last real token and the bi-LSTM reverses each sequence within its length.
    """
    if isinstance(cfg.tokenizer, TokenizerBuild):
        tokenizer, source = build_tokenizer(cfg.tokenizer, train_texts), f"a new {cfg.tokenizer.build} tokenizer"
    else:
        source = cfg.tokenizer or cfg.name_or_path
        field = "model.tokenizer" if cfg.tokenizer else "model.name_or_path"
        try:
            tokenizer = AutoTokenizer.from_pretrained(
                resolve_model_path(source), revision=cfg.revision, trust_remote_code=cfg.trust_remote_code
            )
        except (OSError, ValueError) as error:
            raise _load_error(field, source, error) from None
    if tokenizer.pad_token is None:
        if cfg.family not in PAD_WITH_EOS_FAMILIES or tokenizer.eos_token is None:
            raise PipelineError(f"tokenizer '{source}' has no pad token; is this a GPT-style model (family: gpt2)?", field="model.family")
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    return tokenizer


def _check_config_keys(family: str, settings: dict[str, Any]) -> None:
    """Transformers configs accept unknown keys silently; a typo in `model.config` must not."""
    config_class = CONFIG_MAPPING[SCRATCH_MODEL_TYPE[family]]
    known = {f.name for f in dataclasses.fields(config_class)} | set(getattr(config_class, "attribute_map", {}))
    for key in settings:
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise PipelineError(f"unknown {family} setting '{key}'{hint}", field=f"model.config.{key}")


def build_model(
    cfg: ModelConfig, auto_class: Any, tokenizer: PreTrainedTokenizerBase, head_kwargs: dict[str, Any]
) -> PreTrainedModel:
    """A pretrained (or, with `model.config`, freshly initialised) encoder with the task's head.

    auto_class: e.g. `AutoModelForSequenceClassification`; head_kwargs: e.g. num_labels, id2label, label2id.
    """
    if cfg.config is not None:
        _check_config_keys(cfg.family, cfg.config)
        special_ids = {f"{name}_id": getattr(tokenizer, f"{name}_id") for name in ("pad_token", "bos_token", "eos_token")}
        settings = {"vocab_size": len(tokenizer), **special_ids, **cfg.config, **head_kwargs}
        try:
            config = AutoConfig.for_model(SCRATCH_MODEL_TYPE[cfg.family], **settings)
        except (TypeError, ValueError) as error:
            raise PipelineError(f"not a valid {cfg.family} configuration ({error})", field="model.config") from None
        model = auto_class.from_config(config)
        if cfg.family == "bilstm":
            model.base_model.embeddings.set_token_characters(tokenizer)
    else:
        try:
            model = auto_class.from_pretrained(
                resolve_model_path(cfg.name_or_path),
                revision=cfg.revision,
                trust_remote_code=cfg.trust_remote_code,
                **head_kwargs,
            )
        except (OSError, ValueError) as error:
            raise _load_error("model.name_or_path", cfg.name_or_path, error) from None
    if model.get_input_embeddings().num_embeddings < len(tokenizer):
        raise PipelineError(
            f"the tokenizer has {len(tokenizer)} tokens but the model's table only "
            f"{model.get_input_embeddings().num_embeddings} rows: they do not belong together",
            field="model.tokenizer",
        )
    model.config.pad_token_id = tokenizer.pad_token_id
    return model


def position_limit(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> int | None:
    """The longest input the model accepts: its position table and the tokenizer's own limit."""
    limits = [getattr(model.config, name, None) for name in ("max_position_embeddings", "n_positions")]
    limits.append(tokenizer.model_max_length if tokenizer.model_max_length < UNBOUNDED_LENGTH else None)
    known = [limit for limit in limits if limit]
    return min(known) if known else None


def resolve_max_length(cfg: ModelConfig, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> int:
    """The truncation length: the recipe's `model.max_length`, refused when the model cannot take it."""
    limit = position_limit(model, tokenizer)
    if cfg.max_length is not None and limit is not None and cfg.max_length > limit:
        raise PipelineError(f"{cfg.max_length} exceeds the model's limit of {limit} positions", field="model.max_length")
    if cfg.max_length is None and limit is None:
        raise PipelineError("the model states no position limit; set model.max_length", field="model.max_length")
    return cfg.max_length or limit


def default_device_is_cpu() -> bool:
    """True on hosts without a GPU-like accelerator: then Accelerate is built with `cpu=True`."""
    mps = getattr(torch.backends, "mps", None)
    return not (torch.cuda.is_available() or (mps is not None and mps.is_available()))
