"""Bad and unusual inputs, one case each, shared by the table-driven test (`integration/test_bad_input_table.py`) and
by `benchmarks/bad_inputs.py`, which runs them against any checkout and counts the outcomes.

A case builds what it needs in a `Workspace` (a tiny BERT, toy data, a good recipe) and returns the `pipeline`
command line and the text its one `error:` line must contain. Every case must end with exit code 2, one line
naming the field, and nothing written to the run folder.
"""

from __future__ import annotations

import gzip
import json
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from helpers import make_examples, recipe_dict, save_tiny_bert, write_jsonl, write_recipe


@dataclass
class Workspace:
    """A folder with a tiny BERT checkpoint, toy train/validation data and a good recipe whose run folder is `run`."""

    root: Path
    bert: Path | None = None  # an existing tiny BERT to use; None: save one under root
    data: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        if self.bert is None:
            self.bert = save_tiny_bert(self.root / "bert")
        self.data = {
            split: write_jsonl(self.root / f"{split}.jsonl", make_examples(count, seed))
            for split, count, seed in (("train", 48, 0), ("validation", 16, 1))
        }

    @property
    def run(self) -> Path:
        return self.root / "run"

    def recipe(self, name: str = "recipe.yaml", **sections: Any) -> str:
        return str(write_recipe(self.root / name, recipe_dict(self.bert, self.data, self.run, **sections)))

    def file(self, name: str, content: str | bytes) -> str:
        path = self.root / name
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return str(path)

    def train_with_file(self, name: str, content: str | bytes, **sections: Any) -> list[str]:
        """`pipeline train` with `name` (written with `content`) as the train split."""
        path = self.file(name, content)
        return [
            "train",
            self.recipe(data={"files": {"train": path, "validation": self.data["validation"]}}, **sections),
        ]


@dataclass
class Case:
    name: str
    kind: str  # recipe | data | model | vectors | run folder | eval
    build: Callable[[Workspace], tuple[list[str], str]]


def override(*assignments: str) -> Callable[[Workspace], list[str]]:
    return lambda ws: ["train", ws.recipe(), *assignments]


def rows(*records: dict[str, Any]) -> str:
    return "".join(json.dumps(record) + "\n" for record in records)


GOOD = [{"text": "good movie", "label": "pos"}, {"text": "bad movie", "label": "neg"}] * 8
TAGGING = {
    "task": {"type": "token-classification"},
    "eval": {"metrics": ["accuracy"], "splits": ["validation"], "batch_size": 8},
}


def _recipe_cases() -> list[Case]:
    table = [
        ("seed below zero", ["train.seed=-1"], "train.seed: Input should be greater than or equal to 0"),
        (
            "seed past 32 bits",
            ["train.seed=99999999999999"],
            "train.seed: Input should be less than or equal to 4294967295",
        ),
        (
            "split seed below zero",
            ["data.split_seed=-5"],
            "data.split_seed: Input should be greater than or equal to 0",
        ),
        ("adam beta above one", ["train.adam_betas=[0.9, 1.5]"], "train.adam_betas must each be in [0, 1)"),
        ("adam beta below zero", ["train.adam_betas=[-0.1, 0.9]"], "train.adam_betas must each be in [0, 1)"),
        ("one adam beta", ["train.adam_betas=[0.9]"], "train.adam_betas"),
        (
            "timeout overflows",
            ["train.collective_timeout_s=99999999999"],
            "train.collective_timeout_s: Input should be less than or equal to 604800",
        ),
        ("infinite lr", ["train.lr=.inf"], "train.lr: Input should be a finite number"),
        ("nan lr", ["train.lr=.nan"], "train.lr: Input should be a finite number"),
        ("infinite weight decay", ["train.weight_decay=.inf"], "train.weight_decay: Input should be a finite number"),
        (
            "infinite lr multiplier",
            ["layers.token_embeddings.lr_multiplier=.inf"],
            "layers.token_embeddings.lr_multiplier: Input should be a finite number",
        ),
        (
            "nan head multiplier",
            ["layers.head.lr_multiplier=.nan"],
            "layers.head.lr_multiplier: Input should be a finite number",
        ),
        ("infinite clipping", ["train.max_grad_norm=.inf"], "train.max_grad_norm: Input should be a finite number"),
        ("nan adam eps", ["train.adam_eps=.nan"], "train.adam_eps: Input should be a finite number"),
        ("nan warm-up", ["train.warmup_ratio=.nan"], "train.warmup_ratio: Input should be a finite number"),
        (
            "infinite sinusoid scale",
            ["layers.positions={policy: replace, init: sinusoidal, scale: .inf}"],
            "layers.positions.scale: Input should be a finite number",
        ),
        (
            "huge batch",
            ["train.batch_size=10000000000"],
            "train.batch_size: Input should be less than or equal to 1000000",
        ),
        (
            "huge eval batch",
            ["eval.batch_size=1000000000"],
            "eval.batch_size: Input should be less than or equal to 1000000",
        ),
        (
            "huge max_length",
            ["model.max_length=1000000000"],
            "model.max_length: Input should be less than or equal to 1000000",
        ),
        (
            "huge position table",
            ["layers.positions={policy: replace, init: learned, max_positions: 100000000}"],
            "layers.positions.max_positions: Input should be less than or equal to 1000000",
        ),
        ("no metrics", ["eval.metrics=[]"], "eval.metrics: List should have at least 1 item"),
        ("holdout named train", ["data.holdout={train: 0.3}"], "data.holdout: 'train' is the training split"),
        (
            "text column is the label",
            ["task.text_column=label"],
            "task.label_column and task.text_column both name column 'label'",
        ),
        (
            "pair column is the text",
            ["task.text_pair_column=text"],
            "task.text_pair_column and task.text_column both name column 'text'",
        ),
        ("empty output_dir", ['output_dir=""'], "output_dir: String should have at least 1 character"),
        ("broken YAML list override", ["train.lr=[1,"], "override 'train.lr=[1,': the value is not valid YAML"),
        ("broken YAML mapping override", ["layers.positions={policy: replace"], "the value is not valid YAML"),
        (
            "huge vocabulary to build",
            ["model.tokenizer={build: word, vocab_size: 10000000000}"],
            "model.tokenizer.vocab_size: Input should be less than or equal to 1000000",
        ),
    ]
    cases = [
        Case(name, "recipe", lambda ws, a=args, e=expected: (override(*a)(ws), e)) for name, args, expected in table
    ]
    cases += [
        Case(
            "duplicate key",
            "recipe",
            lambda ws: (
                ["train", ws.file("dup.yaml", Path(ws.recipe()).read_text() + "output_dir: other\n")],
                "duplicate key 'output_dir'",
            ),
        ),
        Case(
            "recipe is a folder",
            "recipe",
            lambda ws: (["train", str(ws.root)], "is a folder; give the recipe's YAML file"),
        ),
        Case(
            "recipe not UTF-8",
            "recipe",
            lambda ws: (["train", ws.file("latin.yaml", b"output_dir: caf\xe9\n")], "not valid YAML (not UTF-8 text"),
        ),
        Case(
            "recipe is a list",
            "recipe",
            lambda ws: (["train", ws.file("list.yaml", "- a\n- b\n")], "a recipe must be a YAML mapping"),
        ),
        Case(
            "data file is a folder",
            "recipe",
            lambda ws: (override(f"data.files.train={ws.root}")(ws), "is a folder, not a file"),
        ),
        Case(
            "data folder is a file",
            "recipe",
            lambda ws: (override("data.files=null", f"data.folder={ws.data['train']}")(ws), "is not a folder"),
        ),
        Case(
            "vectors path is a folder",
            "recipe",
            lambda ws: (
                override(f"layers.token_embeddings={{policy: replace, init: vectors, vectors: {ws.root}}}")(ws),
                "is a folder, not a file",
            ),
        ),
    ]
    return cases


def _data_cases() -> list[Case]:
    table = [
        ("empty JSONL", "empty.jsonl", b"", {}, "the file is empty"),
        ("JSONL not UTF-8", "latin.jsonl", b'{"text": "caf\xe9", "label": "pos"}\n' * 4, {}, "is not UTF-8 text"),
        ("truncated JSONL", "cut.jsonl", rows(*GOOD) + '{"text": "go', {}, "JSON parse error"),
        (
            "JSONL null label",
            "null.jsonl",
            rows(*GOOD[:2], {"text": "fine", "label": None}, *GOOD[2:]),
            {},
            "row 3 of split 'train'",
        ),
        (
            "JSONL mixed label types",
            "mixed.jsonl",
            rows(*GOOD[:2], {"text": "fine", "label": 1}),
            {},
            "changed from string to number in row 3",
        ),
        (
            "JSONL list label",
            "listlabel.jsonl",
            rows({"text": "fine", "label": ["pos"]}, {"text": "bad", "label": ["neg"]}),
            {},
            "column 'label' of split 'train'",
        ),
        (
            "JSONL list text",
            "listtext.jsonl",
            rows({"text": ["fine"], "label": "pos"}, {"text": ["bad"], "label": "neg"}),
            {},
            "holds lists; a text must be a single value",
        ),
        (
            "JSONL fractional labels",
            "float.jsonl",
            rows({"text": "fine", "label": 0.5}, {"text": "bad", "label": 1.5}),
            {},
            "a class label must be a string or an integer",
        ),
        (
            "JSONL object label",
            "objlabel.jsonl",
            rows({"text": "fine", "label": {"a": 1}}, {"text": "bad", "label": {"a": 2}}),
            {},
            "holds objects",
        ),
        ("JSON array of numbers", "numbers.json", "[1, 2, 3]", {}, "one array of objects"),
        ("JSON lines of arrays", "arrays.jsonl", "[1, 2]\n[3, 4]\n", {}, "cannot read"),
        ("CSV with a short row", "short.csv", "text,label\ngood,pos\nbad\n", {}, "Expected 2 columns, got 1"),
        ("empty CSV", "empty.csv", b"", {}, "the file is empty"),
        ("CSV header only", "header.csv", "text,label\n", {}, "holds no rows"),
        ("empty parquet", "empty.parquet", b"", {}, "the file is empty"),
        ("garbage parquet", "garbage.parquet", b"not a parquet file at all", {}, "cannot read"),
        (
            "words not a list",
            "words.jsonl",
            rows({"tokens": "the cat", "tags": ["D", "N"]}),
            TAGGING,
            "words must be a list per row",
        ),
        (
            "null tag",
            "nulltag.jsonl",
            rows({"tokens": ["the", "cat"], "tags": ["D", "N"]}, {"tokens": ["a", "dog"], "tags": ["D", None]}),
            TAGGING,
            "row 2 of split 'train'",
        ),
        (
            "regression target is text",
            "textual.jsonl",
            rows({"text": "fine", "label": "high"}, {"text": "bad", "label": "low"}),
            {"task": {"type": "regression"}, "eval": {"metrics": None}},
            "a regression target must be a number",
        ),
        (
            "missing regression target",
            "notarget.jsonl",
            rows({"text": "fine", "label": 1.5}, {"text": "bad", "label": None}),
            {"task": {"type": "regression"}, "eval": {"metrics": None}},
            "row 2 of split 'train'",
        ),
        (
            "missing label inside a label list",
            "holes.jsonl",
            rows({"text": "fine", "labels": ["a"]}, {"text": "bad", "labels": ["b", None]}),
            {"task": {"type": "multi-label"}, "eval": {"metrics": None}},
            "has a missing item in its labels",
        ),
        (
            "label set of numbers",
            "numbers.jsonl",
            rows({"text": "fine", "labels": 1.5}, {"text": "bad", "labels": 2.5}),
            {"task": {"type": "multi-label"}, "eval": {"metrics": None}},
            "a label set must be a list of labels",
        ),
        ("conll line without a tag", "short.conll", "John B-PER\nlives\n", TAGGING, "line 2 has 1 field(s)"),
        (
            "null word list",
            "nullwords.jsonl",
            rows({"tokens": ["the"], "tags": ["D"]}, {"tokens": None, "tags": ["D"]}),
            TAGGING,
            "row 2 of split 'train'",
        ),
    ]
    return [
        Case(name, "data", lambda ws, n=fname, c=content, s=sections, e=expected: (ws.train_with_file(n, c, **s), e))
        for name, fname, content, sections, expected in table
    ]


def _with_model_files(ws: Workspace, name: str, change: Callable[[Path], None]) -> list[str]:
    """A copy of the tiny BERT with one file changed, as the recipe's checkpoint."""
    import shutil

    folder = ws.root / name
    shutil.copytree(ws.bert, folder, dirs_exist_ok=True)
    change(folder)
    return override(f"model.name_or_path={folder}")(ws)


def _fresh(config: str) -> Callable[[Workspace], list[str]]:
    return override(
        "model.name_or_path=null", f"model.config={config}", "model.tokenizer={build: word, min_frequency: 1}"
    )


def _model_cases() -> list[Case]:
    def truncate(folder):
        return (folder / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes()[:200])

    return [
        Case(
            "heads do not divide width",
            "model",
            lambda ws: (
                _fresh("{hidden_size: 30, num_attention_heads: 4}")(ws),
                "model.config: not a valid bert configuration",
            ),
        ),
        Case(
            "negative width",
            "model",
            lambda ws: (_fresh("{hidden_size: -8}")(ws), "model.config.hidden_size: -8 is negative"),
        ),
        Case(
            "string for an int",
            "model",
            lambda ws: (_fresh("{num_hidden_layers: two}")(ws), "model.config: not a valid bert configuration"),
        ),
        Case("zero layers of zero width", "model", lambda ws: (_fresh("{hidden_size: 0}")(ws), "model.config")),
        Case(
            "model too big to allocate",
            "model",
            lambda ws: (
                _fresh(
                    "{hidden_size: 65536, intermediate_size: 262144, num_hidden_layers: 48, num_attention_heads: 64}"
                )(ws),
                "model.config: a bert model of these settings needs",
            ),
        ),
        Case(
            "vocabulary of zero rows",
            "model",
            lambda ws: (_fresh("{vocab_size: 1, hidden_size: 32, num_attention_heads: 2}")(ws), "model.tokenizer"),
        ),
        Case(
            "truncated safetensors",
            "model",
            lambda ws: (_with_model_files(ws, "cut-bert", truncate), "model.name_or_path: cannot load"),
        ),
        Case(
            "garbage config.json",
            "model",
            lambda ws: (
                _with_model_files(ws, "bad-config", lambda f: (f / "config.json").write_text("{not json")),
                "model.name_or_path: cannot load",
            ),
        ),
        Case(
            "max_length of one",
            "model",
            lambda ws: (override("model.max_length=1")(ws), "model.max_length: 1 leaves no room for text"),
        ),
        Case(
            "max_length of two",
            "model",
            lambda ws: (override("model.max_length=2")(ws), "model.max_length: 2 leaves no room for text"),
        ),
        Case(
            "batch larger than the data",
            "model",
            lambda ws: (
                override("train.batch_size=64")(ws),
                "train.batch_size: 64 examples per step, but the training split has only 48",
            ),
        ),
    ]


def _vectors(ws: Workspace, name: str, content: Any, extra: str = "") -> list[str]:
    path = ws.root / name
    if isinstance(content, np.ndarray):
        np.save(path, content, allow_pickle=True)
    else:
        path.write_bytes(content)
    vocab = ws.file("vocab.txt", "good\nbad\n")
    policy = (
        f"{{policy: replace, init: vectors, vectors: {path}, vectors_vocab: {vocab}{extra}}}"
        if name.endswith(".npy")
        else f"{{policy: replace, init: vectors, vectors: {path}{extra}}}"
    )
    return override(f"layers.token_embeddings={policy}")(ws)


def _vector_cases() -> list[Case]:
    fasttext_head = struct.pack("<ii", 793712314, 12) + b"\x00" * 20  # the magic number, then nothing usable
    return [
        Case(
            "one-dimensional npy",
            "vectors",
            lambda ws: (
                _vectors(ws, "flat.npy", np.zeros(8, dtype=np.float32)),
                "vectors must be a 2-d numeric matrix",
            ),
        ),
        Case(
            "three-dimensional npy",
            "vectors",
            lambda ws: (
                _vectors(ws, "cube.npy", np.zeros((2, 2, 2), dtype=np.float32)),
                "vectors must be a 2-d numeric matrix",
            ),
        ),
        Case(
            "string npy",
            "vectors",
            lambda ws: (
                _vectors(ws, "words.npy", np.array([["a", "b"], ["c", "d"]])),
                "vectors must be a 2-d numeric matrix",
            ),
        ),
        Case(
            "object npy",
            "vectors",
            lambda ws: (_vectors(ws, "objects.npy", np.array([[{}, {}], [{}, {}]], dtype=object)), "cannot read"),
        ),
        Case(
            "npy of the wrong word count",
            "vectors",
            lambda ws: (_vectors(ws, "three.npy", np.zeros((3, 4), dtype=np.float32)), "2 words for 3 vectors"),
        ),
        Case("truncated fastText", "vectors", lambda ws: (_vectors(ws, "cut.bin", fasttext_head), "cannot read")),
        Case(
            "gzip that is not gzip",
            "vectors",
            lambda ws: (_vectors(ws, "fake.txt.gz", b"good 1 2 3 4\n"), "cannot read"),
        ),
        Case(
            "vectors wider than the model",
            "vectors",
            lambda ws: (
                _vectors(ws, "wide.txt", ("good " + " ".join(["1"] * 64) + "\n").encode()),
                "64-d vectors are wider than the model's 32",
            ),
        ),
        Case(
            "gzip of a binary",
            "vectors",
            lambda ws: (_vectors(ws, "bin.txt.gz", gzip.compress(b"\x00\xff\x00\xff" * 10)), "cannot read"),
        ),
    ]


def _run_folder_cases() -> list[Case]:
    return [
        Case(
            "output below a file",
            "run folder",
            lambda ws: (override(f"output_dir={ws.file('plain.txt', 'x')}/run")(ws), "which is a file"),
        ),
        Case(
            "output is the working directory",
            "run folder",
            lambda ws: (override("output_dir=.")(ws), "is the working directory or a folder above it"),
        ),
        Case(
            "output is a parent",
            "run folder",
            lambda ws: (override("output_dir=..")(ws), "is the working directory or a folder above it"),
        ),
        Case(
            "output is a file",
            "run folder",
            lambda ws: (override(f"output_dir={ws.file('plain2.txt', 'x')}")(ws), "exists and is not a folder"),
        ),
    ]


def _token_and_body_cases() -> list[Case]:
    """New tokens, rows, the tie, LoRA: what cannot be honoured is refused before anything is written."""
    table = [
        (
            "added tokens all known",
            ["model.add_tokens=[good, movie]"],
            "model.add_tokens: every token to add is already",
        ),
        ("rows new without added tokens", ["layers.token_embeddings.rows=new"], "model.add_tokens adds none"),
        (
            "copy of a token that does not exist",
            ["model.add_tokens={tokens: [moviegoer], init: {copy: nosuchtoken}}"],
            "copy: 'nosuchtoken' is not a token of the vocabulary",
        ),
        (
            "rows of an unknown token",
            ["layers.token_embeddings.rows=[nosuchtoken]"],
            "layers.token_embeddings.rows: 'nosuchtoken' is not a token",
        ),
        (
            "LoRA targets that match nothing",
            ["layers.encoder={policy: lora, target_modules: [no_such_layer]}"],
            "layers.encoder.target_modules: ['no_such_layer'] match no linear layer",
        ),
        ("LoRA rank without LoRA", ["layers.encoder.r=4"], "r applies to policy: lora"),
        ("untie without a tied head", ["layers.token_embeddings.tie=untie"], "needs an LM head tied to the token"),
        (
            "rows of a frozen table",
            ["layers.token_embeddings={policy: freeze, rows: [good]}"],
            "applies to policy: finetune",
        ),
    ]
    return [
        Case(name, "recipe", lambda ws, a=assignments, e=expected: (override(*a)(ws), e))
        for name, assignments, expected in table
    ]


def sweep_command(ws: Workspace, *options: str) -> list[str]:
    return ["sweep", ws.recipe(), "--no-baseline", *options]


def _sweep_cases() -> list[Case]:
    """A sweep owns only its folder; grid keys are recipe keys, each in one grid."""
    return [
        Case("sweep into the working directory's parent", "sweep",
             lambda ws: (sweep_command(ws, "--output", ".."), "is the working directory or a folder above it")),
        Case("sweep into a folder of the user's files", "sweep",
             lambda ws: (sweep_command(ws, "--output", _folder_of_user_files(ws)),
                         "holds files a sweep did not write")),
        Case("sweep into a file", "sweep",
             lambda ws: (sweep_command(ws, "--output", ws.file("notes.txt", "mine")), "exists and is not a folder")),
        Case("seed as a grid key", "sweep",
             lambda ws: (sweep_command(ws, "--output", str(ws.root / "s"), "--grid", "train.seed=1,2"),
                         "--grid train.seed: not a grid key (use --seeds)")),
        Case("one key in two grids", "sweep",
             lambda ws: (sweep_command(ws, "--output", str(ws.root / "s"), "--grid", "train.lr=0.1",
                                       "--grid", "train.lr=0.2"), "--grid train.lr is given twice")),
        Case("ray address where nothing listens", "sweep",
             lambda ws: (sweep_command(ws, "--output", str(ws.root / "s"), "--backend", "ray", "--ray-address",
                                       "127.0.0.1:9"), "--ray-address: nothing answers at 127.0.0.1:9")),
        Case("ray address that is not one", "sweep",
             lambda ws: (sweep_command(ws, "--output", str(ws.root / "s"), "--backend", "ray", "--ray-address",
                                       "cluster"), "'cluster' is not a Ray address")),
        Case("duplicate seeds", "sweep",
             lambda ws: (sweep_command(ws, "--output", str(ws.root / "s"), "--seeds", "1,1"), "each once")),
    ]  # fmt: skip


LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]\n"
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True)
)


REGRESSION: dict[str, Any] = {"task": {"type": "regression"}, "eval": {"metrics": ["mse"]}}


FRESH_BERT = ["model.name_or_path=null", "model.config={num_hidden_layers: 1, hidden_size: 32, num_attention_heads: 2}"]
BLANK_TEXTS = rows(*[{"text": text, "label": label} for text, label in (("  ", "pos"), ("", "neg"), ("\t", "pos"))] * 4)
DELIMITED_LABEL = {
    "task": {"type": "multi-label", "label_column": "label", "label_delimiter": ","},
    "eval": {"metrics": None},
}


def _folder_of_user_files(ws: Workspace) -> str:
    """A folder below the working directory holding a file of the user's (the survey runs in `ws.root`)."""
    (ws.root / "notes").mkdir()
    (ws.root / "notes" / "todo.txt").write_text("mine")
    return str(ws.root / "notes")


def _folder_without_tokenizer(ws: Workspace) -> str:
    """A copy of the tiny BERT's config and weights, without its tokenizer files."""
    bare = ws.root / "bare-model"
    bare.mkdir()
    for name in ("config.json", "model.safetensors"):
        (bare / name).write_bytes((ws.bert / name).read_bytes())
    return str(bare)


def _degenerate_cases() -> list[Case]:
    """Degenerate values the newer task types and builders must refuse rather than train on."""
    blank_train = "data.files={train: %s, validation: %s}"
    return [
        Case("tokenizer built on whitespace-only text", "data",
             lambda ws: (override(*FRESH_BERT, "model.tokenizer={build: word, min_frequency: 1}",
                                  blank_train % (ws.file("blank.jsonl", BLANK_TEXTS), ws.data["validation"]))(ws),
                         "there are no words to build a tokenizer from")),
        Case("tokenizer whose min_frequency no word reaches", "recipe",
             lambda ws: (override(*FRESH_BERT, "model.tokenizer={build: word, min_frequency: 100000}")(ws),
                         "model.tokenizer.min_frequency: no word occurs 100000 times")),
        Case("model folder without tokenizer files", "model",
             lambda ws: (override(f"model.name_or_path={_folder_without_tokenizer(ws)}")(ws),
                         "holds no tokenizer files")),
        Case("multi-label label holding the delimiter", "data",
             lambda ws: (ws.train_with_file("labels.jsonl", rows(*[{"text": "good", "label": ["pos", "arts, culture"]},
                                                                    {"text": "bad", "label": ["neg"]}] * 6),
                                            **DELIMITED_LABEL),
                         "contains task.label_delimiter")),
        Case("regression target infinite", "data",
             lambda ws: (ws.train_with_file("inf.csv", "text,label\n" + "good,1.0\nbad,-inf\n" * 8, **REGRESSION),
                         "has target -inf in column 'label'")),
        Case("regression target beyond float32", "data",
             lambda ws: (ws.train_with_file("huge.csv", "text,label\n" + "good,1.0\nbad,1e39\n" * 8, **REGRESSION),
                         "a finite number within ±1.8e19")),
    ]  # fmt: skip


def _huge_input_cases() -> list[Case]:
    """Inputs too big to be meant: refused in seconds, before memory grows."""
    return [
        Case("recipe whose aliases expand exponentially", "recipe",
             lambda ws: (["validate", ws.file("laughs.yaml", LAUGHS)], "aliases expand to more than 100,000")),
        Case("recipe of two megabytes", "recipe",
             lambda ws: (["validate", ws.file("big.yaml", "a: " + "x" * (2 << 20))], "a recipe is at most")),
        Case("data file of NUL bytes", "data",
             lambda ws: (ws.train_with_file("zeros.jsonl", b"\0" * (2 << 20)), "holds NUL bytes: a binary file")),
        Case("data file of one 17 MB line", "data",
             lambda ws: (ws.train_with_file("line.txt", b"a" * (17 << 20)), "a line is longer than 16 MiB")),
    ]  # fmt: skip


def _leftover_cases() -> list[Case]:
    """The three tracebacks left from the second round."""
    fresh = ["model.name_or_path=null", "model.config={num_hidden_layers: -1, hidden_size: 32, num_attention_heads: 2}"]
    language_modeling = ["task={type: language-modeling, objective: causal}", "model.family=gpt2",
                         "model.name_or_path=null", "model.config={n_layer: 1, n_embd: 16, n_head: 2}",
                         "model.tokenizer=pkg://pipeline/assets/gpt2-tokenizer", "eval.metrics=null"]  # fmt: skip
    return [
        Case("negative layer count", "model",
             lambda ws: (override(*fresh, f"model.tokenizer={ws.bert}")(ws),
                         "model.config.num_hidden_layers: -1 is negative")),
        Case("every language-modeling text empty", "data",
             lambda ws: (override(*language_modeling, "data.files={train: %s, validation: %s}" % (
                 (ws.file("empty.jsonl", '{"text": ""}\n{"text": "  "}\n'),) * 2))(ws),
                         "split 'train': every text is empty")),
        Case("output_dir that cannot be created", "run folder",
             lambda ws: (override("output_dir=/proc/embedlab-run/run")(ws), "output_dir: ")),
    ]  # fmt: skip


def _eval_cases() -> list[Case]:
    return [
        Case(
            "eval output in a missing folder",
            "eval",
            lambda ws: (["eval", str(ws.root), "--output", str(ws.root / "nodir" / "x.json")], "--output: "),
        ),
        Case(
            "eval output is a folder",
            "eval",
            lambda ws: (["eval", str(ws.root), "--output", str(ws.root)], "is a folder; give a file name"),
        ),
        Case(
            "eval of a folder that is no run",
            "eval",
            lambda ws: (["eval", str(ws.root)], "is neither a finished run folder"),
        ),
    ]


# This round's groups (sweeps, locks, disks, trust, sizes, degenerate data) beside the earlier ones, so the survey
# can run them alone: `benchmarks/bad_inputs.py --groups third-round`.
THIRD_ROUND = _token_and_body_cases() + _sweep_cases() + _leftover_cases() + _huge_input_cases() + _degenerate_cases()
CASES = (
    _recipe_cases()
    + _data_cases()
    + _model_cases()
    + _vector_cases()
    + _run_folder_cases()
    + _eval_cases()
    + _token_and_body_cases()
    + _sweep_cases()
    + _leftover_cases()
    + _huge_input_cases()
    + _degenerate_cases()
)
