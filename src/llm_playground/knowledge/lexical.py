"""BM25 over the chunks as one sparse matrix: a query is the sum of its terms' columns.

Built in memory from the chunks' text when the store changes (~5 s of CPU at 100k chunks), then a query
costs ~1 ms at 100k chunks, where SQLite FTS5's `bm25()` over OR-ed terms cost ~100 ms (it scores every
matching row; benchmarks/rag.py measured both). Okapi BM25 with k1 = 1.2, b = 0.75.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np

K1, B = 1.2, 0.75
_WORD = re.compile(r"\w+")
# Words too common to rank by: left out of queries (they carry almost no BM25 weight anyway).
STOPWORDS = frozenset(
    "a an and are as at be by do does for from how i in is it its of on or that the this to was what when where "
    "which who why will with can you your my me we our not no yes if then than so into there their they them "
    "he she his her has have had been being would should could about".split())


def terms(text: str) -> list[str]:
    """Lower-cased words, a plural or third-person `s` cut from longer ones (docs and queries alike)."""
    return [w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w
            for w in _WORD.findall(text.lower())]


def query_terms(text: str) -> list[str]:
    words = terms(text)
    return list(dict.fromkeys(w for w in words if w not in STOPWORDS)) or list(dict.fromkeys(words))


class LexicalIndex:
    def __init__(self, texts: Iterable[str]) -> None:
        import scipy.sparse as sp

        vocab: dict[str, int] = {}
        indptr, indices = [0], list[int]()
        for text in texts:
            indices.extend(vocab.setdefault(w, len(vocab)) for w in terms(text))
            indptr.append(len(indices))
        n = len(indptr) - 1
        counts = sp.csr_matrix((np.ones(len(indices), np.float32), np.asarray(indices, np.int64),
                                np.asarray(indptr, np.int64)), shape=(n, max(len(vocab), 1)))
        counts.sum_duplicates()  # (chunks, vocab): term frequencies
        length = np.diff(np.asarray(indptr))  # (chunks,) words a chunk
        average = max(float(length.mean()) if n else 1.0, 1e-9)
        df = np.bincount(counts.indices, minlength=counts.shape[1])
        idf = np.log(1 + (n - df + 0.5) / (df + 0.5)).astype(np.float32)
        tf = counts.tocoo()
        weight = tf.data * (K1 + 1) / (tf.data + K1 * (1 - B + B * length[tf.row] / average)) * idf[tf.col]
        self.weights = sp.csc_matrix((weight.astype(np.float32), (tf.row, tf.col)), shape=counts.shape)
        self.vocab = vocab

    def scores(self, text: str) -> np.ndarray:
        """(chunks,) BM25 of every chunk for the query; 0 where no query term occurs."""
        columns = [self.vocab[w] for w in query_terms(text) if w in self.vocab]
        if not columns:
            return np.zeros(self.weights.shape[0], np.float32)
        return np.asarray(self.weights[:, columns].sum(axis=1), dtype=np.float32).ravel()
