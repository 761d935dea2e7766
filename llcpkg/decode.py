"""Decoders from instance outputs to classes: MIPS, MHD, ED and Hamming-ball (LLC, Sec. 3.3).

Kusupati et al., "LLC: Accurate, Multi-purpose Learnt Low-dimensional Binary Codes",
NeurIPS 2021 (arXiv 2106.01487). With class codes B(C) (L, k) and an instance's real
output z = P F(x) (k,), whose code is g(x) = B(z):

* MIPS  - argmax_c <z, B(C)_c>                     (phase 1; real query)
* MHD   - argmin_c hamming(g(x), B(C)_c)           (linear scan of packed bits)
* ED    - c if g(x) == B(C)_c exactly, else "unassigned" (-1); a hash lookup, O(1) in L
* ball  - the nearest classes within Hamming radius r_max of g(x), found by hashing every
          code at radius 0, 1, ..., r_max (C(k, r) lookups at radius r), so its cost does
          not depend on L. ball(r_max=0) is ED, ball(r_max=k) is MHD.

Conventions (shared by the whole package)
-----------------------------------------
* A binary code is a {0, 1} array (bool or any numeric dtype), shape (n, k). Bit value 1
  means sign +1 and 0 means sign -1; sign(0) counts as +1 (``signs_to_bits``).
* Packed codes are uint8 rows of ceil(k/8) bytes, bits LSB-first
  (``np.packbits(bits, axis=1, bitorder="little")``), padding bits zero: the layout of
  faiss's binary indexes (whose d must be a multiple of 8; the zero padding adds no
  distance). Internally the bytes are viewed as little-endian unsigned words
  (uint8/16/32/64 for k <= 64, several uint64 words beyond), see :class:`PackedCodes`.
* Every function takes numpy arrays and returns numpy arrays; torch tensors are accepted
  wherever codes or scores are (converted with ``.detach().cpu().numpy()``).
* Real inputs (scores, MIPS queries and codebooks) must be finite: NaN or inf raises
  ValueError rather than decoding to an arbitrary class.

Tie policies (``tie=``; MHD and ball use the same rule, so ball(r_max=k) == MHD exactly)
-------------------------------------------------------------------------------------
* ``"lowest"`` - the lowest class index among the tied classes (the official code's rule).
* ``"random"`` - uniform among the tied classes: one draw ``u ~ U[0, 1)`` per query from
  ``np.random.default_rng(seed)`` (drawn for all n queries, tied or not), and the
  ``floor(u * n_tied)``-th tied class in increasing index order.
* ``"score"`` - the tied class maximising <scores, 2 * code - 1> (scores: the real pre-sign
  outputs or bit logits, (n, k)); classes still tied after that -> lowest index.

Backends: ``"numpy"`` (XOR + popcount over packed words, blocked so memory is bounded:
``llcpkg.hamming``'s compiled numba kernels when numba is installed, else ``np.bitwise_count``) and ``"faiss"`` (``faiss.IndexBinaryFlat`` knn). faiss's knn was checked to break
distance ties by lower id (tests/test_decode.py), but the faiss path does not rely on it:
it takes the K nearest, resolves ties with the rules above, and rescans with numpy any query
whose tie group could extend past the K-th neighbour - so both backends return identical
results, ties included. ``"auto"`` picks numpy: on the 2-core reference CPU it was as fast
or faster than IndexBinaryFlat at batch 1 and 1024 (see benchmarks/decode_scaling.py).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations
from math import comb
from typing import Callable

import numpy as np

from . import hamming

__all__ = [
    "signs_to_bits", "pack_bits", "unpack_bits", "PackedCodes", "hamming_distances",
    "mips_decode", "MHDResult", "mhd_decode", "CodeTable", "ed_decode", "BallResult",
    "ball_decode", "ball_lookups", "DECODERS", "decode", "TIE_POLICIES",
]

TIE_POLICIES = ("lowest", "random", "score")
_BLOCK = 1 << 20  # elements of a transient (queries x classes x words) block
_FIB = np.uint64(0x9E3779B97F4A7C15)  # 2^64 / golden ratio: Fibonacci hashing


# ------------------------------------------------------------------ input conversion
def _to_numpy(x) -> np.ndarray:
    """numpy view of ``x``; torch tensors via ``.detach().cpu().numpy()`` (no torch import)."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _as_bits(x, name: str = "bits") -> np.ndarray:
    """Validate a {0,1} code array and return it as contiguous uint8 (n, k); 1-D = one code."""
    a = _to_numpy(x)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2:
        raise ValueError(f"{name} must have shape (n, k); got shape {a.shape}")
    if a.shape[1] < 1:
        raise ValueError(f"{name}: code length k must be >= 1; got k = {a.shape[1]}")
    if a.dtype == bool:
        return np.ascontiguousarray(a, dtype=np.uint8)
    if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise ValueError(f"{name} must be numeric or bool; got dtype {a.dtype}")
    if a.size and not np.isin(a, (0, 1)).all():
        raise ValueError(f"{name} must hold only 0/1 bits (1 = sign +1); got other values, "
                         "e.g. +-1 codes or real outputs - convert them with signs_to_bits")
    return np.ascontiguousarray(a, dtype=np.uint8)


def _as_real(x, name: str) -> np.ndarray:
    a = _to_numpy(x)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or a.shape[1] < 1:
        raise ValueError(f"{name} must have shape (n, k) with k >= 1; got shape {a.shape}")
    if not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise ValueError(f"{name} must be numeric; got dtype {a.dtype}")
    if np.issubdtype(a.dtype, np.inexact) and not np.isfinite(a).all():
        bad = int((~np.isfinite(a)).any(axis=1).sum())
        raise ValueError(f"{name} holds NaN or inf values in {bad} of {len(a)} rows; decoders need finite "
                         "scores (a model that diverged, or bad inputs?)")
    return a


def _check_tie(tie: str, scores, n: int, k: int):
    if tie not in TIE_POLICIES:
        raise ValueError(f"tie must be one of {TIE_POLICIES}; got {tie!r}")
    if tie != "score":
        return None
    if scores is None:
        raise ValueError('tie="score" needs scores (n, k): the real pre-sign outputs')
    s = _as_real(scores, "scores")
    if s.shape != (n, k):
        raise ValueError(f"scores must have shape {(n, k)}; got {s.shape}")
    return s.astype(np.float64)


# ------------------------------------------------------------------ bits and packing
def signs_to_bits(x) -> np.ndarray:
    """Binary code of real values: (n, k) real (numpy or torch) -> (n, k) uint8, 1 where x >= 0.

    sign(0) counts as +1 (bit 1); NaN or inf raises ValueError. A 1-D input is one code.
    """
    a = _as_real(x, "x")
    return (a >= 0).astype(np.uint8)


def pack_bits(bits) -> np.ndarray:
    """(n, k) {0,1} -> (n, ceil(k/8)) uint8, bits LSB-first within each byte, padding zero."""
    return np.packbits(_as_bits(bits), axis=1, bitorder="little")


def unpack_bits(packed, k: int) -> np.ndarray:
    """Inverse of :func:`pack_bits`: (n, ceil(k/8)) uint8 -> (n, k) uint8."""
    p = np.asarray(packed)
    if p.ndim != 2 or p.dtype != np.uint8:
        raise ValueError(f"packed must be a 2-D uint8 array; got {p.dtype} {p.shape}")
    if k < 1 or p.shape[1] != -(-k // 8):
        raise ValueError(f"k = {k} needs {-(-k // 8)} bytes per row, packed has {p.shape[1]}")
    return np.unpackbits(p, axis=1, count=k, bitorder="little")


class PackedCodes:
    """Codes packed once into unsigned words: the fast form every decoder works on.

    ``words`` is (n, W): for k <= 64 one little-endian word of the smallest of
    uint8/16/32/64 that holds ceil(k/8) bytes (W = 1); beyond, W = ceil(k/64) uint64 words.
    Code bit j is bit (j mod w) of word j // w, w the word width in bits (LSB-first, as in
    :func:`pack_bits`). ``packed`` gives the faiss layout, uint8 (n, ceil(k/8)).
    """

    def __init__(self, words: np.ndarray, k: int):
        self.words = words
        self.k = int(k)
        self._faiss_index = None

    @classmethod
    def from_bits(cls, bits) -> "PackedCodes":
        """Pack a (n, k) {0,1} array."""
        b = _as_bits(bits)
        return cls.from_packed(np.packbits(b, axis=1, bitorder="little"), b.shape[1])

    @classmethod
    def from_packed(cls, packed: np.ndarray, k: int) -> "PackedCodes":
        """Wrap (n, ceil(k/8)) uint8 rows laid out as :func:`pack_bits` (padding bits zero)."""
        p = np.asarray(packed, dtype=np.uint8)
        nbytes = -(-k // 8)
        if k < 1 or p.ndim != 2 or p.shape[1] != nbytes:
            raise ValueError(f"packed must be (n, {nbytes}) uint8 for k = {k}; got {p.shape}")
        width = next((w for w in (1, 2, 4, 8) if w >= nbytes), 8)
        total = -(-nbytes // width) * width
        if total != nbytes:
            p = np.concatenate([p, np.zeros((len(p), total - nbytes), np.uint8)], axis=1)
        words = np.ascontiguousarray(p).view(np.dtype(f"<u{width}"))
        return cls(words.astype(words.dtype.newbyteorder("="), copy=False), k)

    @property
    def n(self) -> int:
        return self.words.shape[0]

    @property
    def nbytes(self) -> int:
        """Bytes per packed code, ceil(k/8) (the faiss code size)."""
        return -(-self.k // 8)

    @property
    def packed(self) -> np.ndarray:
        """uint8 (n, ceil(k/8)), the pack_bits / faiss layout."""
        return self.words.view(np.uint8)[:, : self.nbytes]

    def bits(self, rows=None) -> np.ndarray:
        """Unpacked (n, k) uint8 bits (optionally only ``rows``)."""
        p = self.packed if rows is None else self.packed[rows]
        return np.unpackbits(p, axis=1, count=self.k, bitorder="little")

    def faiss_index(self):
        """A ``faiss.IndexBinaryFlat`` over these codes, built on first use and cached."""
        if self._faiss_index is None:
            import faiss
            index = faiss.IndexBinaryFlat(8 * self.nbytes)
            index.add(np.ascontiguousarray(self.packed))
            self._faiss_index = index
        return self._faiss_index


def _as_packed(x, name: str) -> PackedCodes:
    if isinstance(x, PackedCodes):
        return x
    if isinstance(x, CodeTable):
        return x.codes
    return PackedCodes.from_bits(_as_bits(x, name))


def _check_k(q: PackedCodes, c: PackedCodes):
    if q.k != c.k:
        raise ValueError(f"queries have k = {q.k} bits but the codebook has k = {c.k}")


def hamming_distances(query_bits, code_bits, block: int | None = None, dtype=np.int32) -> np.ndarray:
    """All Hamming distances, (n, k) x (m, k) -> (n, m) ``dtype``, by XOR + popcount of packed words.

    Either argument may be a :class:`PackedCodes`. ``dtype`` int32 (default) or any integer
    type that holds k (uint8 for k < 256: a quarter of the memory). The scan goes through
    scratch blocks of about ``block`` word-XORs (default: L2-sized), never an (n, m, W)
    temporary; queries are taken up to 64 at a time.
    """
    q, c = _as_packed(query_bits, "query_bits"), _as_packed(code_bits, "code_bits")
    _check_k(q, c)
    if np.iinfo(dtype).max < q.k:
        raise ValueError(f"dtype {np.dtype(dtype)} cannot hold distances up to k = {q.k}")
    out = np.empty((q.n, c.n), dtype)
    for s in range(0, q.n, 64):
        _distance_rows(q.words[s:s + 64], c.words, out[s:s + 64], block or _XBLOCK)
    return out


# ------------------------------------------------------------------ MIPS
def mips_decode(query_real, codebook, block: int = _BLOCK) -> np.ndarray:
    """argmax_c <query_c, codebook_c>: (n, k) real x (L, k) real or +-1 -> pred (n,) int64.

    The codebook is used as given (pass B(C) = 2 * bits - 1 for binarised class codes). Ties:
    lowest class index (np.argmax). Computed over class blocks of about ``block`` logits
    per query block, in the inputs' common float dtype. Also the dense real-valued classifier
    (features (n, d) x weights (L, d)). No queries (0, k) -> an empty result; NaN or inf in
    either input -> ValueError.
    """
    q, c = _as_real(query_real, "query_real"), _as_real(codebook, "codebook")
    if q.shape[1] != c.shape[1]:
        raise ValueError(f"query_real has k = {q.shape[1]} but codebook has k = {c.shape[1]}")
    if len(c) < 1:
        raise ValueError("the codebook has no classes")
    if len(q) == 0:
        return np.zeros(0, np.int64)
    dtype = np.result_type(q.dtype, c.dtype, np.float32)
    q, c = q.astype(dtype, copy=False), c.astype(dtype, copy=False)
    n, L = len(q), len(c)
    pred = np.zeros(n, np.int64)
    best = np.full(n, -np.inf, dtype)
    qb = min(n, 256)  # a query block big enough for an efficient matmul
    lb = min(L, max(1, block // max(qb, 1)))
    for s in range(0, n, qb):
        for l0 in range(0, L, lb):
            logits = q[s:s + qb] @ c[l0:l0 + lb].T  # (qb, lb)
            i = logits.argmax(axis=1)
            v = logits[np.arange(len(i)), i]
            better = v > best[s:s + qb]  # strict: earlier (lower) blocks win ties
            best[s:s + qb] = np.where(better, v, best[s:s + qb])
            pred[s:s + qb] = np.where(better, i + l0, pred[s:s + qb])
    return pred


# ------------------------------------------------------------------ tie resolution
def _draws(tie: str, n: int, seed) -> np.ndarray | None:
    return np.random.default_rng(seed).random(n) if tie == "random" else None


def _resolve_ties(rows, classes, n, tie, u=None, scores=None, codes: PackedCodes | None = None):
    """Pick one class per row from candidate pairs (rows[i], classes[i]).

    Returns (pred (n,) int64, -1 for rows without candidates; n_tied (n,) int64).
    ``u`` (n,) draws for "random"; ``scores`` (n, k) and ``codes`` (the codebook) for "score".
    """
    rows = np.asarray(rows, np.int64)
    classes = np.asarray(classes, np.int64)
    pred = np.full(n, -1, np.int64)
    n_tied = np.bincount(rows, minlength=n).astype(np.int64)
    if rows.size == 0:
        return pred, n_tied
    if tie == "score":
        signs = codes.bits(classes).astype(np.float64) * 2.0 - 1.0
        s = (scores[rows] * signs).sum(axis=1)
        order = np.lexsort((classes, -s, rows))
    else:
        order = np.lexsort((classes, rows))
    r, c = rows[order], classes[order]
    starts = np.flatnonzero(np.r_[True, r[1:] != r[:-1]])
    first_rows = r[starts]
    if tie == "random":
        cnt = n_tied[first_rows]
        j = np.minimum((u[first_rows] * cnt).astype(np.int64), cnt - 1)
        pred[first_rows] = c[starts + j]
    else:
        pred[first_rows] = c[starts]
    return pred, n_tied


# ------------------------------------------------------------------ MHD
@dataclass
class MHDResult:
    """Minimum-Hamming-distance decoding of n queries."""

    pred: np.ndarray  # (n,) int64 predicted class
    distance: np.ndarray  # (n,) int64 Hamming distance to the predicted class (the minimum)
    n_tied: np.ndarray  # (n,) int64 classes at the minimum distance (1 = no tie)


_XBLOCK = 1 << 17  # word-XORs per inner step: the XOR buffer (1 MiB of uint64) stays in L2


_WORK = threading.local()


def _work(name: str, shape: tuple, dtype) -> np.ndarray:
    """A per-thread scratch array, reused across calls.

    Fresh multi-megabyte temporaries cost a page fault per 4 KiB on every call (measured:
    about as long as the whole MHD scan at L = 1e6), so the scan's buffers are kept.
    """
    size = int(np.prod(shape)) * np.dtype(dtype).itemsize
    buf = getattr(_WORK, name, None)
    if buf is None or buf.size < size:
        buf = np.empty(max(size, 1), np.uint8)
        setattr(_WORK, name, buf)
    return buf[:size].view(dtype).reshape(shape)


def _distance_rows(qw: np.ndarray, cw: np.ndarray, out: np.ndarray, xblock: int = _XBLOCK) -> np.ndarray:
    """Hamming distances of qw (q, W) to every row of cw (L, W) into out (q, L).

    The kernels are ``hamming.distance_rows`` (byte popcount + multiply-add where that is
    faster); the codebook is scanned in blocks of about ``xblock`` word-XORs.
    """
    return hamming.distance_rows(qw, cw, out, xblock * cw.dtype.itemsize)


def _mhd_numpy(q: PackedCodes, c: PackedCodes, tie, u, scores, block) -> MHDResult:
    """Exact scan: distance rows of a query block, then argmin (lowest), min and tie count
    (with the compiled kernels: :func:`_mhd_fused`)."""
    n, L = q.n, c.n
    dtype = np.uint8 if q.k < 256 else np.uint16
    qb = max(1, min(n, block // L))  # distance rows held at once: qb * L entries
    fused = hamming.nearest(q.words, c.words)
    if fused is not None:
        return _mhd_fused(q, c, fused, tie, u, scores, qb)
    out = _work("dist", (qb, L), dtype)
    pred = np.zeros(n, np.int64)
    dist = np.zeros(n, np.int64)
    n_tied = np.zeros(n, np.int64)
    pairs_r, pairs_c = [], []
    for s in range(0, n, qb):
        e = min(n, s + qb)
        d = _distance_rows(q.words[s:e], c.words, out[: e - s])
        i = d.argmin(axis=1)  # first minimum = lowest class index
        m = d[np.arange(e - s), i]
        at_min = np.equal(d, m[:, None], out=_work("at_min", d.shape, bool))
        if e - s <= 8:  # 1-D count_nonzero is ~5x faster than any axis reduction
            cnt = np.array([np.count_nonzero(r) for r in at_min], np.int64)
        else:
            cnt = at_min.view(np.uint8).sum(axis=1, dtype=np.uint32)
        pred[s:e], dist[s:e], n_tied[s:e] = i, m, cnt
        if tie != "lowest" and (cnt > 1).any():
            rows = np.flatnonzero(cnt > 1)
            rr, cc = np.nonzero(at_min[rows])
            pairs_r.append(rows[rr] + s)
            pairs_c.append(cc)
    if pairs_r:
        p, _ = _resolve_ties(np.concatenate(pairs_r), np.concatenate(pairs_c), n, tie, u, scores, c)
        pred = np.where(p >= 0, p, pred)
    return MHDResult(pred, dist, n_tied)


def _mhd_fused(q: PackedCodes, c: PackedCodes, fused, tie, u, scores, qb: int) -> MHDResult:
    """MHD from ``hamming.nearest``'s (arg, dist, count): "lowest" is the compiled argmin;
    other policies take the tied classes from distance rows of the tied queries only
    (``qb`` rows at a time) and resolve them as :func:`_mhd_numpy` does."""
    pred, dist, n_tied = fused
    tied = np.flatnonzero(n_tied > 1) if tie != "lowest" else np.zeros(0, np.int64)
    if tied.size:
        dtype = np.uint8 if q.k < 256 else np.uint16
        out = _work("dist", (min(qb, tied.size), c.n), dtype)
        pairs_r, pairs_c = [], []
        for s in range(0, tied.size, qb):
            rows = tied[s:s + qb]
            d = _distance_rows(q.words[rows], c.words, out[: len(rows)])
            rr, cc = np.nonzero(d == dist[rows][:, None])
            pairs_r.append(rows[rr])
            pairs_c.append(cc)
        p, _ = _resolve_ties(np.concatenate(pairs_r), np.concatenate(pairs_c), q.n, tie, u, scores, c)
        pred = np.where(p >= 0, p, pred)
    return MHDResult(pred, dist, n_tied)


def _mhd_faiss(q: PackedCodes, c: PackedCodes, tie, u, scores, block, k_nn: int = 16) -> MHDResult:
    """faiss IndexBinaryFlat knn (K nearest), ties resolved here; truncated tie groups rescanned."""
    n, L = q.n, c.n
    K = min(L, k_nn)
    D, I = c.faiss_index().search(np.ascontiguousarray(q.packed), K)
    D, I = D.astype(np.int64), I.astype(np.int64)
    tied = D == D[:, :1]
    rows, cols = np.nonzero(tied)
    pred, n_tied = _resolve_ties(rows, I[rows, cols], n, tie, u, scores, c)
    res = MHDResult(pred, D[:, 0].copy(), n_tied)
    redo = np.flatnonzero(tied[:, -1]) if K < L else np.zeros(0, np.int64)
    if redo.size:  # the tie group may extend beyond the K returned: exact numpy rescan
        sub = PackedCodes(q.words[redo], q.k)
        r = _mhd_numpy(sub, c, tie, None if u is None else u[redo],
                       None if scores is None else scores[redo], block)
        res.pred[redo], res.distance[redo], res.n_tied[redo] = r.pred, r.distance, r.n_tied
    return res


def mhd_decode(query_bits, codebook_bits, tie: str = "lowest", scores=None, seed=0,
               backend: str = "auto", block: int = _BLOCK) -> MHDResult:
    """Minimum Hamming distance decoding: (n, k) bits x (L, k) bits -> :class:`MHDResult`.

    Both code arguments may be {0,1} arrays or :class:`PackedCodes` (pack the codebook once
    when decoding many batches); a :class:`CodeTable` is accepted as the codebook.
    tie: "lowest" | "random" (seeded by ``seed``) | "score" (needs ``scores`` (n, k)) - see
    the module docstring; backends "numpy" and "faiss" give identical results ("auto" = numpy).
    Transient memory is bounded by ``block`` (n, L, word) elements per step.
    """
    q, c = _as_packed(query_bits, "query_bits"), _as_packed(codebook_bits, "codebook_bits")
    _check_k(q, c)
    if c.n < 1:
        raise ValueError("the codebook has no classes")
    s = _check_tie(tie, scores, q.n, q.k)
    u = _draws(tie, q.n, seed)
    if backend in ("auto", "numpy"):
        return _mhd_numpy(q, c, tie, u, s, block)
    if backend == "faiss":
        return _mhd_faiss(q, c, tie, u, s, block)
    raise ValueError(f"backend must be 'auto', 'numpy' or 'faiss'; got {backend!r}")


# ------------------------------------------------------------------ ED: hash table
def _hash(words: np.ndarray, shift: int) -> np.ndarray:
    """Fibonacci hash of (m, W) unsigned words -> slot indices (m,) in [0, 2^(64 - shift))."""
    h = np.zeros(len(words), np.uint64)
    for j in range(words.shape[1]):
        h ^= words[:, j].astype(np.uint64)
        h *= _FIB
        h ^= h >> np.uint64(29)
    return (h * _FIB) >> np.uint64(shift)


class CodeTable:
    """Open-addressing hash table (linear probing) from class code to class, built once.

    Keys are the packed code words (:class:`PackedCodes`), so lookups cost O(1) in the
    number of classes L and work for any k. Duplicate class codes: the LOWEST class index
    owns the key (``lookup`` returns it); ``n_distinct`` counts distinct codes and
    ``members(j)`` lists every class sharing distinct code j (used by ball decoding's
    tie policies). Load factor <= 1/4; a lookup probes until the key or an empty slot.
    """

    def __init__(self, codebook_bits):
        self.codes = _as_packed(codebook_bits, "codebook_bits")
        w = self.codes.words
        if self.codes.n < 1:
            raise ValueError("the codebook has no classes")
        if w.shape[1] == 1:
            uniq, first, inverse = np.unique(w[:, 0], return_index=True, return_inverse=True)
            uniq = uniq[:, None]
        else:
            uniq, first, inverse = np.unique(w, axis=0, return_index=True, return_inverse=True)
        inverse = inverse.reshape(-1)
        self.keys = np.ascontiguousarray(uniq)  # (D, W) distinct codes, sorted
        self.owner = first.astype(np.int64)  # (D,) lowest class index with that code
        order = np.argsort(inverse, kind="stable")  # classes grouped by code, ascending
        self._members = order.astype(np.int64)
        self._offsets = np.r_[0, np.cumsum(np.bincount(inverse, minlength=len(uniq)))]
        size_log2 = max(3, int(np.ceil(np.log2(4 * len(uniq)))))
        self._shift = 64 - size_log2
        self._mask = (1 << size_log2) - 1
        # one row per slot: the key's W words, then distinct id + 1 (0 = empty), as uint64,
        # so a probe touches one cache line
        self._slots = np.zeros((1 << size_log2, w.shape[1] + 1), np.uint64)
        self.max_probe = self._insert()

    @property
    def k(self) -> int:
        return self.codes.k

    @property
    def n_classes(self) -> int:
        return self.codes.n

    @property
    def n_distinct(self) -> int:
        """Number of distinct class codes (< n_classes when classes share a code)."""
        return len(self.keys)

    @property
    def nbytes(self) -> int:
        """Memory of the table (slots, keys, owners, member lists) excluding the codebook."""
        return sum(a.nbytes for a in (self._slots, self.keys, self.owner,
                                      self._members, self._offsets))

    def members(self, j) -> np.ndarray:
        """Class indices (ascending) whose code is distinct code j."""
        return self._members[self._offsets[j]:self._offsets[j + 1]]

    def group_size(self, ids: np.ndarray) -> np.ndarray:
        return self._offsets[ids + 1] - self._offsets[ids]

    def _insert(self) -> int:
        pending = np.arange(len(self.keys))
        pos = _hash(self.keys, self._shift).astype(np.int64)
        probes = 0
        while pending.size:
            p = pos[pending]
            free = self._slots[p, -1] == 0
            slots, first = np.unique(p[free], return_index=True)  # one winner per free slot
            win = pending[free][first]
            self._slots[slots, :-1] = self.keys[win]
            self._slots[slots, -1] = win.astype(np.uint64) + np.uint64(1)
            placed = np.zeros(len(pending), bool)
            placed[np.flatnonzero(free)[first]] = True
            pending = pending[~placed]
            pos[pending] = (pos[pending] + 1) & self._mask
            probes += bool(pending.size)
        return probes

    def lookup_ids(self, words: np.ndarray) -> np.ndarray:
        """Distinct-code id of each (m, W) packed key, -1 if absent. Vectorised probing."""
        m, W = words.shape
        out = np.full(m, -1, np.int64)
        pos = _hash(words, self._shift).astype(np.int64)
        active = np.arange(m)
        keys = words.astype(np.uint64, copy=False)
        for _ in range(self.max_probe + 1):
            row = self._slots[pos]  # (a, W + 1)
            full = row[:, W] != 0
            if W == 1:
                hit = full & (row[:, 0] == keys[active, 0])
            else:
                hit = full & (row[:, :W] == keys[active]).all(axis=1)
            out[active[hit]] = row[hit, W].astype(np.int64) - 1
            go = full & ~hit  # occupied by another key: probe the next slot
            if not go.any():
                break
            active, pos = active[go], (pos[go] + 1) & self._mask
        return out

    def lookup(self, query_bits) -> np.ndarray:
        """Exact-match decoding: (n, k) bits or PackedCodes -> pred (n,) int64, -1 = unassigned.

        A matched code returns its lowest class index (the key's owner).
        """
        q = _as_packed(query_bits, "query_bits")
        _check_k(q, self.codes)
        ids = self.lookup_ids(q.words)
        return np.where(ids >= 0, self.owner[np.maximum(ids, 0)], -1)


def ed_decode(query_bits, codebook_bits) -> np.ndarray:
    """Exact decoding: class whose code equals the query's, lowest index on duplicates, -1 if none.

    (n, k) bits x (L, k) bits (or a prebuilt :class:`CodeTable`) -> pred (n,) int64.
    """
    table = codebook_bits if isinstance(codebook_bits, CodeTable) else CodeTable(codebook_bits)
    return table.lookup(query_bits)


# ------------------------------------------------------------------ Hamming-ball decoding
@dataclass
class BallResult:
    """Hamming-ball decoding of n queries."""

    pred: np.ndarray  # (n,) int64 class, -1 if no class code within r_max
    radius: np.ndarray  # (n,) int64 radius of the first hit (= MHD distance), -1 if none
    lookups: np.ndarray  # (n,) int64 hash lookups performed: sum of C(k, r) over radii searched
    n_tied: np.ndarray  # (n,) int64 classes at that radius (0 if none)


@lru_cache(maxsize=64)
def _flip_masks(k: int, r: int) -> np.ndarray:
    """Packed words (C(k, r), W) of every k-bit mask with exactly r ones."""
    idx = np.array(list(combinations(range(k), r)), dtype=np.int64).reshape(comb(k, r), r)
    bits = np.zeros((len(idx), k), np.uint8)
    bits[np.arange(len(idx))[:, None], idx] = 1
    return PackedCodes.from_bits(bits).words


def ball_lookups(k: int, radius: int) -> int:
    """Lookups to search every radius 0..radius: sum_r C(k, r)."""
    return sum(comb(k, r) for r in range(radius + 1))


def ball_decode(query_bits, codebook, r_max: int, tie: str = "lowest", scores=None, seed=0,
                block: int = _BLOCK) -> BallResult:
    """Nearest class within Hamming radius r_max by hash lookups: cost independent of L.

    For r = 0, 1, ..., r_max, look up all C(k, r) codes at distance r from g(x) in the
    :class:`CodeTable` (built from ``codebook`` if bits are given) and stop at the first
    radius with a hit; ties among the classes hit there follow ``tie`` exactly as in
    :func:`mhd_decode`, so r_max = k reproduces MHD and r_max = 0 (tie "lowest") reproduces
    ED. Queries (n, k) bits or PackedCodes -> :class:`BallResult`; queries are processed in
    chunks of about ``block`` lookups.
    """
    table = codebook if isinstance(codebook, CodeTable) else CodeTable(codebook)
    q = _as_packed(query_bits, "query_bits")
    _check_k(q, table.codes)
    k, n = q.k, q.n
    if not 0 <= r_max <= k:
        raise ValueError(f"r_max must be in [0, k = {k}]; got {r_max}")
    s = _check_tie(tie, scores, n, k)
    u = _draws(tie, n, seed)
    pred = np.full(n, -1, np.int64)
    radius = np.full(n, -1, np.int64)
    lookups = np.zeros(n, np.int64)
    n_tied = np.zeros(n, np.int64)
    active = np.arange(n)
    for r in range(r_max + 1):
        if not active.size:
            break
        masks = _flip_masks(k, r)  # (M, W)
        lookups[active] += len(masks)
        step = max(1, block // len(masks))
        hit_any = np.zeros(len(active), bool)
        for s0 in range(0, len(active), step):
            a = active[s0:s0 + step]
            keys = (q.words[a, None, :] ^ masks[None, :, :]).reshape(-1, masks.shape[1])
            ids = table.lookup_ids(keys).reshape(len(a), len(masks))
            rr, cc = np.nonzero(ids >= 0)
            if not rr.size:
                continue
            did = ids[rr, cc]
            sizes = table.group_size(did)
            starts = np.repeat(table._offsets[did] - np.cumsum(sizes) + sizes, sizes)
            classes = table._members[starts + np.arange(sizes.sum())]
            rows = np.repeat(a[rr], sizes)
            p, t = _resolve_ties(rows, classes, n, tie, u, s, table.codes)
            hit = np.unique(a[rr])
            pred[hit], n_tied[hit], radius[hit] = p[hit], t[hit], r
            hit_any[s0 + np.unique(rr)] = True
        active = active[~hit_any]
    return BallResult(pred, radius, lookups, n_tied)


# ------------------------------------------------------------------ registry
def _bits_decoder(fn: Callable) -> Callable:
    def run(scores, codebook_bits, **kw):
        return fn(signs_to_bits(scores), codebook_bits, scores, **kw)
    return run


DECODERS: dict[str, Callable] = {
    # uniform call: decoder(scores (n, k) real outputs, codebook_bits (L, k)) -> pred (n,)
    "mips": lambda z, cb, **kw: mips_decode(z, _as_bits(cb, "codebook_bits") * 2.0 - 1.0, **kw),
    "mhd": _bits_decoder(lambda b, cb, z, **kw: mhd_decode(b, cb, **kw).pred),
    "mhd_score": _bits_decoder(lambda b, cb, z, **kw: mhd_decode(b, cb, "score", z, **kw).pred),
    "ed": _bits_decoder(lambda b, cb, z, **kw: ed_decode(b, cb)),
    "ball1": _bits_decoder(lambda b, cb, z, **kw: ball_decode(b, cb, 1, **kw).pred),
    "ball2": _bits_decoder(lambda b, cb, z, **kw: ball_decode(b, cb, 2, **kw).pred),
}


def decode(name: str, scores, codebook_bits, **kw) -> np.ndarray:
    """Run registered decoder ``name`` on real outputs (n, k) and class codes (L, k) -> (n,)."""
    if name not in DECODERS:
        raise ValueError(f"unknown decoder {name!r}; choose one of {sorted(DECODERS)}")
    return DECODERS[name](scores, codebook_bits, **kw)
