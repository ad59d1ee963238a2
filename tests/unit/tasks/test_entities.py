"""Named entities: CoNLL files, word tags aligned to WordPiece and byte-level BPE pieces, entity-level F1 end to end."""

from __future__ import annotations

import json

import pytest
from datasets import Dataset
from helpers import GPT2_TOKENIZER, recipe_dict, train_fresh
from transformers import AutoTokenizer, BertTokenizerFast

from pipeline.data.collate import IGNORED_LABEL
from pipeline.data.files import read_table
from pipeline.errors import PipelineError
from pipeline.families import family_named
from pipeline.paths import resolve_local_path
from pipeline.recipe.schema import EvalConfig
from pipeline.tasks.token_classification.adapter import TokenClassification, tags_look_like_entities
from pipeline.tasks.token_classification.section import TokenClassificationTask

SENTENCE = {"tokens": ["John", "Smithson", "visited", "Reykjavik"], "tags": ["B-PER", "I-PER", "O", "B-LOC"]}
TAGS = ["B-LOC", "B-PER", "I-LOC", "I-PER", "O"]


def tagger(label_pieces: str = "first") -> TokenClassification:
    task = TokenClassification(
        TokenClassificationTask(type="token-classification", label_pieces=label_pieces),
        family_named("bert"),
        EvalConfig(),
    )
    task.fit_labels(Dataset.from_list([SENTENCE, {"tokens": ["in", "Oslo"], "tags": ["O", "I-LOC"]}]))
    return task


def tag_names(task: TokenClassification, labels: list[int]) -> list[str | None]:
    return [None if label == IGNORED_LABEL else task.labels[label] for label in labels]


@pytest.mark.parametrize("label_pieces", ["first", "all"])
def test_word_tags_align_to_wordpiece_pieces(tmp_path, label_pieces):
    (tmp_path / "vocab.txt").write_text(
        "\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "john", "smith", "##son", "visited", "rey", "##k", "##javik"])
        + "\n"
    )
    tokenizer = BertTokenizerFast(vocab=str(tmp_path / "vocab.txt"))
    task = tagger(label_pieces)
    task.prepare_tokenizer(tokenizer)  # WordPiece splits on spaces anyway: left alone
    row = task.encode(Dataset.from_list([SENTENCE]), tokenizer, 32, "train", for_training=True)[0][0]
    assert tokenizer.convert_ids_to_tokens(row["input_ids"]) == [
        "[CLS]",
        "john",
        "smith",
        "##son",
        "visited",
        "rey",
        "##k",
        "##javik",
        "[SEP]",
    ]
    later = {"first": [None, None, None], "all": ["I-PER", "I-LOC", "I-LOC"]}[
        label_pieces
    ]  # B-LOC → I-LOC on later pieces
    assert tag_names(task, row["labels"]) == [None, "B-PER", "I-PER", later[0], "O", "B-LOC", later[1], later[2], None]
    scored = task.encode(Dataset.from_list([SENTENCE]), tokenizer, 32, "validation")[0][0]
    assert tag_names(task, scored["labels"]) == [
        None,
        "B-PER",
        "I-PER",
        None,
        "O",
        "B-LOC",
        None,
        None,
        None,
    ]  # words, by first piece


def test_word_tags_align_to_byte_level_pieces_with_the_space_before_each_word():
    tokenizer = AutoTokenizer.from_pretrained(resolve_local_path(GPT2_TOKENIZER))
    task = tagger("all")
    task.prepare_tokenizer(tokenizer)
    row = task.encode(Dataset.from_list([SENTENCE]), tokenizer, 32, "train", for_training=True)[0][0]
    # As in running text: "ĠSmith" + "son", not "Smith"; every word, the first too, after its space.
    assert tokenizer.convert_ids_to_tokens(row["input_ids"]) == [
        "ĠJohn",
        "ĠSmith",
        "son",
        "Ġvisited",
        "ĠRey",
        "kj",
        "av",
        "ik",
    ]
    assert tag_names(task, row["labels"]) == ["B-PER", "I-PER", "I-PER", "O", "B-LOC", "I-LOC", "I-LOC", "I-LOC"]
    assert tokenizer("the cat")["input_ids"] == tokenizer.convert_tokens_to_ids(["Ġthe", "Ġcat"])  # saved alike


def test_conll_file_round_trip(tmp_path):
    path = tmp_path / "sample.conll"
    path.write_text(
        "-DOCSTART- -X- -X- O\n\nJohn NNP B-NP B-PER\nlives VBZ B-VP O\n\n\nin IN B-PP O\nOslo NNP B-NP B-LOC\n. . O "
        "O\n"
    )
    table = read_table(path)
    assert table.to_pylist() == [
        {"tokens": ["John", "lives"], "tags": ["B-PER", "O"]},
        {"tokens": ["in", "Oslo", "."], "tags": ["O", "B-LOC", "O"]},
    ]
    assert read_table(path, (0, 1)).to_pylist()[0]["tags"] == ["NNP", "VBZ"]  # another column as the tag
    with pytest.raises(PipelineError, match="line 3 has 4 field"):
        read_table(path, (0, 5))


def test_bio_tags_are_recognised():
    assert tags_look_like_entities(TAGS) and tags_look_like_entities(["O", "S-PER", "E-PER"])
    assert not tags_look_like_entities(["NN", "VB", "DT"]) and not tags_look_like_entities(["O"])


def write_conll(path, sentences) -> str:
    path.write_text(
        "-DOCSTART- O\n\n"
        + "\n\n".join("\n".join(f"{w} {t}" for w, t in zip(*s, strict=True)) for s in sentences)
        + "\n"
    )
    return str(path)


@pytest.mark.slow
def test_a_tiny_ner_run_from_conll_files_reports_entity_f1(tmp_path, tiny_bert):
    people, places = ["good", "great", "fine"], ["bad", "awful", "poor"]  # words the tiny BERT knows
    sentences = [([p, "was", "in", q], ["B-PER", "O", "O", "B-LOC"]) for p in people for q in places] * 4
    files = {
        "train": write_conll(tmp_path / "train.conll", sentences),
        "validation": write_conll(tmp_path / "validation.conll", sentences[:9]),
    }
    recipe = recipe_dict(
        tiny_bert,
        files,
        tmp_path / "ner",
        task={"type": "token-classification"},
        eval={"metrics": None, "splits": ["validation"], "batch_size": 8},
        train={"max_steps": 30, "lr": 5e-3},
    )
    run_dir = train_fresh(recipe)
    scores = json.loads((run_dir / "metrics.json").read_text())["validation"]
    assert {"entity_f1", "entity_precision", "entity_recall", "entity_f1/PER", "entity_f1/LOC", "accuracy"} <= set(
        scores
    )
    assert scores["entity_f1"] > 0.9  # two entity slots in a fixed pattern: learnt in 30 steps
    record = json.loads((run_dir / "predictions-validation.jsonl").read_text().splitlines()[0])
    assert record["tokens"] == ["good", "was", "in", "bad"] and record["entities"] == [["PER", 0, 0], ["LOC", 3, 3]]
    assert (run_dir / "confusion-validation.png").stat().st_size > 1000
