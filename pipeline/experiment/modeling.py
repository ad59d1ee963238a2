"""The recipe's `model` section built: its tokenizer, and a pretrained (or freshly initialised) model of a family
with a task head.

Family-specific choices (padding, the model type of a fresh model, what a fresh model needs from the tokenizer,
the position limit) are asked of the `Family`.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase
from transformers.models.auto.configuration_auto import CONFIG_MAPPING

from pipeline.errors import PipelineError, did_you_mean, unusable
from pipeline.experiment.gguf import converted_checkpoint
from pipeline.families.base import Family
from pipeline.families.registry import FAMILIES, family_named, family_of_model_type
from pipeline.paths import is_gguf, resolve_model_path
from pipeline.recipe.model import ModelConfig, TokenizerBuild
from pipeline.recipe.schema import Recipe
from pipeline.resources import require_memory
from pipeline.surgery.tables import PER_POSITION_KEY, restore_per_position
from pipeline.vocabulary.added import AddedTokens, add_tokens
from pipeline.vocabulary.build import build_tokenizer

# Tokenizers report "no limit" as a huge sentinel; anything above this is treated as unknown.
UNBOUNDED_LENGTH = 1_000_000


def _load_error(field: str, value: str, error: Exception) -> PipelineError:
    return unusable(f"cannot load '{value}'", error, field=field)


def load_tokenizer(
    cfg: ModelConfig, family: Family, train_texts: Iterable[str] = (), built: Path | None = None
) -> PreTrainedTokenizerBase:
    """The recipe's tokenizer, loaded or (with `model.tokenizer: {build: ...}`) trained on `train_texts`.

    built: a folder holding the tokenizer this run built before (a checkpoint's model): a resumed run reuses it, as
    training a WordPiece vocabulary again can break ties between equally frequent merges differently.

    A tokenizer without a pad token pads with EOS where the family allows it. Padding is on the right for every
    family: decoders pool the last real token and the bi-LSTM reverses each sequence within its length.
    """
    if isinstance(cfg.tokenizer, TokenizerBuild) and built is not None:
        tokenizer, source = AutoTokenizer.from_pretrained(built), f"the {cfg.tokenizer.build} tokenizer this run built"
    elif isinstance(cfg.tokenizer, TokenizerBuild):
        tokenizer, source = build_tokenizer(cfg.tokenizer, train_texts), f"a new {cfg.tokenizer.build} tokenizer"
    else:
        source = cfg.tokenizer or cfg.name_or_path
        field = "model.tokenizer" if cfg.tokenizer else "model.name_or_path"
        try:
            tokenizer = AutoTokenizer.from_pretrained(
                checkpoint_path(source), revision=cfg.revision, trust_remote_code=cfg.trust_remote_code
            )
        except Exception as error:  # a tokenizer.json of another shape raises KeyError, the Rust reader its own types
            raise _load_error(field, source, error) from None
        _check_has_vocabulary(tokenizer, source, field)
    if tokenizer.pad_token is None:
        if not family.pad_with_eos or tokenizer.eos_token is None:
            eos = [name for name in FAMILIES if family_named(name).pad_with_eos]
            raise PipelineError(
                f"tokenizer '{source}' has no pad token, and family {family.name} does not pad with EOS; "
                f"is this a decoder (family: {' or '.join(eos)})?",
                field="model.family",
            )
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    return tokenizer


def _check_has_vocabulary(tokenizer: PreTrainedTokenizerBase, source: str, field: str) -> None:
    """A folder without tokenizer files loads, in transformers 5, as its class's tokenizer with special tokens only:
    every word would become the unknown token. Refused rather than trained on."""
    if len(tokenizer) <= len(set(tokenizer.all_special_tokens)):
        raise PipelineError(
            f"'{source}' holds no tokenizer files (what loads from it has only {len(tokenizer)} special tokens); "
            "copy the tokenizer into it or name one with model.tokenizer",
            field=field,
        )


def add_recipe_tokens(
    cfg: ModelConfig, tokenizer: PreTrainedTokenizerBase, train_texts: Iterable[str]
) -> tuple[PreTrainedTokenizerBase, AddedTokens] | None:
    """`model.add_tokens` added to `tokenizer` (in place); returns the tokenizer as it was (which composes the new
    rows from the pieces it cut each token into) and what was added, or None when the recipe adds nothing."""
    if cfg.add_tokens is None:
        return None
    before = copy.deepcopy(tokenizer)
    return before, add_tokens(tokenizer, cfg.add_tokens, train_texts)


def _check_config_keys(family: Family, settings: dict[str, Any]) -> None:
    """Transformers configs accept unknown keys (and negative counts) silently; a typo in `model.config` must not."""
    config_class = CONFIG_MAPPING[family.scratch_model_type]
    known = {f.name for f in dataclasses.fields(config_class)} | set(getattr(config_class, "attribute_map", {}))
    for key, value in settings.items():
        # A negative size or count is never meant, and some model classes take it silently (range(-1) is empty).
        if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
            raise PipelineError(f"{value} is negative; sizes and counts are 0 or more", field=f"model.config.{key}")
        if key not in known:
            hint = did_you_mean(key, sorted(known)).rstrip()
            raise PipelineError(
                f"unknown {family.name} setting '{key}'{'; ' + hint if hint else ''}", field=f"model.config.{key}"
            )


def build_model(
    cfg: ModelConfig,
    family: Family,
    auto_class: Any,
    tokenizer: PreTrainedTokenizerBase,
    head_kwargs: dict[str, Any],
    new_vocabulary: bool = False,
) -> PreTrainedModel:
    """A pretrained (or, with `model.config`, freshly initialised) model with the task's head.

    auto_class: e.g. `AutoModelForSequenceClassification`; head_kwargs: e.g. num_labels, id2label, label2id;
    new_vocabulary: the table will move to `tokenizer` (`Recipe.replaces_vocabulary`), whose special ids it takes.
    """
    if cfg.config is not None:
        model = _fresh_model(cfg, family, auto_class, tokenizer, head_kwargs)
    else:
        model = _pretrained_model(cfg, family, auto_class, head_kwargs)
    model.config.pad_token_id = tokenizer.pad_token_id
    if new_vocabulary:  # the table is replaced to fit the new tokenizer; so are the special ids
        model.config.bos_token_id, model.config.eos_token_id = tokenizer.bos_token_id, tokenizer.eos_token_id
    return model


def original_tokenizer(recipe: Recipe, family: Family) -> PreTrainedTokenizerBase | None:
    """The tokenizer the pretrained table belongs to, when the recipe moves the table to another vocabulary (a
    tokenizer built from the data, or another model's: `Recipe.replaces_vocabulary`)."""
    if not recipe.replaces_vocabulary():
        return None
    return load_tokenizer(recipe.model.model_copy(update={"tokenizer": None}), family)


def _fresh_model(
    cfg: ModelConfig, family: Family, auto_class: Any, tokenizer: PreTrainedTokenizerBase, head_kwargs: dict[str, Any]
) -> PreTrainedModel:
    """A randomly initialised model from `model.config`; settings the model class refuses, or a size this machine
    cannot hold, are one-line errors naming `model.config`."""
    _check_config_keys(family, cfg.config)
    special_ids = {f"{name}_id": getattr(tokenizer, f"{name}_id") for name in ("pad_token", "bos_token", "eos_token")}
    settings = {"vocab_size": len(tokenizer), **special_ids, **cfg.config, **head_kwargs}
    try:
        config = AutoConfig.for_model(family.scratch_model_type, **settings)
        with torch.device("meta"):  # shapes only: nothing is allocated
            size = sum(p.numel() * p.element_size() for p in auto_class.from_config(config).parameters())
        require_memory(size, f"a {family.name} model of these settings", "model.config")
        model = auto_class.from_config(config)
    except PipelineError:
        raise
    except Exception as error:  # config classes and model code raise many types on settings they refuse
        raise unusable(f"not a valid {family.name} configuration", error, field="model.config") from None
    family.prepare_fresh_model(model, tokenizer)
    return model


def _pretrained_model(
    cfg: ModelConfig, family: Family, auto_class: Any, head_kwargs: dict[str, Any]
) -> PreTrainedModel:
    """A checkpoint of the recipe's family with the task's head; a checkpoint of another family, or one that cannot
    be read (missing, truncated or corrupt weights), is a one-line error."""
    source = checkpoint_path(cfg.name_or_path)
    try:
        config = AutoConfig.from_pretrained(source, revision=cfg.revision, trust_remote_code=cfg.trust_remote_code)
        model_type = config.model_type
        claimed = family_of_model_type(model_type)
        if claimed is not None and claimed is not family:
            raise PipelineError(
                f"'{cfg.name_or_path}' is a {model_type} checkpoint, of family {claimed.name}; set model.family: "
                f"{claimed.name}",
                field="model.family",
            )
        per_position = bool(getattr(config, PER_POSITION_KEY, None))  # a 3-D table a stock model cannot load
        model = auto_class.from_pretrained(
            source, revision=cfg.revision, trust_remote_code=cfg.trust_remote_code, **head_kwargs,
            **({"ignore_mismatched_sizes": True} if per_position else {}),
        )  # fmt: skip
        restore_per_position(model, Path(source))
        family.restore_saved_policies(model)  # what a saved run applied in code (e.g. no rotation in some layers)
        return model
    except PipelineError:
        raise
    except Exception as error:  # transformers, safetensors and the Hub client raise many types: all mean "cannot load"
        raise _load_error("model.name_or_path", cfg.name_or_path, error) from None


def checkpoint_path(value: str) -> str:
    """What `from_pretrained` gets for a recipe's checkpoint: a local folder, a Hub id, or (for a `.gguf` file, local
    or pkg://) the folder it was converted into."""
    source = resolve_model_path(value)
    return str(converted_checkpoint(Path(source))) if is_gguf(source) else source


def resolve_max_length(cfg: ModelConfig, positions: int | None, tokenizer: PreTrainedTokenizerBase) -> int:
    """The truncation length: the recipe's `model.max_length`, refused when the model cannot take it.

    positions: the model's own position limit (after any surgery); the tokenizer's limit also counts.
    """
    limits = [positions, tokenizer.model_max_length if tokenizer.model_max_length < UNBOUNDED_LENGTH else None]
    known = [limit for limit in limits if limit]
    limit = min(known) if known else None
    if cfg.max_length is not None and limit is not None and cfg.max_length > limit:
        raise PipelineError(
            f"{cfg.max_length} exceeds the model's limit of {limit} positions", field="model.max_length"
        )
    if cfg.max_length is None and limit is None:
        raise PipelineError("the model states no position limit; set model.max_length", field="model.max_length")
    return cfg.max_length or limit
