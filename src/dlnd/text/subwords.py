"""Words as bags of character n-grams (Bojanowski et al. 2017, "fastText").

A word is written with boundary marks, ``"<film>"``, and cut into its character n-grams for
n = 3..5: ``"<fi"``, ``"fil"``, ``"ilm"``, ``"lm>"``, ``"<fil"``, ... Each n-gram is hashed
into one of ``buckets`` rows of a vector table, so words that share spelling share vectors:
"unfunny" and "funniest" meet in "fun"/"funn", and a word never seen in training still gets
a meaning from its pieces. The hash is CRC-32 of the UTF-8 bytes, the same in every process
and on every machine (Python's ``hash`` of a string is not).

NumPy and the standard library only, like the rest of :mod:`dlnd.text`.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence

import numpy as np

SMALLEST, LARGEST = 3, 5


def char_ngrams(word: str, smallest: int = SMALLEST, largest: int = LARGEST) -> list[str]:
    """The character n-grams of ``<word>`` for ``smallest <= n <= largest``, each once, in
    order of length then position (``"a"`` -> ``["<a>"]``; a marked word shorter than
    ``smallest`` is its own only n-gram)."""
    if not word:
        return []
    marked = f"<{word}>"
    seen: dict[str, None] = {}
    for n in range(smallest, largest + 1):
        for start in range(len(marked) - n + 1):
            seen[marked[start : start + n]] = None
    if not seen:  # shorter than the smallest n-gram (only when smallest > 3)
        seen[marked] = None
    return list(seen)


def ngram_bucket(ngram: str, buckets: int) -> int:
    """The table row of ``ngram``: CRC-32 of its UTF-8 bytes modulo ``buckets``."""
    return zlib.crc32(ngram.encode("utf-8")) % buckets


def subword_table(tokens: Sequence[str], buckets: int, skip: Iterable[int] = ()) -> np.ndarray:
    """The n-gram rows of every token: int32 (len(tokens), K), row ``i`` holding the distinct
    buckets of token ``i``'s n-grams, then the filler ``buckets`` (the index of an all-zero
    row) up to K, the longest list. Tokens at the positions ``skip`` (padding, the unknown
    word) get no n-grams: their row is all filler."""
    if buckets < 1:
        raise ValueError(f"buckets must be >= 1, got {buckets}")
    skipped = set(skip)
    rows = [
        [] if i in skipped else sorted({ngram_bucket(g, buckets) for g in char_ngrams(t)})
        for i, t in enumerate(tokens)
    ]
    width = max((len(r) for r in rows), default=0)
    table = np.full((len(rows), max(width, 1)), buckets, dtype=np.int32)
    for i, row in enumerate(rows):
        table[i, : len(row)] = row
    return table
