"""LoRA for the body (`layers.encoder: {policy: lora, r, alpha, dropout, target_modules}`), through PEFT: low-rank
adapters injected beside the chosen linear layers of the model in place (`peft.inject_adapter_in_model`, so the
model stays the transformers model every other part reads), the body frozen around them.

Saving gives two things: the merged model (each adapted layer's weight plus its adapter's product, under the stock
names), which loads in plain transformers, and the adapter itself in PEFT's format (`adapter/` beside the merged
weights: `adapter_model.safetensors`, `adapter_config.json`), which `peft.PeftModel.from_pretrained` puts on the
original model, with what trained outside the adapters in `trained_beside.safetensors`: a trained table in full,
and a table trained by rows (`rows: new`) as only those rows, as PEFT's `trainable_token_indices` does.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import PreTrainedModel

from pipeline.errors import PipelineError, first_line
from pipeline.recipe.layers import LoraBody
from pipeline.surgery.rows import TrainableRows

ADAPTER = "adapter"
BESIDE_FILE = "trained_beside.safetensors"  # what trained outside the adapters
PEFT_PREFIX = "base_model.model."  # how a PeftModel names the model it wraps
FIELD = "layers.encoder"


def matches(name: str, targets: list[str]) -> bool:
    """Whether a module name is one of PEFT's `target_modules` (a full name, or its last parts)."""
    return any(name == target or name.endswith(f".{target}") for target in targets)


def add_lora(
    model: PreTrainedModel, policy: LoraBody, default_targets: tuple[str, ...], fan_in_fan_out: bool
) -> dict[str, Any]:
    """Inject the adapters into the body's layers named by `target_modules` (a task head's layers of the same name
    are left to the head's policy); returns what was adapted: rank, scaling, targets, layers, adapter parameters."""
    from peft import LoraConfig, inject_adapter_in_model

    targets = policy.target_modules or list(default_targets)
    if not targets:
        raise PipelineError(
            "this family has no default LoRA targets: name target_modules (its linear layers)",
            field=f"{FIELD}.target_modules",
        )
    body = {id(module) for module in model.base_model.modules()}
    outside = [name for name, module in model.named_modules() if matches(name, targets) and id(module) not in body]
    config = LoraConfig(r=policy.r, lora_alpha=policy.alpha, lora_dropout=policy.dropout, target_modules=targets,
                        exclude_modules=outside or None, fan_in_fan_out=fan_in_fan_out)  # fmt: skip
    try:
        inject_adapter_in_model(config, model)
    except ValueError as error:  # peft's "no module matched" and "not a supported layer" are ValueErrors
        raise PipelineError(
            f"{targets} match no linear layer of the body of {type(model).__name__} ({first_line(error)})",
            field=f"{FIELD}.target_modules",
        ) from None
    adapted = lora_layers(model)
    return {"r": policy.r, "alpha": policy.alpha, "scaling": policy.alpha / policy.r, "dropout": policy.dropout,
            "target_modules": targets, "adapted_layers": len(adapted),
            "adapter_parameters": sum(p.numel() for n, p in model.named_parameters() if is_adapter(n))}  # fmt: skip


def is_adapter(name: str) -> bool:
    return ".lora_" in name


def lora_layers(model: nn.Module) -> dict[str, nn.Module]:
    """Name → every LoRA-adapted layer of the model (none where PEFT was never imported: only `add_lora`, which
    imports it, makes such layers, and a run without LoRA must not need PEFT installed)."""
    if sys.modules.get("peft") is None:
        return {}
    from peft.tuners.lora import LoraLayer

    return {name: module for name, module in model.named_modules() if isinstance(module, LoraLayer)}


def merged_state_dict(model: nn.Module, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The state dict with every adapted layer merged (`base + B A × scaling`) under the stock names."""
    layers = lora_layers(model)
    if not layers:
        return state_dict
    merged = {key: value for key, value in state_dict.items() if not is_adapter(key)}
    for name, module in layers.items():
        base = f"{name}.base_layer."
        for key in [k for k in merged if k.startswith(base)]:
            merged[f"{name}.{key[len(base) :]}"] = merged.pop(key)
        with torch.no_grad():
            delta = module.get_delta_weight("default").detach().cpu()
        merged[f"{name}.weight"] = (merged[f"{name}.weight"].float() + delta.float()).to(merged[f"{name}.weight"].dtype)
    return merged


def trained_beside_adapter(model: nn.Module) -> dict[str, torch.Tensor]:
    """What trained outside the adapters, under the stock names: whole tensors (a trained table, the head) as they
    are, and a table trained by rows as its ids (`NAME.weight.rows`, (k,)) and those rows (`NAME.weight.trained`,
    (k, width))."""
    found: dict[str, torch.Tensor] = {}
    by_rows = {name: module for name, module in model.named_modules() if isinstance(module, TrainableRows)}
    for name, module in by_rows.items():
        found |= {f"{name}.weight.rows": module.rows, f"{name}.weight.trained": module.trained}
    for name, parameter in model.named_parameters():
        if parameter.requires_grad and not is_adapter(name) and name.rsplit(".", 1)[0] not in by_rows:
            found[name] = parameter
    return {key: value.detach().cpu().contiguous() for key, value in found.items()}


def save_adapter(model: nn.Module, folder: Path) -> None:
    """The adapter in PEFT's format (keys as `PeftModel.save_pretrained` writes them, so `PeftModel.from_pretrained`
    reads it), and beside it what trained outside the adapters (`BESIDE_FILE`; the merged model holds it in
    place)."""
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    tensors = {f"{PEFT_PREFIX}{key}": value.detach().cpu().contiguous()
               for key, value in get_peft_model_state_dict(model).items()}  # fmt: skip
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    beside = trained_beside_adapter(model)
    if beside:
        save_file(beside, str(folder / BESIDE_FILE))
    config = model.peft_config["default"].to_dict()
    config = {key: sorted(value) if isinstance(value, set) else value for key, value in config.items()}
    (folder / "adapter_config.json").write_text(json.dumps(config, indent=2, default=str) + "\n")
