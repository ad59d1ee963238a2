"""How a tokenizer cuts a corpus: pieces per word and tokens per text (the cost a new vocabulary can lower)."""

from __future__ import annotations

from collections.abc import Sequence

from transformers import PreTrainedTokenizerBase

SAMPLE = 2000  # texts measured: enough for stable means, quick on any corpus


def tokenization_stats(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str]) -> dict[str, float]:
    """Mean pieces per whitespace-separated word, and mean tokens per text (special tokens included, before any
    truncation), over the first `SAMPLE` texts."""
    sample = [text for text in texts[:SAMPLE] if text and text.strip()]
    if not sample:
        return {"pieces_per_word": 0.0, "tokens_per_text": 0.0, "texts": 0}
    pieces = sum(len(ids) for ids in tokenizer(sample, add_special_tokens=False, verbose=False)["input_ids"])
    tokens = sum(len(ids) for ids in tokenizer(sample, verbose=False)["input_ids"])
    words = sum(len(text.split()) for text in sample)
    return {
        "pieces_per_word": round(pieces / max(words, 1), 4),
        "tokens_per_text": round(tokens / len(sample), 2),
        "texts": len(sample),
    }
