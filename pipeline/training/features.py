"""Cached features for a frozen body: when nothing below the head trains (ELMo-style feature extraction, a linear
probe), the body's outputs are computed once per example, in eval mode, and every later step runs the head alone.

How: a forward hook records what the body (`model.base_model`) hands the head for every example; afterwards a
pre-hook on the model swaps the body for a stand-in that returns those outputs, re-padded to the batch, for the
`example_index` each batch carries. The model's own head code runs unchanged, for every family and task, and the
model object (its parameters, its saved weights) never changes. The cache is stored under `EMBEDLAB_CACHE`
(default `~/.cache/embedlab`), keyed by a hash of the body's weights, the tokenizer and the encoded data, so a
sweep over seeds builds it once. It is not used from the step at which any body parameter is unfrozen.

What differs from running the body at every step: nothing, as a frozen body runs in eval mode there too (no
dropout inside it), except float rounding from padding batches to other lengths.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from datasets import DatasetDict
from safetensors.torch import load_file, save_file
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.hooks import RemovableHandle
from transformers import PreTrainedModel, PreTrainedTokenizerBase
from transformers.utils import ModelOutput

from pipeline.cache import usable, write_entry
from pipeline.data.collate import PadCollator, without_labels
from pipeline.data.sampling import LengthSortedSampler, example_lengths
from pipeline.errors import PipelineError
from pipeline.experiment.build import Experiment, with_splits
from pipeline.experiment.data import EncodedData
from pipeline.paths import cache_root

INDEX = "example_index"  # the column numbering every example of every split, for the lookup


FEATURES_FILE = "features.safetensors"


def body_is_frozen(model: nn.Module) -> bool:
    """Whether nothing in the model's body (`base_model`) trains."""
    return not any(p.requires_grad for p in model.base_model.parameters())


def frozen_body_in_eval_mode(model: nn.Module) -> None:
    """A frozen body is a fixed feature extractor: no dropout inside it (call after `model.train()`)."""
    if body_is_frozen(model):
        model.base_model.eval()


def cache_key(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, splits: DatasetDict) -> str:
    """A hash of what the body's outputs depend on: its class and weights, the tokenizer, the encoded inputs."""
    digest = hashlib.sha256(type(model.base_model).__name__.encode())
    for name, tensor in sorted(model.base_model.state_dict().items()):
        digest.update(name.encode() + tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    digest.update(json.dumps(tokenizer.get_vocab(), sort_keys=True).encode())
    for name in sorted(splits):
        for column in sorted(set(splits[name].column_names) - {"labels", INDEX}):
            digest.update(
                f"{name}/{column}".encode() + str(splits[name].with_format("arrow")[column].to_pylist()).encode()
            )
    return digest.hexdigest()[:32]


class Replay(nn.Module):
    """Stands in for the body during one forward pass: returns the outputs it was handed."""

    def __init__(self) -> None:
        super().__init__()
        self.output: Any = None

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.output


class FeatureCache:
    """The body's outputs for every example, numbered by `example_index` across splits.

    fields: name → one tensor per example; a per-token field (`per_token`) holds (tokens, ...) of the example's real
    length, another field one value (...) per example; a tuple output (hidden states) is stored as `name.0`, `name.1`...
    """

    def __init__(
        self, output_class: type, fields: dict[str, list[torch.Tensor]], per_token: set[str], tuples: dict[str, int]
    ):
        self.output_class, self.fields, self.per_token, self.tuples = output_class, fields, per_token, tuples
        self.replay = Replay()

    @classmethod
    def record(
        cls, model: PreTrainedModel, splits: DatasetDict, collator: PadCollator, batch_size: int, autocast: Any
    ) -> FeatureCache:
        """Run the model in eval mode over every split (longest first) and keep what its body returned, per example."""
        count = sum(len(split) for split in splits.values())
        fields: dict[str, list[torch.Tensor]] = {}
        per_token: set[str] = set()
        tuples: dict[str, int] = {}
        captured: dict[str, Any] = {}
        hook = model.base_model.register_forward_hook(lambda module, args, output: captured.update(output=output))
        was_training = model.training
        model.eval()
        try:
            for split in splits.values():
                lengths, offset = example_lengths(split), split[0][INDEX]
                loader = DataLoader(
                    split,
                    batch_size=batch_size,
                    sampler=LengthSortedSampler(lengths),
                    collate_fn=collator,
                    generator=torch.Generator(),
                )  # not the global RNG: the run's dropout stream
                for batch in loader:
                    indices = batch.pop(INDEX).tolist()
                    with torch.no_grad(), autocast():
                        model(**{key: value.to(model.device) for key, value in without_labels(batch).items()})
                    output, steps = captured["output"], batch["input_ids"].shape[1]
                    real = [lengths[index - offset] for index in indices]
                    for name, value in output.items():
                        parts = value if isinstance(value, tuple) else (value,)
                        tuples[name] = len(parts) if isinstance(value, tuple) else 0
                        for k, tensor in enumerate(parts):
                            key = f"{name}.{k}" if isinstance(value, tuple) else name
                            token_level = tensor.dim() >= 3 and tensor.shape[1] == steps
                            per_token.update([key] if token_level else [])
                            column = fields.setdefault(key, [torch.empty(0)] * count)
                            for row, (index, length) in enumerate(zip(indices, real, strict=True)):
                                column[index] = (
                                    (tensor[row, :length] if token_level else tensor[row])
                                    .detach()
                                    .float()
                                    .cpu()
                                    .clone()
                                )
        finally:
            hook.remove()
            model.train(was_training)
        return cls(type(output), fields, per_token, tuples)

    # --- on disk: safetensors, with the per-token fields concatenated ---------------------------------------------
    def save(self, path: Path) -> None:  # path: FEATURES_FILE inside the cache entry
        tensors = {}
        for key, values in self.fields.items():
            if key in self.per_token:
                tensors[key] = torch.cat(values)
                tensors[f"{key}#lengths"] = torch.tensor([len(value) for value in values])
            else:
                tensors[key] = torch.stack(values)
        metadata = {
            "per_token": json.dumps(sorted(self.per_token)),
            "tuples": json.dumps(self.tuples),
            "output_class": f"{self.output_class.__module__}:{self.output_class.__qualname__}",
        }
        write_entry(
            path.parent, lambda folder: save_file(tensors, str(folder / path.name), metadata=metadata), "features"
        )

    @classmethod
    def load(cls, path: Path) -> FeatureCache:
        from safetensors import safe_open

        with safe_open(str(path), "pt") as handle:
            metadata = handle.metadata() or {}
        named = str(metadata.get("output_class"))
        module, _, name = named.partition(":")
        output_class = None
        if module.startswith(("transformers.", "pipeline.")):  # an output class, never arbitrary code
            try:
                output_class = getattr(importlib.import_module(module), name, None)
            except ImportError:
                output_class = None
        if not (isinstance(output_class, type) and issubclass(output_class, ModelOutput)):
            raise PipelineError(
                f"the frozen-body features in {path.parent} name {named!r}, which is not a model output class: "
                "remove that cache entry (it is made again)"
            )
        tensors, per_token = load_file(str(path)), set(json.loads(metadata["per_token"]))
        fields = {}
        for key in (k for k in tensors if not k.endswith("#lengths")):
            if key in per_token:
                fields[key] = list(torch.split(tensors[key], tensors[f"{key}#lengths"].tolist()))
            else:
                fields[key] = list(tensors[key])
        return cls(output_class, fields, per_token, json.loads(metadata["tuples"]))

    # --- replaying -------------------------------------------------------------------------------------------------
    def batch_output(self, indices: list[int], steps: int, device: torch.device) -> Any:
        """The body's output for these examples, per-token fields padded with zeros to `steps` positions."""
        values = {}
        for key, column in self.fields.items():
            if key in self.per_token:
                first = column[indices[0]]
                padded = torch.zeros(len(indices), steps, *first.shape[1:])
                for row, index in enumerate(indices):
                    padded[row, : len(column[index])] = column[index]
                values[key] = padded.to(device)
            else:
                values[key] = torch.stack([column[index] for index in indices]).to(device)
        output = {
            name: tuple(values[f"{name}.{k}"] for k in range(size)) if size else values[name]
            for name, size in self.tuples.items()
        }
        return self.output_class(**output)

    def install(self, model: PreTrainedModel) -> list[RemovableHandle]:
        """Make `model(**batch, example_index=...)` run its head on the cached body outputs while the body is frozen;
        returns the hooks' handles (the run removes them when it ends)."""
        prefix, body = model.base_model_prefix, model.base_model

        def before(module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
            indices = kwargs.pop(INDEX, None)
            if indices is not None and body_is_frozen(module):
                self.replay.output = self.batch_output(indices.tolist(), kwargs["input_ids"].shape[1], indices.device)
                setattr(module, prefix, self.replay)
            return args, kwargs

        def after(module: nn.Module, args: tuple, kwargs: dict, output: Any) -> Any:
            setattr(module, prefix, body)
            return output

        return [
            model.register_forward_pre_hook(before, with_kwargs=True),
            model.register_forward_hook(after, with_kwargs=True),
        ]


def numbered(splits: DatasetDict) -> DatasetDict:
    """Every split with an `example_index` column numbering its examples after those of the splits before it."""
    result, offset = {}, 0
    for name, split in splits.items():
        result[name] = split.add_column(INDEX, list(range(offset, offset + len(split))))
        offset += len(split)
    return DatasetDict(result)


@dataclass
class CacheUse:
    """What the feature cache did for a run: the data the run trains and evaluates on (numbered when the cache is
    used), the report `metrics.json` gets (None: the body trains), and the model's hooks to remove at the end."""

    data: EncodedData
    report: dict[str, Any] | None = None
    hooks: list[RemovableHandle] = field(default_factory=list)

    def remove_hooks(self) -> None:
        for hook in self.hooks:
            hook.remove()


def why_not_cached(exp: Experiment) -> str | None:
    if not exp.recipe.train.cache_frozen_features:
        return "train.cache_frozen_features is false"
    if not exp.task.body_outputs_cacheable:
        return f"{exp.recipe.task.type} reads the token table in its head"
    if exp.accelerator.distributed_type.name == "FSDP":
        return "FSDP shards the body"
    return None


def use_feature_cache(exp: Experiment) -> CacheUse:
    """Cache the body's outputs when nothing in the body trains (`train.cache_frozen_features`), and install the hooks
    that replay them; the experiment itself is left as it was built."""
    if not body_is_frozen(exp.model):
        return CacheUse(exp.data)
    why_not = why_not_cached(exp)
    if why_not:
        return CacheUse(exp.data, {"used": False, "why": why_not})
    acc, started = exp.accelerator, time.perf_counter()
    data = with_splits(exp.data, numbered(exp.data.splits))
    path = cache_root("features") / cache_key(exp.model, exp.tokenizer, data.splits) / FEATURES_FILE
    with acc.main_process_first():
        reused = usable(path.parent, "frozen-body features")
        if reused:
            cache = FeatureCache.load(path)
        else:
            exp.model.to(acc.device)
            cache = FeatureCache.record(exp.model, data.splits, data.collator, exp.recipe.eval.batch_size, acc.autocast)
            if acc.is_main_process:
                cache.save(path)
    hooks = cache.install(exp.model)
    seconds = round(time.perf_counter() - started, 2)
    report = {
        "used": True,
        "reused": reused,
        "file": str(path),
        "examples": sum(len(s) for s in data.splits.values()),
        "seconds": seconds,
    }
    acc.print(
        f"frozen body: its outputs are {'read from' if reused else 'cached in'} {path} ({seconds} s); only the head "
        "runs"
    )
    return CacheUse(data, report, hooks)
