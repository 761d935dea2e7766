"""Hamming distances over packed code words, and the distinct codes of a database.

The kernels behind ``decode.hamming_distances`` / MHD and ``ranking``'s Hamming ranking.
Codes are the words of :class:`llcpkg.decode.PackedCodes`: (n, W) unsigned words, bits
LSB-first, padding bits zero, so the distance of two codes is the popcount of their XOR.

Kernels (:func:`distance_rows`), chosen by measurement on the reference CPU (AMD EPYC Zen 3,
AVX2, no AVX-512), where numpy's ``bitwise_count`` is vectorised for uint8 only (about 0.05
ns a byte) and runs one element at a time on wider words (about 0.45 ns a uint64):

* uint16 words (9 <= k <= 16): XOR, ``bitwise_count`` of the bytes (vectorised), and the
  two byte counts of each word summed by one multiply, ``(c * 0x0101) >> 8``: the top byte
  of the product is the sum of the word's bytes (each count <= 8, so no carry);
* uint8, uint32 and uint64 words: XOR, then ``bitwise_count`` of the words. For uint32 and
  uint64 the byte path's three extra passes cost more than they save (measured interleaved
  with a cosine scan, as in ``speed_bench``; uint64 multiply has no AVX2 instruction);
* several uint64 words (k > 64): XOR and count word by word, summed in the output dtype.

The database is scanned in blocks of about ``_BLOCK_BYTES`` of XORed words through reused
per-thread scratch buffers, so no call allocates (and page-faults) megabytes.

Compiled kernels (optional, numba): when numba imports, :func:`distance_rows`,
:func:`nearest` (MHD's argmin, minimum and tie count) and :func:`top_r_rows` (distance +
counting top-R) run fused loops from ``llcpkg._hamming_jit`` instead - LLVM's ``ctpop``
vectorised with AVX2 byte shuffles, codes in L1-sized blocks, no full-size temporaries.
Results are identical (integer arithmetic; tests run both paths). ``USE_COMPILED = False``
(or the environment variable ``LLC_NO_NUMBA=1``) forces the numpy path; :func:`nearest` and
:func:`top_r_rows` then return None and their callers run their numpy code.

:class:`DistinctCodes` holds a database's distinct codes and the items of each. Class codes
(LLC) are few - 117 distinct among 10,000 Fashion-MNIST test images - so ranking over the U
distinct codes with per-code item counts replaces an O(N) scan by an O(U) one and gives the
same tie blocks: every item of a code is at that code's distance.
"""
from __future__ import annotations

import os
import threading
import weakref
from dataclasses import dataclass
from functools import cached_property

import numpy as np

__all__ = ["distance_rows", "nearest", "top_r_rows", "compiled", "USE_COMPILED", "select_top_r", "DistinctCodes", "distinct_codes", "use_distinct", "distinct_top_r",
           "distinct_histograms", "DISTINCT_MAX_FRACTION", "TOP_R_QUERIES"]

_BLOCK_BYTES = 1 << 20  # bytes of XORed words per block (1 MiB: smaller blocks measured slower)
DISTINCT_MAX_FRACTION = 0.02  # distinct-code ranking when U <= 2% of N (measured at N = 60k: it wins at U/N = 0.008 for k = 16 and 64, loses at 0.05 for k = 16)
TOP_R_QUERIES = 8  # queries whose distance rows the direct top-R holds at once (measured at N = 60k: 8-16 beat 1 and 64)
_SCRATCH = threading.local()
USE_COMPILED = os.environ.get("LLC_NO_NUMBA", "0") in ("", "0")  # numba kernels when importable
_JIT: list = []  # the imported llcpkg._hamming_jit (or None without numba), once


def compiled():
    """The compiled kernels module ``llcpkg._hamming_jit``, or None (numba missing, or
    ``USE_COMPILED`` false). Imported on first use: numba's import costs about 0.3 s."""
    if not USE_COMPILED:
        return None
    if not _JIT:
        try:
            from . import _hamming_jit
        except ImportError:
            _hamming_jit = None
        _JIT.append(_hamming_jit)
    return _JIT[0]


def _kernel_words(w: np.ndarray) -> np.ndarray:
    """Words as the compiled kernels take them: (n,) for one word a code, else (n, W); contiguous."""
    return np.ascontiguousarray(w[:, 0] if w.shape[1] == 1 else w)


def scratch(name: str, size: int, dtype) -> np.ndarray:
    """A per-thread 1-D scratch array of ``size`` elements, reused across calls (no page faults)."""
    nbytes = int(size) * np.dtype(dtype).itemsize
    buf = getattr(_SCRATCH, name, None)
    if buf is None or buf.size < nbytes:
        buf = np.empty(max(nbytes, 1), np.uint8)
        setattr(_SCRATCH, name, buf)
    return buf[:nbytes].view(dtype)


def _count_words(x: np.ndarray, out: np.ndarray) -> None:
    """Popcount of each word of ``x`` (any shape) into ``out`` (same shape); clobbers uint16 x."""
    dt = x.dtype
    if dt.itemsize != 2:
        np.bitwise_count(x, out=out)
    else:
        b = x.view(np.uint8)
        np.bitwise_count(b, out=b)
        np.multiply(x, np.uint16(0x0101), out=x)
        np.right_shift(x, np.uint16(8), out=x)
        np.copyto(out, x, casting="unsafe")


def distance_rows(qw: np.ndarray, cw: np.ndarray, out: np.ndarray, block_bytes: int = _BLOCK_BYTES) -> np.ndarray:
    """Hamming distances of query words qw (q, W) to every code cw (N, W) into out (q, N).

    Both are PackedCodes words of one dtype; ``out`` is any integer dtype holding k (uint8
    for k < 256). The compiled kernel runs when there is one (and ``out`` is C-contiguous);
    the numpy path XORs through blocks of about ``block_bytes``. Returns ``out``.
    """
    nq, W = qw.shape
    N = len(cw)
    if nq == 0 or N == 0:
        return out
    jit = compiled()
    if jit is not None and out.flags.c_contiguous:
        jit.distance_rows(_kernel_words(qw), _kernel_words(cw), out)
        return out
    lb = max(1, min(N, block_bytes // (nq * W * cw.dtype.itemsize)))
    x = scratch("xor", nq * lb, cw.dtype)
    c = scratch("count", nq * lb, out.dtype) if W > 1 else None
    for l0 in range(0, N, lb):
        l1 = min(N, l0 + lb)
        xb = x[: nq * (l1 - l0)].reshape(nq, l1 - l0)
        ob = out[:, l0:l1]
        if W == 1:
            np.bitwise_xor(qw, cw[None, l0:l1, 0], out=xb)
            _count_words(xb, ob)
            continue
        cb = c[: nq * (l1 - l0)].reshape(nq, l1 - l0)
        for j in range(W):
            np.bitwise_xor(qw[:, j:j + 1], cw[None, l0:l1, j], out=xb)
            np.bitwise_count(xb, out=ob if j == 0 else cb)
            if j:
                np.add(ob, cb, out=ob)
    return out


def nearest(qw: np.ndarray, cw: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """MHD's scan, compiled: for queries qw (q, W) over codes cw (L, W), L >= 1, returns
    (arg, dist, count) (q,) int64 - the lowest index at the minimum distance, that distance
    and the codes at it - or None without the compiled kernels (run the numpy scan)."""
    jit = compiled()
    if jit is None:
        return None
    nq = len(qw)
    arg, dist, count = (np.empty(nq, np.int64) for _ in range(3))
    bits = 8 * qw.dtype.itemsize * qw.shape[1]  # >= k
    buf = scratch("nearest", jit._CODES_BLOCK, np.uint8 if bits < 256 else np.uint16)
    jit.nearest(_kernel_words(qw), _kernel_words(cw), bits + 1, buf, arg, dist, count)
    return arg, dist, count


def top_r_rows(qw: np.ndarray, cw: np.ndarray, R: int, n_levels: int) -> list[tuple[np.ndarray, int, int]] | None:
    """Top R of each query qw (q, W) over codes cw (N, W), 1 <= R < N, in one compiled pass
    per query: a list of (ids ascending, cut level t, n_before) exactly as
    :func:`select_top_r` of the query's distances, or None without the compiled kernels.
    The ids of all queries are views of one array."""
    jit = compiled()
    if jit is None:
        return None
    nq, N, n_masks = len(qw), len(cw), -(-len(cw) // 64)
    work = scratch("top_r", 9 * n_masks + 2 * N, np.int64)  # one look-up: flags, masks, candidates, levels
    flags, masks = work[:8 * n_masks].view(np.uint8), work[8 * n_masks:9 * n_masks].view(np.uint64)
    cand, cand_lev = work[9 * n_masks:9 * n_masks + N], work[9 * n_masks + N:]
    res = np.empty((3, nq + 1), np.int64)  # starts, cut, before
    ids = jit.top_r(_kernel_words(qw), _kernel_words(cw), R, n_levels, flags, masks, cand, cand_lev,
                    np.empty(max(1, nq * min(N, 2 * R)), np.int64), res[0], res[1], res[2])
    starts, cut, before = res.tolist()
    return [(ids[starts[i]:starts[i + 1]], cut[i], before[i]) for i in range(nq)]


# ------------------------------------------------------------------ distinct codes
@dataclass(frozen=True)
class DistinctCodes:
    """The distinct codes of a database of N items and which items hold each one.

    ``words`` (U, W) the distinct code words (ascending); ``inverse`` (N,) int64 the distinct
    code of each item; ``order`` (N,) int64 item ids grouped by code, ascending within a group;
    ``starts`` (U + 1,) int64: the items of code u are ``order[starts[u]:starts[u + 1]]``.
    """

    words: np.ndarray
    inverse: np.ndarray
    order: np.ndarray
    starts: np.ndarray

    @classmethod
    def of(cls, words: np.ndarray) -> "DistinctCodes":
        """Group the (N, W) code words of a database (np.unique: O(N log N), once)."""
        if words.shape[1] == 1:
            uniq, inverse = np.unique(words[:, 0], return_inverse=True)
            uniq = uniq[:, None]
        else:
            uniq, inverse = np.unique(words, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1).astype(np.int64)
        order = np.argsort(inverse, kind="stable").astype(np.int64)
        starts = np.zeros(len(uniq) + 1, np.int64)
        np.cumsum(np.bincount(inverse, minlength=len(uniq)), out=starts[1:])
        return cls(np.ascontiguousarray(uniq), inverse, order, starts)

    @property
    def n_distinct(self) -> int:
        return len(self.words)

    @property
    def counts(self) -> np.ndarray:
        """(U,) int64 items holding each distinct code."""
        return np.diff(self.starts)

    def class_counts(self, labels: np.ndarray, classes: np.ndarray) -> np.ndarray:
        """(U, C) int64: items of each distinct code in each class of ``classes`` (sorted, unique)."""
        col = np.searchsorted(classes, labels)
        flat = self.inverse * len(classes) + col
        return np.bincount(flat, minlength=self.n_distinct * len(classes)).reshape(self.n_distinct, len(classes))

    @cached_property
    def weights(self) -> np.ndarray:
        """(U,) float64 item counts: bincount weights (integer sums < 2^53 are exact)."""
        return self.counts.astype(np.float64)

    def items_of(self, codes: np.ndarray) -> np.ndarray:
        """Ascending ids of every item holding one of the distinct ``codes`` (m,) int64."""
        s, e = self.starts[codes], self.starts[codes + 1]
        if len(codes) <= 64:  # few groups: slices beat the index arithmetic
            o = self.order
            idx = np.concatenate([o[:0]] + [o[a:b] for a, b in zip(s.tolist(), e.tolist())])
        else:
            size = e - s
            idx = self.order[np.repeat(s - np.cumsum(size) + size, size) + np.arange(int(size.sum()))]
        return np.sort(idx, kind="stable")  # sorted runs, one per code: timsort merges them

    def level_counts(self, d: np.ndarray, n_levels: int, weights: np.ndarray | None = None) -> np.ndarray:
        """Items per distance level from distances to the distinct codes, d (q, U) ->
        (q, n_levels) int64; ``weights`` (q, U) or (U,) replace the per-code item counts."""
        q = d.shape[0]
        w = np.broadcast_to(self.counts if weights is None else weights, d.shape)
        flat = (np.arange(q, dtype=np.int64)[:, None] * n_levels + d).ravel()
        h = np.bincount(flat, weights=w.ravel().astype(np.float64), minlength=q * n_levels)
        return np.rint(h).astype(np.int64).reshape(q, n_levels)  # integer sums < 2^53: exact


_DISTINCT: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def distinct_codes(codes) -> DistinctCodes:
    """The :class:`DistinctCodes` of a PackedCodes database, built on first use and kept
    (weakly) with it, so repeated queries pay np.unique once."""
    dc = _DISTINCT.get(codes)
    if dc is None:
        dc = _DISTINCT[codes] = DistinctCodes.of(codes.words)
    return dc


def use_distinct(dc: DistinctCodes, n_items: int) -> bool:
    """Rank over distinct codes when they are few enough (U <= DISTINCT_MAX_FRACTION * N)."""
    return dc.n_distinct <= DISTINCT_MAX_FRACTION * n_items


def distinct_distances(qw: np.ndarray, dc: DistinctCodes, dtype) -> np.ndarray:
    """Distances (q, U) of query words (q, W) to the distinct codes, in ``dtype``."""
    return distance_rows(qw, dc.words, np.empty((len(qw), dc.n_distinct), dtype))


def distinct_top_r(qw: np.ndarray, dc: DistinctCodes, R: int, n_levels: int,
                   dtype) -> list[tuple[np.ndarray, int, int]]:
    """Top R of each query over distinct codes: a list of (ids ascending, cut level t, n_before).

    t = min{t : #(items at distance <= t) >= R}; ids are every item at distance <= t (the tie
    block at the cut whole), n_before the items strictly below t - as ``ranking.top_r``.
    Needs 1 <= R < N.
    """
    d = distinct_distances(qw, dc, dtype)
    out = []
    for row in d:
        cum = np.bincount(row, weights=dc.weights, minlength=n_levels).cumsum()
        t = int(np.searchsorted(cum, R))  # the first level whose cumulative count reaches R
        out.append((dc.items_of(np.flatnonzero(row <= t)), t, int(cum[t - 1]) if t else 0))
    return out


def distinct_histograms(qw: np.ndarray, dc: DistinctCodes, query_labels: np.ndarray, db_labels: np.ndarray,
                        n_levels: int, dtype) -> tuple[np.ndarray, np.ndarray]:
    """Tie blocks of each query from the distinct codes: n, r (q, n_levels) int64, items and
    items of the query's class at each distance (``ranking.rank_histograms``' output)."""
    if query_labels.shape != (len(qw),) or db_labels.shape != dc.inverse.shape:
        raise ValueError(f"labels must be ({len(qw)},) and {dc.inverse.shape}; got {query_labels.shape} "
                         f"and {db_labels.shape}")
    d = distinct_distances(qw, dc, dtype)
    classes = np.unique(db_labels)
    col = np.clip(np.searchsorted(classes, query_labels), 0, len(classes) - 1)
    known = classes[col] == query_labels
    per_class = dc.class_counts(db_labels, classes)  # (U, C)
    rel = per_class[:, col].T * known[:, None]  # (q, U): items of the query's class per code
    return dc.level_counts(d, n_levels), dc.level_counts(d, n_levels, rel)


# ------------------------------------------------------------------ top R by counting
def select_top_r(levels: np.ndarray, R: int, n_levels: int) -> tuple[np.ndarray, int, int]:
    """Top R of one query from its integer distance levels (N,) in [0, n_levels), no sort.

    Returns (ids ascending: every item at level <= t, the cut level t = min{t : #(levels <= t)
    >= R}, n_before = #(levels < t)); R >= N gives every item. One full pass in the common
    case: t is guessed from a strided sample of about 2,048 items, aimed at 1.5 R so that it
    rarely falls short; the items at or below the guess are extracted once, and the guess is
    lowered on those candidates alone (O(m), m the candidates) until #(levels < t) < R.
    """
    N = len(levels)
    if R >= N:
        return np.arange(N), int(levels.max(initial=0)), N
    stride = max(1, N // 2048)
    sample = levels[::stride]
    cum = np.bincount(sample, minlength=n_levels).cumsum()
    t = min(n_levels - 1, int(np.searchsorted(cum, -(-3 * R * len(sample) // (2 * N)))))
    buf = scratch("top_r_mask", N, bool)
    while True:
        ids = np.flatnonzero(np.less_equal(levels, t, out=buf))
        if len(ids) >= R:
            break
        t += 1
    lv = levels[ids]
    below = len(ids)
    while t > 0:
        keep = lv < t
        below = int(np.count_nonzero(keep))
        if below < R:
            break
        ids, lv, t = ids[keep], lv[keep], t - 1
    return ids, t, (below if t > 0 else 0)
