"""Position policies of rotary decoders: a new base, a scaling of the frequencies, partial rotation, no rotation.

A rotary decoder (Llama, Qwen2, Mistral, Gemma, GPT-NeoX, Phi-3...) has one rotary embedding (`base_model.rotary_emb`)
that turns position ids into (cos, sin), which every layer's attention uses to rotate its queries and keys. What
the model config can say, the config says: the base (`rope_theta`), the scaling (`rope_type` with its factor...),
and, for architectures that rotate part of each head (GPT-NeoX, Phi-3, StableLM), `partial_rotary_factor`; the
rotary embedding is then rebuilt from the config, and the saved model loads in plain transformers with the same
logits. What the config cannot say is done in code: no rotation in chosen layers (NoPE), and partial rotation for
architectures that rotate whole heads. The attention modules of those layers get a subclass whose forward adjusts
the (cos, sin) it receives: the identity for NoPE; for partial rotation the (cos, sin) of the rotated dimensions
padded with the identity, which rotates the same share of each head as GPT-NeoX does (up to an order of the head's
dimensions that queries and keys share, so attention scores are the same). The config keeps what was done
(`embedlab_rotation`), and `restore_rotation` re-applies it to a model loaded elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from transformers import PreTrainedModel

from pipeline.errors import PipelineError
from pipeline.recipe.positions import RopePositions, Scaling

ROTATION_KEY = "embedlab_rotation"  # {"no_rotation": [layers], "pad_partial": bool}
NATIVE_PARTIAL = frozenset({"gpt_neox", "phi", "phi3", "stablelm", "persimmon"})
FIELD = "layers.positions"


@dataclass(frozen=True)
class Rotation:
    """What one layer's attention does to the (cos, sin) it receives: nothing, no rotation, or padding a partial
    rotation to the whole head. cos, sin: (batch, seq, rotated dims) → (batch, seq, rotated dims or head dim)."""

    rotate: bool = True
    pad_to: int | None = None

    def adjust(self, cos: torch.Tensor, sin: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.rotate:
            return torch.ones_like(cos), torch.zeros_like(sin)
        if self.pad_to is None or cos.shape[-1] >= self.pad_to:
            return cos, sin
        # (cos, sin) hold [f_0..f_{r/2-1}, f_0..f_{r/2-1}]; the head pairs dimension i with i + d/2.
        half, pad = cos.shape[-1] // 2, (self.pad_to - cos.shape[-1]) // 2
        ones, zeros = cos.new_ones(*cos.shape[:-1], pad), sin.new_zeros(*sin.shape[:-1], pad)
        cos = torch.cat([cos[..., :half], ones, cos[..., half:], ones], dim=-1)
        sin = torch.cat([sin[..., :half], zeros, sin[..., half:], zeros], dim=-1)
        return cos, sin


def rotation_forward(self: nn.Module, *args: Any, position_embeddings: Any = None, **kwargs: Any) -> Any:
    """The attention's own forward, with the (cos, sin) it receives adjusted by its `Rotation`."""
    if position_embeddings is not None:
        position_embeddings = self.embedlab_rotation.adjust(*position_embeddings)
    return type(self).__mro__[1].forward(self, *args, position_embeddings=position_embeddings, **kwargs)


_ROTATION_CLASSES: dict[type, type] = {}


def with_rotation(attention: nn.Module, rotation: Rotation) -> None:
    """Give an attention module a `Rotation` (its class swapped for a subclass; weights and names unchanged)."""
    cls = type(attention)
    if cls in _ROTATION_CLASSES.values():
        cls = cls.__mro__[1]
    if cls not in _ROTATION_CLASSES:
        _ROTATION_CLASSES[cls] = type(
            f"Rotation{cls.__name__}", (cls,), {"forward": rotation_forward, "__module__": __name__}
        )
    attention.__class__ = _ROTATION_CLASSES[cls]
    attention.embedlab_rotation = rotation


def rotary_embedding(model: PreTrainedModel) -> nn.Module | None:
    module = getattr(model.base_model, "rotary_emb", None)
    return module if isinstance(getattr(module, "inv_freq", None), torch.Tensor) else None


def attention_modules(model: PreTrainedModel, blocks: nn.ModuleList | None) -> list[nn.Module]:
    """Each block's attention (`self_attn`, or GPT-NeoX's `attention`), bottom first; [] where one is not found."""
    found = [getattr(block, "self_attn", None) or getattr(block, "attention", None) for block in blocks or []]
    return found if found and all(isinstance(module, nn.Module) for module in found) else []


def why_not_recognised(model: PreTrainedModel, blocks: nn.ModuleList | None) -> str | None:
    """Why the rotary policies cannot apply to this model, or None."""
    if rotary_embedding(model) is None:
        return f"{type(model).__name__} has no rotary embedding (`rotary_emb` with `inv_freq`) this module knows"
    if not isinstance(getattr(model.config, "rope_parameters", None), dict):
        return f"{type(model).__name__}'s config has no rope_parameters"
    if not attention_modules(model, blocks):
        return f"the attention of {type(model).__name__}'s blocks is not one this module knows (self_attn or attention)"
    return None


def rope_type(scaling: Scaling) -> str:
    """The `rope_type` transformers knows a scaling variant by: the tag the recipe spells it with."""
    return scaling.tags["type"]


def rope_parameters(policy: RopePositions, current: dict[str, Any], max_positions: int) -> dict[str, Any]:
    """The config's rope parameters after a `init: rope` policy: a new base, a scaling, a partial factor."""
    updated = dict(current)
    if policy.theta is not None:
        updated["rope_theta"] = policy.theta
    if policy.partial is not None:
        updated["partial_rotary_factor"] = policy.partial
    scaling = policy.scaling
    if scaling is not None:
        for stale in ("factor", "original_max_position_embeddings", "beta_fast", "beta_slow", "attention_factor",
                      "low_freq_factor", "high_freq_factor", "short_factor", "long_factor"):  # fmt: skip
            updated.pop(stale, None)
        settings = scaling.model_dump(exclude_none=True, exclude={"type"})
        updated |= {"rope_type": rope_type(scaling), **settings}
        for key, value in scaling.config_defaults(max_positions).items():
            updated.setdefault(key, value)
    return updated


def check_rotated_dimensions(policy: RopePositions, config: Any) -> None:
    """What the model's heads can take: a partial rotation rotates at least one pair of dimensions, and longrope has
    one factor per rotated frequency (transformers would fail at the first forward pass otherwise)."""
    head = head_dimensions(config)
    share = policy.partial if policy.partial is not None else config.rope_parameters.get("partial_rotary_factor", 1.0)
    rotated = int(head * share) // 2 * 2
    if rotated < 2:
        raise PipelineError(
            f"partial: {share} rotates {rotated} of the {head} dimensions of each head; it must rotate at least 2 "
            f"(partial >= {2 / head:.3g})",
            field=f"{FIELD}.partial",
        )
    per_frequency = policy.scaling.factors_per_frequency() if policy.scaling is not None else {}
    for name, factors in per_frequency.items():
        if len(factors) != rotated // 2:
            raise PipelineError(
                f"{len(factors)} factors for {rotated // 2} rotated frequencies (head of {head} dimensions, "
                f"{rotated} rotated): give one per frequency",
                field=f"{FIELD}.scaling.{name}",
            )


def apply_rope(model: PreTrainedModel, policy: RopePositions, blocks: nn.ModuleList | None) -> None:
    """`init: rope`: write the new rope parameters into the config and rebuild the rotary embedding from it."""
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    config = model.config
    if policy.scaling is not None and rope_type(policy.scaling) not in ROPE_INIT_FUNCTIONS:
        known = ", ".join(sorted(ROPE_INIT_FUNCTIONS))
        raise PipelineError(
            f"the installed transformers knows no rope scaling '{rope_type(policy.scaling)}' (it knows {known})",
            field=f"{FIELD}.scaling.type",
        )
    check_rotated_dimensions(policy, config)
    native = config.model_type in NATIVE_PARTIAL
    config.rope_parameters = rope_parameters(policy, config.rope_parameters, config.max_position_embeddings)
    try:
        config.validate_rope()
        rotary = rotary_embedding(model)
        fresh = type(rotary)(config=config).to(rotary.inv_freq.device)
    except (ValueError, KeyError, TypeError) as error:
        raise PipelineError(f"the model's rotary embedding refuses these settings ({error})", field=FIELD) from None
    model.base_model.rotary_emb = fresh
    if policy.partial is not None and not native:
        record(config, pad_partial=True)
        restore_rotation(model, blocks)


def apply_no_rotation(model: PreTrainedModel, layers: list[int] | None, blocks: nn.ModuleList | None) -> None:
    """`init: none`: no rotation in every layer, or in `layers`."""
    attentions = attention_modules(model, blocks)
    layers = list(range(len(attentions))) if layers is None else layers
    outside = [index for index in layers if index >= len(attentions)]
    if outside:
        raise PipelineError(
            f"layer {outside[0]} is outside the model's {len(attentions)} layers (0 to {len(attentions) - 1})",
            field=f"{FIELD}.layers",
        )
    for index in layers:
        with_rotation(attentions[index], Rotation(rotate=False))
    record(model.config, no_rotation=sorted(layers))


def record(config: Any, **entries: Any) -> None:
    """Keep a code-applied policy in the config (saved with the model), for `restore_rotation`."""
    setattr(config, ROTATION_KEY, {**(getattr(config, ROTATION_KEY, None) or {}), **entries})


def restore_rotation(model: PreTrainedModel, blocks: nn.ModuleList | None = None) -> PreTrainedModel:
    """Re-apply to a loaded model what its config records (`embedlab_rotation`): no rotation in some layers, a partial
    rotation padded to whole heads. A model without such a record is returned as it is."""
    recorded = getattr(model.config, ROTATION_KEY, None) or {}
    if not recorded:
        return model
    attentions = attention_modules(model, blocks if blocks is not None else getattr(model.base_model, "layers", None))
    pad_to = head_dimensions(model.config) if recorded.get("pad_partial") else None
    if pad_to is not None:
        partial_frequencies(model)
    for index, attention in enumerate(attentions):
        with_rotation(attention, Rotation(rotate=index not in recorded.get("no_rotation", []), pad_to=pad_to))
    return model


def head_dimensions(config: Any) -> int:
    return getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads


def partial_frequencies(model: PreTrainedModel) -> None:
    """Give an unscaled rotary embedding the frequencies of its rotated dimensions alone, base^(−2i/r) for i < r/2
    (what GPT-NeoX rotates): the scaled rope types read `partial_rotary_factor` themselves, the default one does not."""
    parameters = model.config.rope_parameters
    if parameters.get("rope_type", "default") != "default":
        return
    rotated = int(head_dimensions(model.config) * parameters["partial_rotary_factor"]) // 2 * 2
    rotary = rotary_embedding(model)
    inv_freq = linear_frequencies(parameters["rope_theta"], rotated).to(rotary.inv_freq.device)
    rotary.inv_freq, rotary.original_inv_freq = inv_freq, inv_freq.clone()


def describe(model: PreTrainedModel, blocks: nn.ModuleList | None) -> dict[str, Any]:
    """What rotates, with which base and scaling, over which head dimensions, in which layers."""
    config, rotary = model.config, rotary_embedding(model)
    parameters = dict(config.rope_parameters)
    head_dim = head_dimensions(config)
    rotated = int(head_dim * parameters.get("partial_rotary_factor", 1.0)) // 2 * 2
    attentions = attention_modules(model, blocks)
    without = [i for i, a in enumerate(attentions) if not getattr(a, "embedlab_rotation", Rotation()).rotate]
    scaling = {k: v for k, v in parameters.items() if k not in ("rope_type", "rope_theta", "partial_rotary_factor")}
    return {
        "rope_type": parameters.get("rope_type", "default"), "rope_theta": parameters.get("rope_theta"),
        "scaling": scaling or None,
        "rotated_dimensions": rotated, "head_dimensions": head_dim,
        "layers_rotated": [i for i in range(len(attentions)) if i not in without], "layers_without_rotation": without,
        "attention_scaling": float(getattr(rotary, "attention_scaling", 1.0)),
        "saved_model_needs": (
            "pipeline.families.llama.rotary.restore_rotation" if getattr(config, ROTATION_KEY, None) else None
        ),
    }  # fmt: skip


def summary(details: dict[str, Any]) -> str:
    """One line of `describe`'s details, for `inspect` and `input_layers.json`."""
    scaling = details["scaling"]
    text = f"rotary: base {details['rope_theta']:g}, {details['rope_type']}"
    if scaling:
        text += " (" + ", ".join(f"{k} {v}" for k, v in scaling.items() if not isinstance(v, list)) + ")"
    text += f"; rotates {details['rotated_dimensions']} of {details['head_dimensions']} dimensions per head"
    rotated, without = details["layers_rotated"], details["layers_without_rotation"]
    text += f" in {len(rotated)} of {len(rotated) + len(without)} layers" + (f" (none in {without})" if without else "")
    if details["saved_model_needs"]:
        text += f"; the saved model needs {details['saved_model_needs']}(model) after from_pretrained"
    return text


def inverse_frequencies(model: PreTrainedModel) -> torch.Tensor | None:
    """The rotary inverse frequencies (rotated dimensions / 2,), for diagnostics; None without a rotary embedding."""
    rotary = rotary_embedding(model)
    return None if rotary is None else rotary.inv_freq.detach().float().cpu().clone()


def linear_frequencies(theta: float, dimensions: int) -> torch.Tensor:
    """base^(−2i/d) for i < d/2: the unscaled inverse frequencies (a reference for tests and diagnostics)."""
    return 1.0 / (theta ** (torch.arange(0, dimensions, 2, dtype=torch.int64).float() / dimensions))
