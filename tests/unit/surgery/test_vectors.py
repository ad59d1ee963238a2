"""Vector files and their alignment to a vocabulary, without any model."""

from __future__ import annotations

import gzip
import re

import numpy as np
import pytest
from gensim.test.utils import datapath

from pipeline.errors import PipelineError
from pipeline.surgery.vectors import WordVectors, align_vectors, coverage_report, detect_format, load_vectors


def test_formats_are_detected(tmp_path):
    from pathlib import Path

    assert detect_format(Path(datapath("lee_fasttext_new.bin"))) == "fasttext"
    assert detect_format(Path(datapath("euclidean_vectors.bin"))) == "word2vec_binary"
    assert detect_format(tmp_path / "glove.txt.gz") == "text"
    assert detect_format(tmp_path / "emb.npy") == "npy"


def test_gzipped_glove_without_header_and_word2vec_with_header(tmp_path):
    glove = tmp_path / "glove.txt.gz"
    with gzip.open(glove, "wt") as handle:
        handle.write("cat 1 2\ndog 3 4\n")
    loaded = load_vectors(glove, "auto", None)
    assert loaded.index == {"cat": 0, "dog": 1} and loaded.matrix.tolist() == [[1, 2], [3, 4]]
    w2v = tmp_path / "w2v.vec"
    w2v.write_text("2 2\ncat 1 2\ndog 3 4\n")
    assert load_vectors(w2v, "auto", None).index == {"cat": 0, "dog": 1}


def test_unreadable_vectors_give_a_pipeline_error(tmp_path):
    broken = tmp_path / "broken.txt"
    broken.write_text("cat 1 2\ndog 3\n")
    with pytest.raises(PipelineError, match="line 2 has 1 values, earlier lines 2"):
        load_vectors(broken, "auto", None)
    broken.write_text("cat 1 2\ndog x y\n")
    with pytest.raises(PipelineError, match="cannot read"):
        load_vectors(broken, "auto", None)
    with pytest.raises(PipelineError, match=re.escape("needs layers.token_embeddings.vectors_vocab")):
        load_vectors(tmp_path / "x.npy", "npy", None)


def test_alignment_routes_and_coverage_counts():
    vectors = WordVectors({"play": 0, "ing": 1, "the": 2}, np.array([[1.0, 0], [0, 1.0], [2.0, 2.0]], dtype=np.float32))
    vocabulary = ["[CLS]", "The", "play", "##ing", "playing", "xyz"]
    words = ["[CLS]", "The", "play", "ing", "playing", "xyz"]  # what each entry spells
    alignment = align_vectors(vocabulary, words, {"[CLS]"}, vectors, lowercase=False, fallback="subword", seed=0)
    assert alignment.routes == ["special", "lowercase", "exact", "exact", "subword", "random"]
    assert np.allclose(alignment.table[4], [0.5, 0.5])  # "playing" = mean of "play" and "ing"
    report = coverage_report(alignment, [[1, 2, 4, 4, 5], [4]])
    assert report["from_vectors"] == 3 and report["by_route"]["subword"] == 1
    assert report["train_token_coverage"] == pytest.approx(2 / 6, abs=1e-4)
    assert report["top_missed_in_train"] == [
        {"token": "playing", "count": 3, "route": "subword"},
        {"token": "xyz", "count": 1, "route": "random"},
    ]
