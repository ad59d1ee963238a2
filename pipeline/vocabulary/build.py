"""New tokenizers trained on a recipe's training text with the `tokenizers` library (`model.tokenizer: {build: ...}`):
word-level, byte-level BPE (as GPT-2) or WordPiece (as BERT, with [CLS] ... [SEP] around each input).

All come back as `PreTrainedTokenizerFast`, so they save into the run folder beside the model and load again
with `AutoTokenizer.from_pretrained`, and they report character offsets (the bi-LSTM's character CNN reads words
through them).
"""

from __future__ import annotations

import logging
import sys
from collections import Counter
from collections.abc import Iterable
from itertools import repeat

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from pipeline.errors import PipelineError
from pipeline.recipe.model import TokenizerBuild

log = logging.getLogger(__name__)

WORD_SPECIALS = {"pad_token": "<pad>", "unk_token": "<unk>", "bos_token": "<s>", "eos_token": "</s>"}
BPE_END_OF_TEXT = "<|endoftext|>"  # GPT-2's one special token: end of text, start of text and padding
PRIVATE_USE_START = 0xF0000  # Supplementary Private Use Area-A: characters no text should contain
WORDPIECE_SPECIALS = {
    "pad_token": "[PAD]",
    "unk_token": "[UNK]",
    "cls_token": "[CLS]",
    "sep_token": "[SEP]",
    "mask_token": "[MASK]",
}


def _word_level(spec: TokenizerBuild) -> tuple[Tokenizer, trainers.Trainer, dict[str, str]]:
    tokenizer = Tokenizer(models.WordLevel(unk_token=WORD_SPECIALS["unk_token"]))
    # Words and runs of punctuation, as most static-vector vocabularies (GloVe, word2vec) split them.
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordLevelTrainer(
        vocab_size=spec.vocab_size,
        min_frequency=spec.min_frequency,
        special_tokens=list(WORD_SPECIALS.values()),
        show_progress=False,
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
        show_progress=False,
    )
    specials = {"bos_token": BPE_END_OF_TEXT, "eos_token": BPE_END_OF_TEXT, "unk_token": BPE_END_OF_TEXT}
    return tokenizer, trainer, specials


def _wordpiece(spec: TokenizerBuild) -> tuple[Tokenizer, None, dict[str, str]]:
    tokenizer = Tokenizer(models.WordPiece(unk_token=WORDPIECE_SPECIALS["unk_token"]))
    tokenizer.normalizer = normalizers.BertNormalizer(
        lowercase=spec.lowercase, clean_text=True, handle_chinese_chars=True
    )
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    return tokenizer, None, WORDPIECE_SPECIALS  # no trainer: see _wordpiece_vocabulary


def _wordpiece_vocabulary(tokenizer: Tokenizer, spec: TokenizerBuild, texts: Iterable[str]) -> dict[str, int]:
    """Learn WordPiece pieces by BPE merges, as the `tokenizers` WordPiece trainer does, but in an order that
    depends only on the text. Ids: the special tokens, then the pieces sorted.

    The library's trainer numbers `##` pieces in hash-map order and breaks ties between equally frequent merges by
    those numbers, so two builds on the same text learnt different pieces. Here each continuation character is
    spelt as a private-use character of its own, so every symbol is in the sorted initial alphabet and a tie always
    goes the same way; the pieces are spelt back with `##` afterwards. Every character gets both forms, so a word
    seen only at test time splits into pieces rather than becoming [UNK].
    """
    words: Counter[str] = Counter()
    for text in texts:
        if text:
            normalized = tokenizer.normalizer.normalize_str(text)
            words.update(word for word, _ in tokenizer.pre_tokenizer.pre_tokenize_str(normalized))
    characters = sorted({character for word in words for character in word})
    in_text = set(characters)
    unused = (chr(code) for code in range(PRIVATE_USE_START, sys.maxunicode + 1) if chr(code) not in in_text)
    continuation = dict(zip(characters, unused, strict=False))
    marked_characters = set(continuation.values())
    mark = str.maketrans(continuation)
    unmark = str.maketrans({marked: plain for plain, marked in continuation.items()})

    learner = Tokenizer(models.BPE())
    learner.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    specials = list(WORDPIECE_SPECIALS.values())
    trainer = trainers.BpeTrainer(
        vocab_size=spec.vocab_size,
        min_frequency=spec.min_frequency,
        special_tokens=specials,
        initial_alphabet=characters + sorted(marked_characters),
        show_progress=False,
    )
    marked_words = ((word[0] + word[1:].translate(mark), count) for word, count in words.items())
    learner.train_from_iterator((" ".join(repeat(word, count)) for word, count in marked_words), trainer=trainer)

    def spelt_back(piece: str) -> str:
        return (
            "##" + piece.translate(unmark) if piece[0] in marked_characters else piece[0] + piece[1:].translate(unmark)
        )

    pieces = {spelt_back(piece) for piece in learner.get_vocab() if piece not in specials}
    return {token: number for number, token in enumerate(specials + sorted(pieces))}


BUILDERS = {"word": _word_level, "bpe": _byte_level_bpe, "wordpiece": _wordpiece}


def build_tokenizer(spec: TokenizerBuild, texts: Iterable[str]) -> PreTrainedTokenizerFast:
    """Train a tokenizer of the kind `spec.build` names on `texts`; deterministic for the same texts and settings.

    Text without a word is refused (the vocabulary would hold only special tokens); a `vocab_size` below the
    alphabet keeps the whole alphabet, and says so.
    """
    texts = [text for text in texts if text and not text.isspace()]
    if not texts:
        raise PipelineError(
            "the training text is empty or whitespace only: there are no words to build a tokenizer from",
            field="model.tokenizer",
        )
    tokenizer, trainer, specials = BUILDERS[spec.build](spec)
    if spec.lowercase and spec.build != "wordpiece":  # WordPiece's BERT normalizer lower-cases itself
        tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    if trainer is None:  # WordPiece: learnt by _wordpiece_vocabulary
        tokenizer.model = models.WordPiece(
            _wordpiece_vocabulary(tokenizer, spec, texts), unk_token=WORDPIECE_SPECIALS["unk_token"]
        )
        cls, sep = WORDPIECE_SPECIALS["cls_token"], WORDPIECE_SPECIALS["sep_token"]
        tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{cls} $A {sep}",
            pair=f"{cls} $A {sep} $B:1 {sep}:1",
            special_tokens=[(cls, tokenizer.token_to_id(cls)), (sep, tokenizer.token_to_id(sep))],
        )
    else:
        tokenizer.train_from_iterator(texts, trainer=trainer)
    _check_built_size(tokenizer.get_vocab_size(), len(set(specials.values())), spec)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, padding_side="right", **specials)


def _check_built_size(size: int, special_count: int, spec: TokenizerBuild) -> None:
    """A vocabulary of special tokens only is refused; one larger than `vocab_size` (the alphabet does not fit) is
    kept, with a line that says so."""
    if size <= special_count:
        raise PipelineError(
            f"no word occurs {spec.min_frequency} times in the training text, so the vocabulary would hold only "
            "special tokens; lower model.tokenizer.min_frequency or give more text",
            field="model.tokenizer.min_frequency",
        )
    if size > spec.vocab_size:
        log.warning(
            "model.tokenizer.vocab_size %d is below the alphabet of the training text: the %s tokenizer keeps every "
            "character, %d tokens in all",
            spec.vocab_size,
            spec.build,
            size,
        )
