"""New tokenizers trained on a recipe's training text with the `tokenizers` library (`model.tokenizer: {build: ...}`).

Both come back as `PreTrainedTokenizerFast`, so they save into the run folder beside the model and load again
with `AutoTokenizer.from_pretrained`, and they report character offsets (the bi-LSTM's character CNN reads words
through them).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

if TYPE_CHECKING:
    from pipeline.recipe.schema import TokenizerBuild

WORD_SPECIALS = {"pad_token": "<pad>", "unk_token": "<unk>", "bos_token": "<s>", "eos_token": "</s>"}
BPE_END_OF_TEXT = "<|endoftext|>"  # GPT-2's one special token: end of text, start of text and padding


def _word_level(spec: TokenizerBuild) -> tuple[Tokenizer, trainers.Trainer, dict[str, str]]:
    tokenizer = Tokenizer(models.WordLevel(unk_token=WORD_SPECIALS["unk_token"]))
    # Words and runs of punctuation, as most static-vector vocabularies (GloVe, word2vec) split them.
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordLevelTrainer(
        vocab_size=spec.vocab_size, min_frequency=spec.min_frequency, special_tokens=list(WORD_SPECIALS.values())
    )
    return tokenizer, trainer, WORD_SPECIALS


def _byte_level_bpe(spec: TokenizerBuild) -> tuple[Tokenizer, trainers.Trainer, dict[str, str]]:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=True)
    trainer = trainers.BpeTrainer(
        vocab_size=spec.vocab_size,
        min_frequency=spec.min_frequency,
        special_tokens=[BPE_END_OF_TEXT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    specials = {"bos_token": BPE_END_OF_TEXT, "eos_token": BPE_END_OF_TEXT, "unk_token": BPE_END_OF_TEXT}
    return tokenizer, trainer, specials


def build_tokenizer(spec: TokenizerBuild, texts: Iterable[str]) -> PreTrainedTokenizerFast:
    """Train a word-level or byte-level BPE tokenizer on `texts`; deterministic for the same texts and settings."""
    tokenizer, trainer, specials = (_word_level if spec.build == "word" else _byte_level_bpe)(spec)
    if spec.lowercase:
        tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tokenizer.train_from_iterator((text for text in texts if text), trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, padding_side="right", **specials)
