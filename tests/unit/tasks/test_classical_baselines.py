"""The classical baselines beside a classification sweep: TF-IDF, Doc2Vec paragraph vectors and the frozen encoder's
mean vector, each + logistic regression, on tiny data, offline."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import fresh_bilstm_model, make_examples, recipe_dict, write_jsonl
from transformers import AutoModel, AutoTokenizer

from pipeline.errors import PipelineError
from pipeline.experiment.recipes import validate_recipe
from pipeline.sweeps.baselines import classical_baselines, frozen_mean_features, parse_methods
from pipeline.tasks.sequence_classification.classical import doc2vec_vectors


@pytest.fixture(scope="module")
def recipe(tmp_path_factory, tiny_bert):
    folder = tmp_path_factory.mktemp("classical")
    files = {
        split: write_jsonl(folder / f"{split}.jsonl", make_examples(count, seed))
        for split, count, seed in (("train", 60, 0), ("validation", 20, 1))
    }
    # a recipe whose own policies must not reach the frozen encoder: a random token table
    layers = {"token_embeddings": {"policy": "replace", "init": "random"}}
    return validate_recipe(recipe_dict(tiny_bert, files, folder / "run", layers=layers))


def test_each_method_scores_every_eval_split_with_its_wall_time(recipe):
    results = classical_baselines(recipe, ["tfidf", "doc2vec", "frozen-mean"])
    assert [r["method"] for r in results] == ["tfidf", "doc2vec", "frozen-mean"]
    assert [r["name"] for r in results] == [
        "TF-IDF + logistic regression",
        "Doc2Vec (PV-DBOW) + logistic regression",
        "frozen encoder, mean-pooled + logistic regression",
    ]
    for result in results:
        assert set(result["scores"]) == {"validation"} and result["wall_s"] >= 0
        assert set(result["scores"]["validation"]) == {"accuracy", "f1_macro"}
        assert 0 <= result["scores"]["validation"]["accuracy"] <= 1
    # the sentiment words decide the label: a bag of words learns it
    assert results[0]["scores"]["validation"]["accuracy"] >= 0.9


def test_paragraph_vectors_are_the_same_for_a_seed_and_differ_across_seeds():
    texts = {"train": [" ".join(make_examples(1, i)[0]["text"].split()) for i in range(30)], "test": ["good film"]}
    first, again, other = (doc2vec_vectors(texts, "train", seed) for seed in (0, 0, 1))
    assert first["train"].shape == (30, 100) and first["test"].shape == (1, 100)
    assert np.array_equal(first["train"], again["train"]) and np.array_equal(first["test"], again["test"])
    assert not np.allclose(first["train"], other["train"])


def test_the_frozen_mean_is_the_pretrained_bodys_masked_mean_and_is_cached(recipe, tiny_bert):
    features = frozen_mean_features(recipe)
    vectors, labels = features["validation"]
    assert vectors.shape == (20, 32) and len(labels) == 20 and set(labels) == {0, 1}
    # by hand: the pretrained body (not the recipe's random table) over the first validation text, mean of its tokens
    text = make_examples(20, 1)[0]["text"]
    tokenizer, body = AutoTokenizer.from_pretrained(tiny_bert), AutoModel.from_pretrained(tiny_bert).eval()
    with torch.no_grad():
        hidden = body(**tokenizer(text, return_tensors="pt", truncation=True, max_length=32)).last_hidden_state
    assert np.allclose(vectors[0], hidden[0].mean(0).numpy(), atol=1e-5)
    again = frozen_mean_features(recipe)  # read from the cache
    assert np.array_equal(again["validation"][0], vectors) and np.array_equal(again["train"][0], features["train"][0])


def test_a_fresh_bilstm_has_a_frozen_mean_too(tmp_path):
    files = {
        split: write_jsonl(tmp_path / f"{split}.jsonl", make_examples(count, seed))
        for split, count, seed in (("train", 30, 0), ("validation", 10, 1))
    }
    raw = recipe_dict(None, files, tmp_path / "run", model=fresh_bilstm_model())
    (result,) = classical_baselines(validate_recipe(raw), ["frozen-mean"])
    assert 0 <= result["scores"]["validation"]["accuracy"] <= 1


def test_methods_are_checked_before_anything_runs():
    assert parse_methods("tfidf, doc2vec,tfidf") == ("tfidf", "doc2vec") and parse_methods("none") == ()
    with pytest.raises(PipelineError, match="did you mean 'doc2vec'"):
        parse_methods("tfidf,doc2vek")


def test_tasks_without_a_classical_baseline_get_none(recipe):
    regression = recipe.model_copy(update={"task": recipe.task.model_copy(update={"type": "regression"})})
    assert classical_baselines(regression, ["tfidf"]) == []
