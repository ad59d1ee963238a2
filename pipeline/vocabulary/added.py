"""Tokens added to a pretrained tokenizer (`model.add_tokens`): listed, read from a file, or the most frequent words of
the training text that the tokenizer splits into several pieces; added so that each becomes one token.

A word added to a byte-level BPE or SentencePiece tokenizer (whose pieces carry the space before a word) is added
as a whole word that takes the space before it (`single_word`, `lstrip`), so "the photosynthesis" becomes two tokens
as "the cat" does. A token the tokenizer already has as one piece is skipped and reported, never added twice.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tokenizers import AddedToken
from transformers import PreTrainedTokenizerBase

from pipeline.data.files import check_text_file
from pipeline.errors import PipelineError, unusable
from pipeline.paths import resolve_local_path
from pipeline.recipe.model import AddTokens
from pipeline.vocabulary.spelling import token_style

log = logging.getLogger(__name__)
FIELD = "model.add_tokens"
WORD = re.compile(r"[^\W\d_]{3,}")  # a word of at least three letters


@dataclass
class AddedTokens:
    """What was added: each new token with its id (in order), the special ones, and the ones already known."""

    ids: list[int] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    special: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # already one token of the vocabulary: not added
    old_size: int = 0


def pieces(tokenizer: PreTrainedTokenizerBase, text: str) -> list[int]:
    """The ids a tokenizer cuts a word into, as it occurs in running text (after a space)."""
    spaced = token_style(tokenizer) in ("byte_level", "metaspace")
    return tokenizer(f" {text}" if spaced else text, add_special_tokens=False)["input_ids"]


def is_one_token(tokenizer: PreTrainedTokenizerBase, word: str) -> bool:
    """Whether the tokenizer already reads `word` as one known token (not split, not unknown)."""
    ids = pieces(tokenizer, word)
    return len(ids) == 1 and ids[0] != tokenizer.unk_token_id


def frequent_split_words(texts: Iterable[str], tokenizer: PreTrainedTokenizerBase, count: int) -> list[str]:
    """The `count` most frequent words (three letters or more) of `texts` that the tokenizer splits into pieces (or
    does not know)."""
    frequency = Counter(word for text in texts for word in WORD.findall(text))
    vocabulary, chosen = tokenizer.get_vocab(), []
    for word, _ in frequency.most_common():
        if word not in vocabulary and not is_one_token(tokenizer, word):  # in it as a piece: it cannot be added
            chosen.append(word)
            if len(chosen) == count:
                break
    return chosen


def tokens_file(value: str) -> list[str]:
    """The tokens of a file, one per line: UTF-8 (a byte-order mark and CRLF line ends are read as such, never as
    part of a token), blank lines skipped; a file that is not text is one line."""
    path = Path(resolve_local_path(value))
    try:
        check_text_file(path)
        text = path.read_bytes().decode("utf-8-sig")
    except (OSError, ValueError) as error:  # UnicodeDecodeError is a ValueError
        raise unusable(f"cannot read '{value}' as a file of tokens, one per line", error, field=FIELD) from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def requested(cfg: AddTokens, tokenizer: PreTrainedTokenizerBase, texts: Iterable[str]) -> list[str]:
    """The plain tokens a recipe asks for, in order, once each: listed, from the file, from the data (a token that
    is also among the special ones is added once, as special)."""
    tokens = list(cfg.tokens)
    if cfg.file is not None:
        tokens += tokens_file(cfg.file)
    if cfg.from_data:
        tokens += frequent_split_words(texts, tokenizer, cfg.from_data)
    return [token for token in dict.fromkeys(tokens) if token not in cfg.special]


def nothing_to_add(cfg: AddTokens) -> PipelineError:
    """Why no token was asked for, by where they were to come from."""
    sources = [f"the file '{cfg.file}' holds no token"] if cfg.file is not None else []
    if cfg.from_data:
        sources.append("the training text has no word of three letters or more that the tokenizer splits")
    return PipelineError(f"no token to add: {'; '.join(sources)}", field=FIELD)


def add_tokens(tokenizer: PreTrainedTokenizerBase, cfg: AddTokens, texts: Iterable[str]) -> AddedTokens:
    """Add the recipe's tokens to `tokenizer` (in place); returns what was added and what was skipped."""
    result = AddedTokens(old_size=len(tokenizer))
    vocabulary = tokenizer.get_vocab()
    spaced = token_style(tokenizer) in ("byte_level", "metaspace")
    plain, asked = [], requested(cfg, tokenizer, texts)
    if not asked and not cfg.special:
        raise nothing_to_add(cfg)
    for token in asked:
        if token in vocabulary or is_one_token(tokenizer, token):
            result.skipped.append(token)
        else:
            plain.append(
                AddedToken(token, single_word=spaced, lstrip=spaced, normalized=False) if " " not in token else token
            )
    special = [token for token in cfg.special if token not in vocabulary]
    result.skipped += [token for token in cfg.special if token in vocabulary]
    if result.skipped:
        log.warning(
            "model.add_tokens: already a token (or piece) of the vocabulary, not added: %s", result.skipped[:10]
        )
    tokenizer.add_tokens(plain)
    if special:
        tokenizer.add_special_tokens({"additional_special_tokens": special}, replace_extra_special_tokens=False)
    for token in [*(str(t) for t in plain), *special]:
        result.ids.append(tokenizer.convert_tokens_to_ids(token))
        result.tokens.append(token)
    result.special = special
    stray = [token for token in cfg.describe if token not in result.tokens]
    if stray:
        raise PipelineError(
            f"describe names {stray[0]!r}, which is not among the tokens added ({', '.join(result.tokens[:5])})",
            field=f"{FIELD}.describe",
        )
    if not result.ids:
        raise PipelineError(
            f"every token to add is already in the vocabulary ({', '.join(result.skipped[:5])})",
            field=FIELD,
        )
    return result
