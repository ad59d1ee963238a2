"""Vectors and tokenizers a recipe names are checked when they are read: vectors that are not finite numbers, a
tokenizer file of another shape and a donor that cannot be loaded are one line each; a donor named by its Hub id is
kept, not dropped; a tokenizer sharing no token with the model is said; a long data row within the documented
limit is read."""

from __future__ import annotations

import json
import logging

import pytest
from helpers import make_examples, recipe_dict, write_glove, write_jsonl, write_recipe

from pipeline.cli import main
from pipeline.data.files import read_table
from pipeline.recipe.layers import LayersConfig


@pytest.fixture
def files(tmp_path) -> dict[str, str]:
    return {split: write_jsonl(tmp_path / f"{split}.jsonl", make_examples(count, seed))
            for split, count, seed in (("train", 32, 0), ("validation", 16, 1))}  # fmt: skip


def one_line(capsys) -> str:
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in err
    return errors[0]


def test_vectors_that_are_not_finite_are_refused_when_read(tmp_path, tiny_bert, files, capsys):
    glove = tmp_path / "glove.txt"
    write_glove(glove, ["the", "movie", "good", "bad"], dim=4)
    glove.write_text(glove.read_text() + "plot nan 0.1 0.2 0.3\n")
    for policy in (
        {"policy": "replace", "init": "vectors", "vectors": str(glove)},
        {"policy": "replace", "init": "transfer", "transfer": "weighted", "vectors": str(glove)},
    ):
        model = {"tokenizer": {"build": "wordpiece", "vocab_size": 120}} if "transfer" in policy else {}
        raw = recipe_dict(tiny_bert, files, tmp_path / "run", model=model, layers={"token_embeddings": policy})
        assert main(["train", str(write_recipe(tmp_path / "r.yaml", raw))]) == 2
        line = one_line(capsys)
        assert "holds 1 vector(s) that are not finite numbers" in line and "'plot'" in line
        assert not (tmp_path / "run").exists()


def test_an_omp_donor_named_by_its_hub_id_is_kept():
    layers = LayersConfig.model_validate(
        {"token_embeddings": {"policy": "replace", "init": "transfer", "transfer": "omp", "donor": "org/name"}}
    )
    assert layers.token_embeddings.donor == "org/name" and layers.token_embeddings.token_vectors() is None


def test_a_tokenizer_file_of_another_shape_is_one_line(tmp_path, tiny_bert, files, capsys):
    other = tmp_path / "other-tokenizer"
    other.mkdir()
    (other / "tokenizer.json").write_text(json.dumps({"version": "1.0", "model": {"type": "WordPiece"}}))
    (other / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "BertTokenizerFast"}))
    raw = recipe_dict(tiny_bert, files, tmp_path / "run", model={"tokenizer": str(other)},
                      layers={"token_embeddings": {"policy": "replace", "init": "transfer"}})  # fmt: skip
    assert main(["train", str(write_recipe(tmp_path / "r.yaml", raw))]) == 2
    assert f"model.tokenizer: cannot load '{other}'" in one_line(capsys)


def test_a_donor_whose_weights_are_a_pickle_is_one_line_and_nothing_runs(tmp_path, tiny_bert, files, capsys):
    import pickle

    marker = tmp_path / "ran"
    donor = tmp_path / "donor"
    donor.mkdir()
    (donor / "config.json").write_text((tiny_bert / "config.json").read_text())
    (donor / "pytorch_model.bin").write_bytes(pickle.dumps(Runs(marker)))
    raw = recipe_dict(tiny_bert, files, tmp_path / "run", model={"tokenizer": {"build": "wordpiece",
                      "vocab_size": 120}}, layers={"token_embeddings": {"policy": "replace", "init": "transfer",
                      "transfer": "omp", "donor": str(donor)}}, train={"max_steps": 1})  # fmt: skip
    assert main(["train", str(write_recipe(tmp_path / "r.yaml", raw))]) == 2
    assert f"cannot load the donor model '{donor}'" in one_line(capsys)
    assert not marker.exists()


class Runs:
    """Unpickling this would touch a file: the stand-in for code a donor's weights must never run."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        from pathlib import Path

        return Path.touch, (self.marker,)


def test_a_tokenizer_sharing_no_token_with_the_model_is_said(tmp_path, tiny_bert, files, caplog):
    foreign = [{"text": " ".join(f"zz{i}{j}" for j in range(6)), "label": "pos" if i % 2 else "neg"}
               for i in range(32)]  # fmt: skip
    data = {"train": write_jsonl(tmp_path / "foreign.jsonl", foreign), "validation": files["validation"]}
    raw = recipe_dict(
        tiny_bert,
        data,
        tmp_path / "run",
        model={"tokenizer": {"build": "word", "min_frequency": 1}},
        layers={"token_embeddings": {"policy": "replace", "init": "transfer"}},
        train={"max_steps": 1},
    )
    with caplog.at_level(logging.WARNING):
        assert main(["train", str(write_recipe(tmp_path / "r.yaml", raw))]) == 0
    assert "shares no token with the pretrained one" in caplog.text


def test_a_three_megabyte_json_row_is_read(tmp_path):
    path = tmp_path / "long.jsonl"
    write_jsonl(path, [{"text": "word " * 600_000, "label": "pos"}, {"text": "short", "label": "neg"}])
    table = read_table(path)
    assert table.num_rows == 2 and len(table.column("text")[0].as_py()) == 3_000_000


def test_a_cached_vectors_entry_resealed_with_nan_is_refused(tmp_path, monkeypatch):
    """An entry whose seal matches (resealed by hand) but whose vectors are NaN: refused when read, not trained on."""
    from pipeline.cache import seal
    from pipeline.errors import PipelineError
    from pipeline.recipe.layers import VectorTraining
    from pipeline.surgery import trained_vectors

    monkeypatch.setenv("EMBEDLAB_CACHE", str(tmp_path / "cache"))
    spec, sentences = VectorTraining(method="skipgram", dim=4, min_count=1), [["good", "movie"], ["bad", "plot"]]
    folder = tmp_path / "cache" / "vectors" / trained_vectors._cache_key(spec, sentences, 0)
    folder.mkdir(parents=True)
    (folder / trained_vectors.WORD2VEC_FILE).write_text("4 4\n" + "".join(f"{w} nan nan nan nan\n" for w in
                                                                         ("good", "movie", "bad", "plot")))  # fmt: skip
    seal(folder, folder.name)
    with pytest.raises(PipelineError, match="holds 4 vector\\(s\\) that are not finite numbers"):
        trained_vectors.vectors_of_sentences(spec, sentences, 0)
