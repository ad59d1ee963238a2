"""What a vocabulary entry spells, through each tokenizer's own decoder (WordPiece, byte-level BPE, SentencePiece)."""

from __future__ import annotations

from helpers import GPT2_TOKENIZER
from tokenizers import Tokenizer, decoders, models
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from pipeline.paths import resolve_local_path
from pipeline.vocabulary.spelling import spelling_of


def test_wordpiece_entries(tiny_bert):
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    assert spelling_of("##ing", tokenizer) == "ing"
    assert spelling_of("plain", tokenizer) == "plain"
    assert spelling_of("##", tokenizer) == "##"  # the bare marker is a word of its own


def test_byte_level_bpe_entries_are_decoded():
    tokenizer = AutoTokenizer.from_pretrained(resolve_local_path(GPT2_TOKENIZER))
    assert spelling_of("Ġhello", tokenizer) == "hello"
    assert spelling_of("ĠcafÃ©", tokenizer) == "café"  # the byte alphabet decoded, not just the marker dropped
    assert spelling_of("âĤ¬", tokenizer) == "€"
    assert tokenizer.convert_ids_to_tokens(tokenizer("the café")["input_ids"])[-1] == "ĠcafÃ©"


def test_sentencepiece_entries():
    backend = Tokenizer(models.WordLevel({"▁world": 0, "<unk>": 1}, unk_token="<unk>"))
    backend.decoder = decoders.Metaspace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>")
    assert spelling_of("▁world", tokenizer) == "world"
