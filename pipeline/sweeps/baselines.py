"""The classical rows of a sweep's report (`--classical tfidf,doc2vec,frozen-mean`): the task type fits and scores
them; this module builds what only a model can give, the frozen encoder's mean-pooled sentence vectors.

The frozen encoder is the recipe's model as loaded, before any layer policy (no surgery, no added tokens), run in eval
mode over the same encoded splits the runs train and evaluate on. Its vectors are cached under `EMBEDLAB_CACHE`
beside the frozen-body feature cache, keyed the same way (the body's weights, the tokenizer, the encoded data), so a
second sweep over the same data reads them."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from safetensors.numpy import load_file, save_file
from torch.utils.data import DataLoader

from pipeline.cache import usable, write_entry
from pipeline.data.collate import without_labels
from pipeline.errors import PipelineError, did_you_mean
from pipeline.experiment.build import Experiment, build_experiment
from pipeline.paths import cache_root, resolve_local_path
from pipeline.recipe.layers import LayersConfig, VectorTraining
from pipeline.recipe.schema import Recipe
from pipeline.surgery.trained_vectors import train_vectors
from pipeline.surgery.vectors import WordVectors, load_vectors
from pipeline.tasks.registry import register_built_in_tasks, task_type
from pipeline.training.features import cache_key

DEFAULT = ("tfidf",)
TRAINED = ("skipgram", "cbow", "fasttext")  # `static:METHOD`: vectors trained on the training texts
MEAN_FILE = "mean.safetensors"


def parse_methods(value: str) -> tuple[str, ...]:
    """`--classical` as given: comma-separated methods that some task type knows, or `none`."""
    methods = tuple(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))
    if methods == ("none",):
        return ()
    known = {
        name: needs for task in register_built_in_tasks().values() for name, needs in task.classical_methods.items()
    }
    for method in methods:
        name, colon, argument = method.partition(":")
        if colon and not argument:
            raise PipelineError(f"'{method}' needs what follows the colon (see pipeline sweep --help)", "--classical")
        key = f"{name}:" if colon else name  # a method that takes an argument is known as `NAME:`
        if key not in known:
            listed = ", ".join(f"{known_name}ARG" if known_name.endswith(":") else known_name for known_name in known)
            raise PipelineError(
                f"unknown classical baseline '{method}'; {did_you_mean(key, known)}one of {listed}, or none",
                field="--classical",
            )
        needs = known[key]
        if needs is not None and importlib.util.find_spec(needs[0]) is None:
            raise PipelineError(
                f"the {method} baseline needs {needs[0]}: pip install 'embedlab[{needs[1]}]'", field="--classical"
            )
    return methods


def check_methods_fit(recipe: Recipe, methods: Sequence[str]) -> None:
    """Every classical row asked for by name is one the recipe's task type has, and a `static:FILE` names a file:
    refused before a sweep folder is made or a run trains, not after."""
    known = task_type(recipe.task.type).classical_methods
    for method in methods:
        name, colon, argument = method.partition(":")
        if (f"{name}:" if colon else name) not in known:
            rows = ", ".join(key + ("ARG" if key.endswith(":") else "") for key in known) or "none"
            raise PipelineError(
                f"the {method} baseline does not apply to {recipe.task.type} (its classical rows: {rows})",
                field="--classical",
            )
        if colon and argument not in TRAINED:
            try:
                found = resolve_local_path(argument).is_file()
            except (OSError, ValueError, PipelineError):
                found = False
            if not found:
                raise PipelineError(f"{method}: '{argument}' is not a vectors file", field="--classical")


def classical_baselines(recipe: Recipe, methods: Sequence[str]) -> list[dict[str, Any]]:
    """The task type's classical baselines on the recipe's data (an empty list where the task has none)."""
    baseline = task_type(recipe.task.type).classical
    if baseline is None or not methods:
        return []
    return baseline()(recipe, methods, FrozenEncoder(recipe))


class FrozenEncoder:
    """The recipe's encoder as loaded, for the baselines that read it: called, the mean-pooled features of every
    split (classification's `frozen-mean`); `experiment()`, the frozen run built once (its model, tokenizer and
    encoded splits); `scores()`, the task's own scoring of each eval split with the encoder untrained."""

    def __init__(self, recipe: Recipe):
        self.recipe, self.built = recipe, None

    def __call__(self) -> dict[str, tuple[np.ndarray, list[int]]]:
        return frozen_mean_features(self.recipe)

    def experiment(self) -> Experiment:
        if self.built is None:
            self.built = build_experiment(frozen_recipe(self.recipe))
        return self.built

    def word_vectors(self, source: str, train_texts: list[str]) -> WordVectors:
        """The vectors of `static:SOURCE`: `skipgram`, `cbow` or `fasttext` trained with gensim on `train_texts`
        (the defaults of `layers.token_embeddings.train`, seeded by `train.seed`), or a vector file read."""
        try:
            if source in TRAINED:
                return train_vectors(VectorTraining(method=source), train_texts, self.recipe.train.seed).vectors
            path = resolve_local_path(source)
            if not path.is_file():
                raise PipelineError(f"no vector file '{source}' (or one of {', '.join(TRAINED)} to train)")
            return load_vectors(path, "auto", None)
        except PipelineError as error:  # the message names a recipe field; here the vectors came from the command
            raise PipelineError(f"static:{source}: {str(error).partition(': ')[2] or error}", "--classical") from None

    def scores(self) -> dict[str, dict[str, float]]:
        exp = self.experiment()
        accelerator, batch_size = exp.runtime.accelerator, self.recipe.eval.batch_size
        model, scores = exp.model.to(accelerator.device), {}
        for split in self.recipe.eval.splits:
            loader = DataLoader(exp.data.splits[split], batch_size=batch_size, collate_fn=exp.data.collator)
            scores[split] = exp.task.evaluate(accelerator, model, loader, exp.metrics)[0]
        return scores


def frozen_recipe(recipe: Recipe) -> Recipe:
    """The recipe with no layer policy (no surgery, no added tokens): the model as loaded, computing every position.
    Nothing trains, so the default policies only say that nothing is replaced."""
    # a pretrained model reads its own tokenizer's ids (a fresh one keeps the tokenizer it is built with)
    tokenizer = recipe.model.tokenizer if recipe.model.config is not None else None
    model = recipe.model.model_copy(update={"add_tokens": None, "tokenizer": tokenizer})
    # every position's last hidden state is averaged, so the last block must compute them all
    train = recipe.train.model_copy(update={"skip_unread_positions": False})
    return recipe.model_copy(update={"layers": LayersConfig(), "model": model, "train": train})


def frozen_mean_features(recipe: Recipe) -> dict[str, tuple[np.ndarray, list[int]]]:
    """Per split (training and eval): the frozen encoder's mean-pooled last hidden states (examples, hidden), in
    the split's order, and the examples' label ids."""
    exp = build_experiment(frozen_recipe(recipe))
    splits = exp.data.splits
    folder = cache_root("features") / f"{cache_key(exp.model, exp.tokenizer, splits)}-mean"
    if usable(folder, "frozen encoder's mean vectors"):
        vectors = load_file(str(folder / MEAN_FILE))
    else:
        vectors = {name: mean_vectors(exp, name) for name in splits}
        write_entry(folder, lambda partial: save_file(vectors, str(partial / MEAN_FILE)), "mean-vectors")
    return {name: (vectors[name], [int(y) for y in splits[name]["labels"]]) for name in splits}


def mean_vectors(exp: Experiment, split: str) -> np.ndarray:
    """(examples, hidden): the body's last hidden states averaged over each example's real (unpadded) tokens."""
    body, device = exp.model.base_model, exp.runtime.accelerator.device
    body.to(device).eval()
    loader = DataLoader(exp.data.splits[split], batch_size=exp.recipe.eval.batch_size, collate_fn=exp.data.collator)
    pooled = []
    with torch.no_grad():
        for batch in loader:
            inputs = {key: value.to(device) for key, value in without_labels(batch).items()}
            hidden = body(**inputs)[0].float()  # (batch, seq, hidden)
            mask = inputs["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (batch, seq, 1)
            pooled.append((hidden * mask).sum(1) / mask.sum(1).clamp(min=1))
    width = exp.model.config.hidden_size
    return torch.cat(pooled).cpu().numpy() if pooled else np.zeros((0, width), dtype=np.float32)
