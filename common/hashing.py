"""Stable, vectorised hashing of categorical values into buckets.

Python's ``hash()`` is salted per process, so it can never be used for features: a model trained in
one process must see the same bucket for the same value in the service. This is 64-bit FNV-1a over the
Unicode code points of the value's canonical string, computed column-wise with numpy so that a
million values hash without a Python loop per value.

Canonical string: strings as they are but for trailing NUL characters, integers in decimal (``42`` and
``"42"`` hash alike). numpy's unicode arrays keep no trailing NULs (``"a\\x00"`` is stored as ``"a"``), so
those hash as the string without them, in the trainer and the service alike, on both hashing paths below.

Buckets: the hash modulo a power of two 2^k depends only on the low k bits of each code point (the XOR and
the multiplication carry nothing downwards), so below 256 buckets values that differ only in higher bits
share a bucket whatever the luck: ``Mobile`` and ``mobile`` at 16 or 32 buckets, ``US`` and ``us`` up to 128.
A modulus with an odd factor reads every bit; ``ctr spec infer`` proposes primes. The hash itself stays
as it is: every exported model's buckets were drawn with it.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

SMALL_BATCH = 64  # up to this many values, hash one by one through a memo (a service request's size)
# up to this many distinct values, a column's are made text in one array, as wide as the longest (at most 4 MB at the
# service's 1,024 characters), and not by fnv1a64_texts: a request (CTR_MAX_CANDIDATES, 1,000 by default) of 100
# ten-character ids took 7 µs more (of 77) made text one by one
UNGROUPED_TEXTS = 1024
FNV_OFFSET = np.uint64(0xCBF29CE484222325)
FNV_PRIME = np.uint64(0x100000001B3)


def canonical_strings(values: np.ndarray | list) -> np.ndarray:
    """The canonical string form of categorical values, as a numpy unicode array."""
    array = np.asarray(values)
    if array.dtype.kind == "U":
        return array
    if array.dtype.kind in "iu":
        return array.astype(str)
    if array.dtype.kind == "O":
        return np.array([str(v) for v in array.tolist()], dtype=str) if array.size else array.astype(str)
    raise TypeError(f"categorical values must be strings or integers, not {array.dtype}")


def fnv1a64(values: np.ndarray | list) -> np.ndarray:
    """64-bit FNV-1a of each value's canonical string; returns uint64 of the same length."""
    strings = canonical_strings(values).reshape(-1)
    if strings.size == 0:
        return np.zeros(0, dtype=np.uint64)
    if strings.size <= SMALL_BATCH:  # the numpy loop costs ~3 array ops per character; a memo ~0.1 µs
        return np.fromiter(map(_fnv1a64_one, strings.tolist()), dtype=np.uint64, count=strings.size)
    width = max(strings.dtype.itemsize // 4, 1)
    codes = np.ascontiguousarray(strings).view(np.uint32).reshape(strings.size, width)  # (N, L)
    lengths = np.char.str_len(strings)
    hashes = np.full(strings.size, FNV_OFFSET, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for position in range(int(lengths.max(initial=0))):
            live = lengths > position  # strings shorter than this position keep their hash
            mixed = (hashes ^ codes[:, position].astype(np.uint64)) * FNV_PRIME
            hashes = np.where(live, mixed, hashes)
    return hashes


def fnv1a64_texts(texts: list[str]) -> np.ndarray:
    """``fnv1a64`` of each of many Python strings, hashed in groups of like length where their lengths differ widely.

    One numpy array of the texts is (count x the longest text) code points wide, and ``fnv1a64`` steps through every
    position up to the longest for every text: 1,000,000 distinct ten-character ids beside one 1,024-character value
    (CTR_MAX_STRING_CHARS; a log's user agents and URLs) took 4.2 GB and 38 s. Texts whose lengths share a power of
    two, [2^k, 2^(k+1)), make arrays under twice their characters wide and pass no position past their own longest, so
    memory and work follow the total of the characters (one array when that holds of all of them: ids, a request's
    candidates). Each hash is ``fnv1a64``'s of the same text, trailing NULs dropped as a numpy array drops them."""
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    if len(texts) * int(lengths.max(initial=0)) <= 2 * int(lengths.sum()):
        return fnv1a64(np.array(texts, dtype=str))
    classes = np.frexp(lengths)[1]  # the length's bit length: 0 for "", k + 1 for a length in [2^k, 2^(k+1))
    order = np.argsort(classes, kind="stable")
    hashes = np.empty(len(texts), dtype=np.uint64)
    for group in np.split(order, np.flatnonzero(np.diff(classes[order])) + 1):
        hashes[group] = fnv1a64(np.array([texts[i] for i in group.tolist()], dtype=str))
    return hashes


def bucketize(values: np.ndarray | list, buckets: int) -> np.ndarray:
    """Bucket index in [0, buckets) of each value, as int64."""
    return _buckets_of(fnv1a64(values), buckets)


def bucketize_texts(texts: list[str], buckets: int) -> np.ndarray:
    """``bucketize`` of Python strings of widely different lengths, by ``fnv1a64_texts``."""
    return _buckets_of(fnv1a64_texts(texts), buckets)


def _buckets_of(hashes: np.ndarray, buckets: int) -> np.ndarray:
    return (hashes % np.uint64(buckets)).astype(np.int64)


_MASK = (1 << 64) - 1


@lru_cache(maxsize=1 << 16)
def _fnv1a64_one(text: str) -> int:
    """The same hash for one string, in Python integers, memoised: ids repeat across requests."""
    value = int(FNV_OFFSET)
    for char in text:
        value = ((value ^ ord(char)) * int(FNV_PRIME)) & _MASK
    return value
