"""The bi-LSTM's character ids: each token spelled as UTF-8 bytes for the character CNN, read from the text itself
through the tokenizer's offsets, so an unknown word keeps its spelling.

`CharacterFeatures` hands them to the tasks and the collator through the family's generic token-feature hook.
"""

from __future__ import annotations

from typing import Any, ClassVar

from transformers import BatchEncoding, PreTrainedTokenizerBase

from pipeline.families.base import TokenFeatures

# Character ids: 0 padding, 1 begin of word, 2 end of word, 3 + b for each UTF-8 byte b.
CHAR_PAD, BEGIN_OF_WORD, END_OF_WORD, BYTE_OFFSET = 0, 1, 2, 3
CHAR_VOCAB_SIZE = BYTE_OFFSET + 256


def character_ids(word: str, max_characters: int) -> list[int]:
    """A word's UTF-8 bytes between begin/end markers, cut and padded to `max_characters` ids."""
    body = [BYTE_OFFSET + byte for byte in word.encode("utf-8")[: max_characters - 2]]
    ids = [BEGIN_OF_WORD, *body, END_OF_WORD]
    return ids + [CHAR_PAD] * (max_characters - len(ids))


def characters_of_encoding(
    texts: tuple[str, ...],
    offsets: list[tuple[int, int]],
    sources: list[int | None],
    tokens: list[str],
    max_characters: int,
) -> list[list[int]]:
    """Character ids of every token of one encoding: (tokens, max_characters).

    texts: the strings the offsets point into (a text and its pair, or the words of a pre-split text); sources:
    which of them each token comes from. Tokens without a span (special tokens) are spelled as themselves. Spaces
    that a span takes in (GPT-2's offsets include the space before a word) are dropped, so a token is spelled as
    `spelling_of` spells its vocabulary entry.
    """
    return [
        character_ids(texts[source][start:end].strip() if source is not None and end > start else token, max_characters)
        for (start, end), source, token in zip(offsets, sources, tokens, strict=True)
    ]


class CharacterFeatures(TokenFeatures):
    """`char_ids`: per token, `max_characters` byte ids (the character CNN's input)."""

    pad_values: ClassVar[dict[str, int]] = {"char_ids": CHAR_PAD}
    needs_offsets = True

    def __init__(self, max_characters: int):
        self.max_characters = max_characters

    def add(
        self,
        encoded: BatchEncoding,
        tokenizer: PreTrainedTokenizerBase,
        texts: list[str] | list[list[str]],
        pairs: list[str] | None,
        split_into_words: bool = False,
    ) -> None:
        """Replace `offset_mapping` in a batch encoding by `char_ids` (per example, (tokens, max_characters)).

        texts: the encoded texts (and `pairs`, their second texts), or with `split_into_words` the word lists,
        whose offsets count within each word.
        """
        offsets = encoded.pop("offset_mapping")
        rows = []
        for i in range(len(offsets)):
            if split_into_words:
                sources, which = tuple(texts[i]), encoded.word_ids(i)
            else:
                sources, which = (texts[i],) if pairs is None else (texts[i], pairs[i]), encoded.sequence_ids(i)
            tokens = tokenizer.convert_ids_to_tokens(encoded["input_ids"][i])
            rows.append(characters_of_encoding(sources, offsets[i], which, tokens, self.max_characters))
        encoded["char_ids"] = rows

    def of_token(self, tokenizer: PreTrainedTokenizerBase, token: str) -> dict[str, Any]:
        return {"char_ids": character_ids(token, self.max_characters)}
