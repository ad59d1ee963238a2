"""Tokenizers built from a recipe's training text: WordPiece ids that do not depend on the process, and a resumed
run that reuses the tokenizer it built instead of training another."""

from __future__ import annotations

import pytest
from helpers import make_examples
from transformers import AutoTokenizer

from pipeline.errors import PipelineError
from pipeline.experiment.modeling import load_tokenizer
from pipeline.families.registry import family_named
from pipeline.recipe.model import ModelConfig, TokenizerBuild
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


@pytest.mark.parametrize("kind", ["wordpiece", "bpe", "word"])
@pytest.mark.parametrize("texts", [[], ["", "   ", "\n\t"]], ids=["no-text", "whitespace-only"])
def test_a_build_on_text_without_words_is_refused(kind, texts):
    with pytest.raises(PipelineError, match="empty or whitespace only") as caught:
        build_tokenizer(TokenizerBuild(build=kind, vocab_size=100, min_frequency=1), texts)
    assert caught.value.field == "model.tokenizer"


def test_a_word_vocabulary_of_special_tokens_only_is_refused():
    with pytest.raises(PipelineError, match="min_frequency") as caught:
        build_tokenizer(TokenizerBuild(build="word", vocab_size=100, min_frequency=50), ["one two three", "four"])
    assert caught.value.field == "model.tokenizer.min_frequency"


@pytest.mark.parametrize("kind", ["wordpiece", "bpe", "word"])
def test_digits_only_text_builds_a_vocabulary_of_numbers(kind):
    tokenizer = build_tokenizer(TokenizerBuild(build=kind, vocab_size=100, min_frequency=1), ["12 345 12", "6789 12"])
    pieces = tokenizer.tokenize("12 345")
    assert pieces and tokenizer.unk_token not in pieces
    assert "".join(piece.replace("##", "").replace("Ġ", "") for piece in pieces) == "12345"


def test_a_vocab_size_below_the_alphabet_keeps_the_alphabet_and_says_so(caplog):
    with caplog.at_level("WARNING"):
        tokenizer = build_tokenizer(TokenizerBuild(build="bpe", vocab_size=100, min_frequency=1), TEXTS)
    assert len(tokenizer) > 256  # every byte stays a token
    assert "below the alphabet" in caplog.text


def test_a_model_folder_without_tokenizer_files_is_refused(tmp_path):
    # transformers 5 loads such a folder as its class's tokenizer with special tokens only
    from transformers import BertConfig

    BertConfig(vocab_size=100, hidden_size=16, num_hidden_layers=1, num_attention_heads=2).save_pretrained(tmp_path)
    cfg = ModelConfig(family="bert", name_or_path=str(tmp_path))
    with pytest.raises(PipelineError, match="holds no tokenizer files") as caught:
        load_tokenizer(cfg, family_named("bert"))
    assert caught.value.field == "model.name_or_path"
