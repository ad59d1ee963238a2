"""What text a vocabulary entry stands for: the one answer that vector alignment and character ids share."""

from __future__ import annotations

import json
import re

from transformers import PreTrainedTokenizerBase

# Words and single punctuation marks, as most static-vector files split text (what vectors are trained on and looked
# up by).
WORD = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def spelling_of(token: str, tokenizer: PreTrainedTokenizerBase) -> str:
    """The characters a vocabulary entry stands for, as a text would spell them, through the tokenizer's own
    decoder: byte-level BPE `Ġcaf` → "caf" (and `Ã©` → "é"), WordPiece `##ing` → "ing", SentencePiece `▁the` → "the".
    """
    spelled = tokenizer.convert_tokens_to_string([token]).strip()
    return spelled[2:] if spelled.startswith("##") and len(spelled) > 2 else spelled


def token_style(tokenizer: PreTrainedTokenizerBase) -> str:
    """`wordpiece` (`##` continuations), `byte_level` (`Ġ` word starts), `metaspace` (`▁` word starts) or `word`."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    # The model's class and the pre-tokenizer's own state only: serialising the whole tokenizer (its vocabulary and
    # merges) costs ~0.3 s, and callers ask once per word.
    model = type(backend.model).__name__ if backend is not None else None
    pre_tokenizer = backend.pre_tokenizer if backend is not None else None
    pre = json.loads(pre_tokenizer.__getstate__()) if pre_tokenizer is not None else {}
    kinds = {part.get("type") for part in pre.get("pretokenizers", [pre])}
    if model == "WordPiece":
        return "wordpiece"
    if "ByteLevel" in kinds:
        return "byte_level"
    if "Metaspace" in kinds or model == "Unigram":
        return "metaspace"
    return "word"
