"""Class codebooks that are *not* learnt by LLC phase 1: the paper's codebook baselines.

Kusupati et al., "LLC" (NeurIPS 2021, arXiv 2106.01487) compare LLC's learnt class codes
with fixed codebooks, each followed by the same phase 2 (k binary problems, ECOC). Every
builder here returns a codebook (L, k) of float32 in {-1, +1} (sign +1 = bit 1, as in
:mod:`llcpkg.decode`), ready to be frozen for phase 2 or to warm-start phase 1
(``train_phase1(..., codebook=...)``). Use :func:`build_codebook` (name → builder registry
``CODEBOOKS``) or call a builder directly.

Constructions (exact; sign(0) = +1 everywhere)
---------------------------------------------
* ``random``   - B(G), G (L, k) i.i.d. N(0, 1) from ``np.random.default_rng(seed)``: the
  distribution of phase 1's random initial codebook. Codes may repeat when k is small.
* ``svd``      - from a trained real classifier's weights W (L, d). Centre over classes,
  W̃ = W − 1 w̄ᵀ (softmax is invariant to adding one vector to every row, so the centred W
  is the canonical one), take W̃ = U S Vᵀ and the class embedding E = U S (L, r), i.e.
  each class's coordinates on the principal directions of the class weights,
  r = rank ≤ min(L − 1, d). Bit j < r is sign(E[:, j]) (component j by decreasing singular
  value); bits j ≥ r, where SVD has nothing left to say, are sign(E G) with G (r, k − r)
  i.i.d. N(0, 1) from ``seed`` (a SimHash of the same embedding, so they still follow
  class similarity). Each column's sign is fixed so that its largest-|·| entry is positive
  (SVD is defined only up to a sign per component; a flip of a whole bit changes no
  Hamming distance).
* ``cca``      - from features X (N, d) and labels y (N,). CCA between X and the one-hot
  labels Y (N, L), both centred, ridge ``reg`` (relative to the mean variance) on both
  covariances: T = Cxx^{-1/2} Cxy Cyy^{-1/2} = U S Vᵀ; the label-side canonical weights
  A = Cyy^{-1/2} V give class c the canonical variate E[c] = (e_c − p)ᵀ A, p the class
  frequencies. Only the first r = min(L − 1, d) components carry correlation; bits as for
  ``svd`` (sign of E's columns by decreasing canonical correlation, SimHash for j ≥ r,
  same sign convention). With one-hot labels CCA is Fisher's LDA, so E is the class means
  in the discriminant coordinates.
* ``hadamard`` - a Hadamard (first-order Reed-Muller) code, where one exists: k a power of
  two and L ≤ 2k − 2. Rows of the Sylvester matrix H_k (H_1 = [1], H_2n = [[H, H], [H, −H]])
  without the all-ones row 0: first rows 1 … k−1 of H_k, then rows 1 … k−1 of −H_k.
  Any two codes are at Hamming distance exactly k/2, except a row and its negation
  (distance k), so the minimum distance is k/2 (the first-order Reed-Muller code, which
  meets the Plotkin bound). Bit 0 is +1 on the rows of H_k and −1 on those of −H_k; bits
  1 … k−1 are split k/2 − 1 : k/2 over rows 1 … k−1 of H_k. Raises ``ValueError`` when no such code exists.
* ``lexicode`` - the greedy lexicographic code of length k ≤ 20 (Conway & Sloane 1986):
  scan the words 0, 1, …, 2^k − 1 in order and keep each word at Hamming distance ≥ δ from
  all kept ones; δ is the largest distance for which this keeps at least L words, and the
  first L kept words are the codes (class c ↦ c-th kept word, bit j = bit j of the
  integer, LSB first). Lexicodes are linear and often optimal; the error-correcting
  baseline where no Hadamard code exists (e.g. L = 242, k = 16).

Helpers: :func:`to_bits` ({−1, +1} → {0, 1}) and :func:`codebook_stats` (distinct codes,
minimum and mean pairwise Hamming distance).
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from .decode import hamming_distances, signs_to_bits

__all__ = ["CODEBOOKS", "build_codebook", "list_codebooks", "random_codebook", "svd_codebook",
           "cca_codebook", "hadamard_codebook", "hadamard_exists", "lexicode_codebook", "sylvester_hadamard",
           "to_bits", "codebook_stats", "default_bits", "code_length"]


# ----------------------------------------------------------------------------- helpers
# ----------------------------------------------------------------------------- code-length rules
def default_bits(num_classes: int) -> dict[str, int]:
    """k at the paper's ratio, 2·ceil(log2 L) (20 bits for ImageNet's 1000 classes, 8 for 10,
    16 for 242), and the minimum that can give every class its own code, ceil(log2 L)."""
    lo = math.ceil(math.log2(num_classes))
    return {"paper ratio": 2 * lo, "minimum": lo}


def code_length(num_classes: int, bits: int | None = None) -> int:
    """``bits`` if given, else the paper's ratio 2·ceil(log2 L) (:func:`default_bits`)."""
    return int(bits) if bits else default_bits(num_classes)["paper ratio"]


def to_bits(codes) -> np.ndarray:
    """{−1, +1} codes (L, k) → {0, 1} uint8 bits (L, k), 1 where the code is +1 (≥ 0)."""
    return signs_to_bits(np.asarray(codes, dtype=np.float32))


def _signs(x: np.ndarray) -> np.ndarray:
    """Elementwise sign into {−1, +1} float32 with sign(0) = +1."""
    return np.where(np.asarray(x) >= 0, 1.0, -1.0).astype(np.float32)


def _fix_column_signs(e: np.ndarray) -> np.ndarray:
    """Flip each column so that its entry of largest magnitude is positive (first such on ties)."""
    idx = np.abs(e).argmax(axis=0)
    s = np.sign(e[idx, np.arange(e.shape[1])])
    return e * np.where(s == 0, 1.0, s)


def _embedding_codes(e: np.ndarray, bits: int, seed: int) -> np.ndarray:
    """Codes (L, bits) from a class embedding e (L, r), columns by decreasing importance:
    sign of the first min(bits, r) columns, then sign(e G) with G (r, bits − r) N(0, 1)."""
    e = _fix_column_signs(np.asarray(e, dtype=np.float64))
    r = e.shape[1]
    if bits <= r:
        return _signs(e[:, :bits])
    g = np.random.default_rng(seed).standard_normal((r, bits - r))
    return _signs(np.concatenate([e, e @ g], axis=1))


def _check_sizes(num_classes: int, bits: int) -> None:
    if num_classes < 2:
        raise ValueError(f"need at least 2 classes, got {num_classes}")
    if bits < 1:
        raise ValueError(f"bits must be >= 1, got {bits}")


def codebook_stats(codes) -> dict[str, float]:
    """Summary of a codebook (L, k) in {−1, +1} (or {0, 1} bits).

    ``distinct`` (number of distinct codes), ``min distance`` and ``mean distance`` (over the
    L(L − 1)/2 pairs of classes, Hamming), ``bit balance`` (mean over bits of
    |share of +1 − 0.5|; 0 = every bit splits the classes in half).
    """
    a = np.asarray(codes)
    bits = to_bits(a) if a.min() < 0 else a.astype(np.uint8)
    d = hamming_distances(bits, bits)
    iu = np.triu_indices(len(bits), k=1)
    return {"distinct": int(len(np.unique(bits, axis=0))), "min distance": int(d[iu].min()),
            "mean distance": float(d[iu].mean()), "bit balance": float(np.abs(bits.mean(0) - 0.5).mean())}


# ----------------------------------------------------------------------------- builders
def random_codebook(num_classes: int, bits: int, *, seed: int = 0, **_) -> np.ndarray:
    """B(G) with G (L, k) i.i.d. standard normal from ``np.random.default_rng(seed)``."""
    _check_sizes(num_classes, bits)
    return _signs(np.random.default_rng(seed).standard_normal((num_classes, bits)))


def svd_codebook(num_classes: int, bits: int, *, weights=None, seed: int = 0, **_) -> np.ndarray:
    """Signs of the class-centred classifier weights' principal coordinates U S (see module doc).

    ``weights``: (L, d) real classifier weights (e.g. ``baseline.model.head.fc.weight``).
    """
    _check_sizes(num_classes, bits)
    if weights is None:
        raise ValueError("the svd codebook needs weights=(L, d), a trained real classifier's weights")
    w = np.asarray(weights.detach().cpu() if hasattr(weights, "detach") else weights, dtype=np.float64)
    if w.ndim != 2 or w.shape[0] != num_classes:
        raise ValueError(f"weights must be ({num_classes}, d); got {w.shape}")
    w = w - w.mean(axis=0, keepdims=True)
    u, s, _ = np.linalg.svd(w, full_matrices=False)
    r = int((s > s[0] * 1e-10).sum()) if s.size and s[0] > 0 else 0
    return _embedding_codes(u[:, :r] * s[:r], bits, seed)


def _inv_sqrt(c: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh(c)
    return (vecs / np.sqrt(vals)) @ vecs.T


def cca_codebook(num_classes: int, bits: int, *, features=None, labels=None, seed: int = 0,
                 reg: float = 1e-3, **_) -> np.ndarray:
    """Signs of the classes' label-side canonical variates in CCA(features, one-hot labels).

    ``features`` (N, d) real, ``labels`` (N,) ints in [0, L); ``reg`` ridge, relative to the
    mean variance of each side (see module doc).
    """
    _check_sizes(num_classes, bits)
    if features is None or labels is None:
        raise ValueError("the cca codebook needs features=(N, d) and labels=(N,)")
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    if x.ndim != 2 or y.shape != (len(x),):
        raise ValueError(f"features must be (N, d) and labels (N,); got {x.shape} and {y.shape}")
    if y.min() < 0 or y.max() >= num_classes:
        raise ValueError(f"labels must lie in [0, {num_classes})")
    n = len(x)
    onehot = np.eye(num_classes)[y]
    p = onehot.mean(axis=0)
    xc, yc = x - x.mean(axis=0), onehot - p
    cxx, cyy, cxy = xc.T @ xc / n, yc.T @ yc / n, xc.T @ yc / n
    cxx += reg * np.trace(cxx) / len(cxx) * np.eye(len(cxx))
    cyy += reg * np.trace(cyy) / len(cyy) * np.eye(len(cyy))
    _, s, vt = np.linalg.svd(_inv_sqrt(cxx) @ cxy @ _inv_sqrt(cyy))
    r = min(num_classes - 1, x.shape[1], len(s))
    a = _inv_sqrt(cyy) @ vt.T[:, :r]  # (L, r) label-side canonical weights
    return _embedding_codes((np.eye(num_classes) - p) @ a, bits, seed)


def sylvester_hadamard(n: int) -> np.ndarray:
    """The Sylvester Hadamard matrix H_n (n a power of two), int8 in {−1, +1}: H Hᵀ = n I."""
    if n < 1 or n & (n - 1):
        raise ValueError(f"n must be a power of two, got {n}")
    h = np.ones((1, 1), np.int8)
    while len(h) < n:
        h = np.block([[h, h], [h, -h]])
    return h


def hadamard_exists(num_classes: int, bits: int) -> bool:
    """Whether :func:`hadamard_codebook` has a code: k a power of two ≥ 2 and L ≤ 2k − 2."""
    return bits >= 2 and not bits & (bits - 1) and num_classes <= 2 * bits - 2


def hadamard_codebook(num_classes: int, bits: int, **_) -> np.ndarray:
    """Rows 1 … k−1 of H_k, then of −H_k, first L of them (see module doc); distance ≥ k/2."""
    _check_sizes(num_classes, bits)
    if not hadamard_exists(num_classes, bits):
        raise ValueError(f"no Hadamard code for L = {num_classes}, k = {bits}: needs k a power of two "
                         f"and L <= 2k - 2")
    h = sylvester_hadamard(bits)[1:]
    return np.concatenate([h, -h])[:num_classes].astype(np.float32)


def _lexicode(bits: int, distance: int, limit: int) -> np.ndarray:
    """First ``limit`` words (ints) of the length-``bits`` lexicode of minimum distance ``distance``."""
    words = np.arange(1 << bits, dtype=np.int64)
    weight = np.bitwise_count(words.astype(np.uint32))
    ball = words[weight < distance]  # offsets within radius distance − 1
    blocked = np.zeros(1 << bits, bool)
    kept: list[int] = []
    w, chunk = 0, 1024
    while len(kept) < limit and w < len(blocked):
        free = np.flatnonzero(~blocked[w:w + chunk])
        if not free.size:  # nothing free in this chunk: scan the next, larger one
            w, chunk = w + chunk, chunk * 2
            continue
        w += int(free[0])
        kept.append(w)
        blocked[w ^ ball] = True
    return np.array(kept, dtype=np.int64)


def lexicode_codebook(num_classes: int, bits: int, **_) -> np.ndarray:
    """The greedy lexicode with the largest minimum distance that has ≥ L words (k ≤ 20)."""
    _check_sizes(num_classes, bits)
    if bits > 20:
        raise ValueError(f"lexicode is built by exhaustive search over 2^k words; k <= 20, got {bits}")
    if num_classes > 1 << bits:
        raise ValueError(f"{num_classes} classes need at least {math.ceil(math.log2(num_classes))} bits")
    best = _lexicode(bits, 1, num_classes)
    for dist in range(2, bits + 1):
        words = _lexicode(bits, dist, num_classes)
        if len(words) < num_classes:
            break
        best = words
    b = (best[:, None] >> np.arange(bits)) & 1  # (L, k), bit j = bit j of the word
    return np.where(b == 1, 1.0, -1.0).astype(np.float32)


CODEBOOKS: dict[str, Callable[..., np.ndarray]] = {
    "random": random_codebook,
    "svd": svd_codebook,
    "cca": cca_codebook,
    "hadamard": hadamard_codebook,
    "lexicode": lexicode_codebook,
}


def list_codebooks() -> list[str]:
    """Names accepted by :func:`build_codebook`."""
    return sorted(CODEBOOKS)


def build_codebook(name: str, num_classes: int, bits: int, *, seed: int = 0, weights=None, features=None,
                   labels=None, **kw) -> np.ndarray:
    """Build codebook ``name`` (see ``CODEBOOKS``): float32 (L, k) in {−1, +1}.

    ``seed``: random codes and the SimHash padding of svd/cca; ``weights`` (L, d): svd;
    ``features`` (N, d) and ``labels`` (N,): cca. Builders ignore what they do not use.
    """
    if name not in CODEBOOKS:
        raise ValueError(f"unknown codebook {name!r}; choose one of {list_codebooks()}")
    return CODEBOOKS[name](num_classes, bits, seed=seed, weights=weights, features=features, labels=labels, **kw)
