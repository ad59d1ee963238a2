"""Tokens added to a pretrained tokenizer: each once, from a file read as text (a byte-order mark and CRLF line ends
are not part of a token), and `describe` only for tokens that were added."""

from __future__ import annotations

import pytest
from helpers import GPT2_TOKENIZER
from transformers import AutoTokenizer

from pipeline.errors import PipelineError
from pipeline.paths import resolve_local_path
from pipeline.recipe.model import AddTokens
from pipeline.vocabulary.added import add_tokens


@pytest.fixture
def tokenizer():
    return AutoTokenizer.from_pretrained(resolve_local_path(GPT2_TOKENIZER))


def test_a_token_listed_as_plain_and_special_is_added_once_as_special(tokenizer):
    added = add_tokens(tokenizer, AddTokens(tokens=["<|sep|>", "photosynthesis"], special=["<|sep|>"]), [])
    assert added.tokens == ["photosynthesis", "<|sep|>"] and added.special == ["<|sep|>"]
    assert len(added.ids) == len(set(added.ids)) == 2


def test_a_tokens_file_with_a_byte_order_mark_and_crlf_lines(tokenizer, tmp_path):
    path = tmp_path / "tokens.txt"
    path.write_bytes("\ufeffphotosynthesis\r\nchlorophyll\r\n".encode())
    added = add_tokens(tokenizer, AddTokens(file=str(path)), [])
    assert added.tokens == ["photosynthesis", "chlorophyll"]
    ids = tokenizer("the photosynthesis", add_special_tokens=False)["input_ids"]
    assert ids[-1] == added.ids[0] and len(ids) == 2  # the tokenizer produces the token as added


def test_describe_of_a_token_not_added_is_refused(tokenizer):
    cfg = AddTokens(tokens=["photosynthesis"], init="compose", describe={"photosynthesys": "light into sugar"})
    with pytest.raises(PipelineError, match="describe names 'photosynthesys'"):
        add_tokens(tokenizer, cfg, [])
