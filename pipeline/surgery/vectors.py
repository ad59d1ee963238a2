"""Static word vectors (GloVe, word2vec, fastText, .npy + vocabulary) aligned to a tokenizer's vocabulary.

Loading goes through gensim's `KeyedVectors` where a format is gensim's (optional extra `vectors`); the
`.npy` + vocabulary route needs only NumPy (and pyarrow for a parquet vocabulary).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.errors import PipelineError, unusable
from pipeline.extras import missing_extra
from pipeline.recipe.layers import is_npy

FIELD = "layers.token_embeddings.vectors"
# Routes by which a vocabulary entry got its row; the first three come from the vector file.
ROUTES = ("exact", "lowercase", "fasttext_ngrams", "subword", "mean", "random", "special")
FASTTEXT_MAGIC = 793712314  # first int32 of a Facebook fastText .bin model
MAX_PIECE = 24  # longest word tried when segmenting a token into known words (`subword` fallback)


@dataclass
class WordVectors:
    """Word → row of `matrix` (n_words, dim); `oov` builds a vector for any string (fastText n-grams) or None."""

    index: dict[str, int]
    matrix: np.ndarray
    oov: Callable[[str], np.ndarray] | None = None

    @property
    def dim(self) -> int:
        return self.matrix.shape[1]


def detect_format(path: Path) -> str:
    """`npy`, `word2vec_binary`, `fasttext` or `text` from the file name."""
    if is_npy(path.name, "auto"):
        return "npy"
    if path.name.lower().endswith(".bin"):
        with open(path, "rb") as handle:
            magic = int.from_bytes(handle.read(4), "little")
        return "fasttext" if magic == FASTTEXT_MAGIC else "word2vec_binary"
    return "text"


def _read_vocabulary(path: Path) -> list[str]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        column = (
            "index"
            if "index" in table.column_names
            else "word"
            if "word" in table.column_names
            else table.column_names[0]
        )
        return [str(word) for word in table.column(column).to_pylist()]
    return path.read_text(encoding="utf-8").splitlines()


def _gensim():
    try:
        from gensim.models import KeyedVectors
        from gensim.models.fasttext import load_facebook_vectors
    except ImportError:
        raise missing_extra("gensim", "reading GloVe, word2vec or fastText files", FIELD) from None
    return KeyedVectors, load_facebook_vectors


def _open_text(path: Path):
    import gzip

    return (gzip.open if path.suffix == ".gz" else open)(path, "rt", encoding="utf-8", errors="replace")


def _has_header(path: Path) -> bool:
    with _open_text(path) as handle:
        first = handle.readline().split()
    return len(first) == 2 and all(part.isdigit() for part in first)


def _check_text_rows(path: Path, header: bool) -> None:
    """Every row must hold a word and the same number of values (gensim pads a short row without a word)."""
    with _open_text(path) as handle:
        if header:
            handle.readline()
        width = None
        for number, line in enumerate(handle, start=2 if header else 1):
            fields = len(line.rstrip("\n").rstrip(" ").split(" "))
            width = width or fields
            if fields != width and line.strip():
                raise PipelineError(
                    f"'{path}' line {number} has {fields - 1} values, earlier lines {width - 1}", field=FIELD
                )


def load_vectors(path: Path, fmt: str, vocabulary: Path | None) -> WordVectors:
    """Read word vectors in any supported format."""
    fmt = detect_format(path) if fmt == "auto" else fmt
    try:
        if fmt == "npy":
            if vocabulary is None:
                raise PipelineError(
                    "a .npy matrix needs layers.token_embeddings.vectors_vocab (words, one per row)", field=FIELD
                )
            matrix = np.load(path, mmap_mode="r")
            if matrix.ndim != 2 or not np.issubdtype(matrix.dtype, np.number):
                raise PipelineError(
                    f"'{path}' holds a {matrix.ndim}-d {matrix.dtype} array; vectors must be a 2-d numeric matrix "
                    "(words × dimensions)",
                    field=FIELD,
                )
            words = _read_vocabulary(vocabulary)
            if len(words) != matrix.shape[0]:
                raise PipelineError(
                    f"{len(words)} words for {matrix.shape[0]} vectors", field="layers.token_embeddings.vectors_vocab"
                )
            # Keep the first row of a word listed twice (files are usually sorted by frequency).
            index = {}
            for row, word in enumerate(words):
                index.setdefault(word, row)
            return finite(WordVectors(index, matrix), path)
        keyed_vectors, load_facebook_vectors = _gensim()
        if fmt == "fasttext":
            vectors = load_facebook_vectors(str(path))
            oov = lambda word: vectors.get_vector(word)  # noqa: E731  (fastText's n-gram vector of any string)
            return finite(WordVectors(dict(vectors.key_to_index), vectors.vectors, oov=oov), path)
        header = fmt != "text" or _has_header(path)
        if fmt == "text":
            _check_text_rows(path, header)
        vectors = keyed_vectors.load_word2vec_format(str(path), binary=fmt == "word2vec_binary", no_header=not header)
        return finite(WordVectors(dict(vectors.key_to_index), vectors.vectors), path)
    except PipelineError:
        raise
    except Exception as error:  # gensim and NumPy raise many types on a truncated or foreign file: all "unreadable"
        raise unusable(f"cannot read '{path}' as {fmt} vectors", error, field=FIELD) from None


def finite(vectors: WordVectors, path: Path) -> WordVectors:
    """`vectors`, refused in one line where a row holds NaN or an infinity (a file, or a cache entry resealed by
    hand): such a row would turn every vector mixed from it, and then the loss, into NaN."""
    bad = np.flatnonzero(~np.isfinite(np.asarray(vectors.matrix)).all(axis=1))
    if len(bad):
        first = int(bad[0])
        word = next((word for word, row in vectors.index.items() if row == first), "?")
        raise PipelineError(
            f"'{path}' holds {len(bad):,} vector(s) that are not finite numbers (NaN or infinite; the first is row "
            f"{first}, '{word}')",
            field=FIELD,
        )
    return vectors


def _segment(word: str, vectors: WordVectors) -> list[int]:
    """Greedy longest-match split of `word` into words the vector file knows (rows), or [] if none fits."""
    rows, start = [], 0
    while start < len(word):
        for end in range(min(len(word), start + MAX_PIECE), start, -1):
            row = vectors.index.get(word[start:end])
            if row is not None:
                rows.append(row)
                start = end
                break
        else:
            start += 1
    return rows


@dataclass
class Alignment:
    """Rows for every vocabulary id, and by which route each got its row."""

    vocabulary: list[str]  # token per id
    table: np.ndarray  # (vocab_size, dim)
    routes: list[str]  # one of ROUTES per vocabulary id
    counts: dict[str, int] = field(default_factory=dict)


def align_vectors(
    vocabulary: list[str],
    words: list[str],
    special: set[str],
    vectors: WordVectors,
    lowercase: bool,
    fallback: str,
    seed: int,
) -> Alignment:
    """Give each vocabulary entry (index = token id) a vector; `words[i]` is what entry i spells
    (`pipeline.vocabulary.spelling.spelling_of`).

    Route order: the word as is, then lower-cased (when the tokenizer lower-cases, or as a second try),
    then fastText n-grams when the file has them, then the fallback: `random` (normal with the file's std),
    `mean` (the file's mean vector) or `subword` (mean of the known words the token splits into; random if none).
    Special tokens ([CLS], <|endoftext|>...) get a random row.
    """
    rng = np.random.default_rng(seed)
    sample = np.asarray(vectors.matrix[: min(len(vectors.matrix), 50_000)], dtype=np.float32)
    mean, std = sample.mean(axis=0), float(sample.std())
    table = np.empty((len(vocabulary), vectors.dim), dtype=np.float32)
    routes = []
    for token_id, (token, word) in enumerate(zip(vocabulary, words, strict=True)):
        candidates = [("lowercase", word.lower())] if lowercase else [("exact", word), ("lowercase", word.lower())]
        route, row = None, None
        if token not in special and word:
            for name, candidate in candidates:
                if candidate in vectors.index:
                    route, row = name, np.asarray(vectors.matrix[vectors.index[candidate]], dtype=np.float32)
                    break
            if route is None and vectors.oov is not None:
                route, row = (
                    "fasttext_ngrams",
                    np.asarray(vectors.oov(word.lower() if lowercase else word), dtype=np.float32),
                )
            if route is None and fallback == "subword":
                pieces = _segment(word.lower() if lowercase else word, vectors)
                if pieces:
                    route, row = "subword", np.asarray(vectors.matrix[pieces], dtype=np.float32).mean(axis=0)
            if route is None and fallback == "mean":
                route, row = "mean", mean
        if route is None:
            route = "special" if token in special else "random"
            row = rng.normal(0.0, std, vectors.dim).astype(np.float32)
        table[token_id] = row
        routes.append(route)
    return Alignment(vocabulary, table, routes, dict(Counter(routes)))


def coverage_report(alignment: Alignment, train_token_ids: list[list[int]], top: int = 20) -> dict:
    """Counts by route, and the `top` most frequent training tokens that got no vector from the file."""
    vocabulary = alignment.vocabulary
    frequency = Counter(token_id for ids in train_token_ids for token_id in ids)
    missed = [(tid, n) for tid, n in frequency.most_common() if alignment.routes[tid] in ("subword", "mean", "random")]
    covered = sum(alignment.counts.get(route, 0) for route in ("exact", "lowercase", "fasttext_ngrams"))
    train_total = sum(frequency.values())
    train_covered = sum(
        n for tid, n in frequency.items() if alignment.routes[tid] in ("exact", "lowercase", "fasttext_ngrams")
    )
    return {
        "vocabulary_size": len(vocabulary),
        "from_vectors": covered,
        "by_route": {route: alignment.counts.get(route, 0) for route in ROUTES},
        "train_token_coverage": round(train_covered / train_total, 4) if train_total else None,
        "top_missed_in_train": [
            {"token": vocabulary[tid], "count": n, "route": alignment.routes[tid]} for tid, n in missed[:top]
        ],
    }
