"""Static word vectors trained on the run's own corpus with gensim (`init: vectors` with `train: {...}`):
word2vec skip-gram or CBOW, or fastText, whose character n-grams give a vector to a word never seen whole.

Trained once per corpus and settings: the result is cached under `EMBEDLAB_CACHE/vectors/<hash>/` (the hash of
the corpus text, the settings and the seed), so the runs of a sweep that differ only in other settings train them
once. Each cache entry holds `vectors.txt` (word2vec text format, which the run folder gets a copy of) and, for
fastText, `fasttext.bin` (Facebook's format, n-grams included). One worker thread: gensim is deterministic for a
seed only then.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pipeline.cache import usable, write_entry
from pipeline.data.files import check_text_file
from pipeline.errors import PipelineError, unusable
from pipeline.extras import missing_extra
from pipeline.paths import cache_root, resolve_local_path
from pipeline.recipe.layers import VectorTraining
from pipeline.surgery.vectors import WordVectors, load_vectors
from pipeline.vocabulary.spelling import WORD

log = logging.getLogger(__name__)
FIELD = "layers.token_embeddings.train"
WORD2VEC_FILE, FASTTEXT_FILE = "vectors.txt", "fasttext.bin"


@dataclass
class TrainedVectors:
    """The vectors, and what `input_layers.json` says of them (`vectors_file`: their word2vec text file)."""

    vectors: WordVectors
    report: dict


def corpus_sentences(texts: Iterable[str], lowercase: bool) -> list[list[str]]:
    """One list of words per non-empty text (or line of a corpus file)."""
    sentences = []
    for text in texts:
        words = WORD.findall(text.lower() if lowercase else text)
        if words:
            sentences.append(words)
    return sentences


def corpus_texts(spec: VectorTraining, train_texts: list[str]) -> list[str]:
    """The training split's texts, or the lines of the corpus file the recipe names."""
    if spec.corpus == "train":
        return train_texts
    path = resolve_local_path(spec.corpus)
    try:
        check_text_file(path)
        return path.read_text(encoding="utf-8").splitlines()
    except (OSError, ValueError) as error:
        raise unusable(f"cannot read '{spec.corpus}' as a text corpus", error, field=f"{FIELD}.corpus") from None


def _cache_key(spec: VectorTraining, sentences: list[list[str]], seed: int) -> str:
    digest = hashlib.sha256(json.dumps({**spec.model_dump(exclude={"corpus"}), "seed": seed}).encode())
    for words in sentences:
        digest.update(" ".join(words).encode())
        digest.update(b"\n")
    return digest.hexdigest()[:24]


def _train(spec: VectorTraining, sentences: list[list[str]], seed: int, folder: Path) -> None:
    """Train with gensim and write the cache entry's files into `folder`."""
    try:
        from gensim.models import FastText, Word2Vec
        from gensim.models.fasttext import save_facebook_model
    except ImportError:
        raise missing_extra("gensim", "training vectors", FIELD) from None
    options = {"vector_size": spec.dim, "window": spec.window, "epochs": spec.epochs, "min_count": spec.min_count,
               "seed": seed, "workers": 1, "sg": 0 if spec.method == "cbow" else 1}  # fmt: skip
    model = (FastText if spec.method == "fasttext" else Word2Vec)(sentences=sentences, **options)
    model.wv.save_word2vec_format(str(folder / WORD2VEC_FILE))
    if spec.method == "fasttext":
        save_facebook_model(model, str(folder / FASTTEXT_FILE))


def train_vectors(spec: VectorTraining, train_texts: list[str], seed: int) -> TrainedVectors:
    """Vectors for `spec`, from the cache or trained now (and cached: written aside, then renamed into place)."""
    return vectors_of_sentences(spec, corpus_sentences(corpus_texts(spec, train_texts), spec.lowercase), seed)


def vectors_of_sentences(spec: VectorTraining, sentences: list[list[str]], seed: int) -> TrainedVectors:
    """Vectors for `spec` trained on `sentences` (lists of words or tokens), or read from the cache."""
    counts = Counter(word for words in sentences for word in words)
    kept = sum(count >= spec.min_count for count in counts.values())
    if kept < 2:
        raise PipelineError(
            f"the corpus has {kept} word(s) seen at least min_count ({spec.min_count}) times: too few to train "
            "vectors on; lower min_count or give a larger corpus",
            field=f"{FIELD}.min_count",
        )
    folder = cache_root("vectors") / _cache_key(spec, sentences, seed)
    cached = usable(folder, f"{spec.method} vectors")  # checked against its seal before gensim parses it
    if not cached:  # each process trains aside; the first rename wins and the others use its entry
        write_entry(folder, lambda partial: _train(spec, sentences, seed, partial), "trained-vectors")
    log.info("%s vectors (%s): %s", spec.method, "cached" if cached else "trained", folder)
    binary = spec.method == "fasttext"
    vectors = load_vectors(
        folder / (FASTTEXT_FILE if binary else WORD2VEC_FILE), "fasttext" if binary else "text", None
    )
    report = {"method": spec.method, "dim": spec.dim, "corpus": spec.corpus, "sentences": len(sentences),
              "words": len(vectors.index), "cache": str(folder), "from_cache": cached,
              "vectors_file": str(folder / WORD2VEC_FILE)}  # fmt: skip
    return TrainedVectors(vectors, report)
