"""Tokenizers built from a recipe's training text: WordPiece ids that do not depend on the process, and a resumed
run that reuses the tokenizer it built instead of training another."""

from __future__ import annotations

import pytest
from helpers import make_examples
from transformers import AutoTokenizer

from pipeline.experiment.modeling import load_tokenizer
from pipeline.families.registry import family_named
from pipeline.recipe.schema import ModelConfig, TokenizerBuild
from pipeline.vocabulary.build import WORDPIECE_SPECIALS, build_tokenizer

TEXTS = [row["text"] for row in make_examples(60, 0)] + [
    "unbelievable moviegoers were rewatching",
    "the rewatched movie",
]


@pytest.mark.parametrize("kind", ["wordpiece", "bpe", "word"])
def test_every_build_of_the_same_text_learns_the_same_vocabulary(kind):
    # The library's WordPiece trainer broke ties between equally frequent merges in hash-map order: about one
    # build in three learnt other pieces for this text.
    spec = TokenizerBuild(build=kind, vocab_size=100, min_frequency=1, lowercase=True)
    vocabularies = [build_tokenizer(spec, TEXTS).get_vocab() for _ in range(12)]
    assert all(vocabulary == vocabularies[0] for vocabulary in vocabularies)


def test_wordpiece_ids_are_specials_then_sorted_tokens():
    spec = TokenizerBuild(build="wordpiece", vocab_size=100, min_frequency=1, lowercase=True)
    first = build_tokenizer(spec, TEXTS)
    vocabulary = first.get_vocab()
    assert len(vocabulary) == 100
    # "m" only starts words and "y", "l" only continue them in TEXTS; both forms are in the alphabet all the same
    assert {"##m", "y", "l"} <= set(vocabulary) and "[UNK]" not in first.tokenize("hmm yl")
    ordered = sorted(vocabulary, key=vocabulary.get)
    assert ordered[:5] == list(WORDPIECE_SPECIALS.values()) and ordered[5:] == sorted(ordered[5:])
    assert any(token.startswith("##") for token in ordered)
    encoded = first("the movie was unbelievable")
    assert first.convert_ids_to_tokens(encoded["input_ids"])[0] == "[CLS]" and first.decode(
        encoded["input_ids"], skip_special_tokens=True
    ).startswith("the movie")


def test_a_resumed_run_reuses_the_tokenizer_it_built(tmp_path):
    spec = TokenizerBuild(build="wordpiece", vocab_size=100, min_frequency=1, lowercase=True)
    cfg = ModelConfig(family="bert", config={"hidden_size": 8}, tokenizer=spec)
    saved = build_tokenizer(spec, TEXTS)
    saved.add_tokens(["<only-in-the-saved-one>"])
    saved.save_pretrained(tmp_path)
    reused = load_tokenizer(cfg, family_named("bert"), ["other text entirely"], built=tmp_path)
    assert (
        reused.get_vocab() == AutoTokenizer.from_pretrained(tmp_path).get_vocab()
        and "<only-in-the-saved-one>" in reused.get_vocab()
    )
