"""New tokenizers trained on a recipe's training text with the `tokenizers` library (`model.tokenizer: {build: ...}`):
word-level, byte-level BPE (as GPT-2) or WordPiece (as BERT, with [CLS] ... [SEP] around each input).

All come back as `PreTrainedTokenizerFast`, so they save into the run folder beside the model and load again
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
WORDPIECE_SPECIALS = {"pad_token": "[PAD]", "unk_token": "[UNK]", "cls_token": "[CLS]", "sep_token": "[SEP]", "mask_token": "[MASK]"}


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


def _wordpiece(spec: TokenizerBuild) -> tuple[Tokenizer, trainers.Trainer, dict[str, str]]:
    tokenizer = Tokenizer(models.WordPiece(unk_token=WORDPIECE_SPECIALS["unk_token"]))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=spec.lowercase, clean_text=True, handle_chinese_chars=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    trainer = trainers.WordPieceTrainer(
        vocab_size=spec.vocab_size, min_frequency=spec.min_frequency, special_tokens=list(WORDPIECE_SPECIALS.values()),
        continuing_subword_prefix="##",
    )
    return tokenizer, trainer, WORDPIECE_SPECIALS


def _canonical_order(vocab: dict[str, int]) -> dict[str, int]:
    """Ids that depend only on which tokens were learnt: the special tokens first, the rest sorted. The WordPiece
    trainer numbers its alphabet (and so breaks ties between equally frequent merges) in hash-map order, which
    differs from process to process; WordPiece matches the longest piece whatever the ids, so sorting is safe."""
    specials = list(WORDPIECE_SPECIALS.values())
    return {token: number for number, token in enumerate(specials + sorted(set(vocab) - set(specials)))}


BUILDERS = {"word": _word_level, "bpe": _byte_level_bpe, "wordpiece": _wordpiece}


def build_tokenizer(spec: TokenizerBuild, texts: Iterable[str]) -> PreTrainedTokenizerFast:
    """Train a tokenizer of the kind `spec.build` names on `texts`; deterministic for the same texts and settings."""
    tokenizer, trainer, specials = BUILDERS[spec.build](spec)
    if spec.lowercase and spec.build != "wordpiece":  # WordPiece's BERT normalizer lower-cases itself
        tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tokenizer.train_from_iterator((text for text in texts if text), trainer=trainer)
    if spec.build == "wordpiece":
        tokenizer.model = models.WordPiece(_canonical_order(tokenizer.get_vocab()), unk_token=WORDPIECE_SPECIALS["unk_token"])
        cls, sep = WORDPIECE_SPECIALS["cls_token"], WORDPIECE_SPECIALS["sep_token"]
        tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{cls} $A {sep}", pair=f"{cls} $A {sep} $B:1 {sep}:1",
            special_tokens=[(cls, tokenizer.token_to_id(cls)), (sep, tokenizer.token_to_id(sep))],
        )
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, padding_side="right", **specials)
