"""What text a vocabulary entry stands for: the one answer that vector alignment and character ids share."""

from __future__ import annotations

from transformers import PreTrainedTokenizerBase


def spelling_of(token: str, tokenizer: PreTrainedTokenizerBase) -> str:
    """The characters a vocabulary entry stands for, as a text would spell them, through the tokenizer's own
    decoder: byte-level BPE `Ġcaf` → "caf" (and `Ã©` → "é"), WordPiece `##ing` → "ing", SentencePiece `▁the` → "the".
    """
    spelled = tokenizer.convert_tokens_to_string([token]).strip()
    return spelled[2:] if spelled.startswith("##") and len(spelled) > 2 else spelled
