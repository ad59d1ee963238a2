"""Static vectors trained with gensim on the run's own corpus: deterministic for a seed, cached, covering the words
they should, fastText covering unseen words through n-grams, and saved in the run folder as word2vec text."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import make_examples, recipe_dict, train_fresh

from pipeline.errors import PipelineError
from pipeline.experiment.build import build_experiment
from pipeline.experiment.recipes import validate_recipe
from pipeline.recipe.layers import VectorTraining
from pipeline.surgery.trained_vectors import train_vectors
from pipeline.surgery.vectors import align_vectors

TEXTS = [row["text"] for row in make_examples(80, 0)]


def spec(**settings) -> VectorTraining:
    return VectorTraining(**{"dim": 8, "epochs": 3, "min_count": 1, **settings})


@pytest.mark.parametrize("method", ["skipgram", "cbow", "fasttext"])
def test_the_same_seed_trains_the_same_vectors_and_another_seed_others(method, monkeypatch, tmp_path):
    first = train_vectors(spec(method=method), TEXTS, seed=0)
    monkeypatch.setenv("EMBEDLAB_CACHE", str(tmp_path / "another-cache"))  # trained again, not read from the cache
    again = train_vectors(spec(method=method), TEXTS, seed=0)
    other = train_vectors(spec(method=method), TEXTS, seed=1)
    assert not again.report["from_cache"] and first.report["cache"] != again.report["cache"]
    assert first.vectors.index == again.vectors.index
    assert np.array_equal(np.asarray(first.vectors.matrix), np.asarray(again.vectors.matrix))
    assert not np.array_equal(np.asarray(first.vectors.matrix), np.asarray(other.vectors.matrix))


def test_a_second_call_reads_the_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("EMBEDLAB_CACHE", str(tmp_path))
    first = train_vectors(spec(), TEXTS, seed=0)
    second = train_vectors(spec(), TEXTS, seed=0)
    assert not first.report["from_cache"] and second.report["from_cache"]
    assert first.report["cache"] == second.report["cache"]


def test_every_word_seen_min_count_times_gets_a_vector_and_no_other():
    texts = ["the cat sat", "the dog sat", "the bird"]
    trained = train_vectors(spec(min_count=2), texts, seed=0)
    assert set(trained.vectors.index) == {"the", "sat"}
    assert trained.vectors.dim == 8 and trained.report["sentences"] == 3


def test_fasttext_covers_an_unseen_word_through_its_ngrams():
    texts = [*TEXTS, "wonderful wonderfully wondering"]
    trained = train_vectors(spec(method="fasttext"), texts, seed=0)
    words = ["wonderfulness", "movie"]
    alignment = align_vectors(words, words, set(), trained.vectors, lowercase=True, fallback="random", seed=0)
    assert "wonderfulness" not in trained.vectors.index
    assert alignment.routes == ["fasttext_ngrams", "lowercase"]
    skipgram = train_vectors(spec(), texts, seed=0)
    assert align_vectors(words, words, set(), skipgram.vectors, True, "random", 0).routes == ["random", "lowercase"]


def test_a_corpus_without_enough_words_is_refused():
    with pytest.raises(PipelineError, match="too few to train") as caught:
        train_vectors(spec(min_count=5), ["one two three"], seed=0)
    assert caught.value.field == "layers.token_embeddings.train.min_count"


def test_a_corpus_file_is_read_line_by_line(tmp_path):
    corpus = tmp_path / "domain.txt"
    corpus.write_text("kinase binds the receptor\nthe receptor binds kinase\n" * 3)
    trained = train_vectors(spec(corpus=str(corpus)), TEXTS, seed=0)
    assert "kinase" in trained.vectors.index and "movie" not in trained.vectors.index
    assert trained.report["sentences"] == 6


def test_train_without_init_vectors_or_beside_a_file_is_refused(tmp_path, jsonl_data, tiny_bert):
    for policy in ({"policy": "replace", "init": "random", "train": {}}, {"policy": "finetune", "train": {}}):
        raw = recipe_dict(tiny_bert, jsonl_data, tmp_path / "run", layers={"token_embeddings": policy})
        with pytest.raises(PipelineError, match="train"):
            validate_recipe(raw)


@pytest.mark.slow
def test_a_run_with_trained_vectors_saves_them_as_word2vec_text(tmp_path, jsonl_data, tiny_bert):
    from gensim.models import KeyedVectors

    training = {"method": "fasttext", "dim": 16, "epochs": 2, "min_count": 1}
    layers = {"token_embeddings": {"policy": "replace", "init": "vectors", "width": "pad", "train": training}}
    raw = recipe_dict(tiny_bert, jsonl_data, tmp_path / "run", layers=layers, train={"max_steps": 2, "batch_size": 8})
    exp = build_experiment(validate_recipe(raw))
    assert exp.input_report.surgery.trained_vectors["method"] == "fasttext"
    by_route = exp.input_report.coverage["by_route"]
    assert by_route["lowercase"] > 0 and by_route["random"] == 0  # fastText gives every non-special token a row
    assert "fasttext vectors trained on train" in exp.input_report.surgery.sources.token_embeddings
    run = train_fresh(raw)
    saved = KeyedVectors.load_word2vec_format(str(run / "vectors.txt"))
    assert saved.vector_size == 16 and "movie" in saved.key_to_index
    assert json.loads((run / "input_layers.json").read_text())["trained_vectors"]["words"] == len(saved.key_to_index)
