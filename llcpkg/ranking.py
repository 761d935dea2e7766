"""Ranking for retrieval: mAP@R, mAP, precision@R and precision-recall curves, by Hamming
distance on binary codes or cosine on real features (the experiment: :mod:`llcpkg.experiments.retrieval`).

Protocol of the deep-hashing papers and of LLC's retrieval experiment (Kusupati et al. 2021,
§4.3: ImageNet-100, mAP@1000): the database is the training split, the queries the test
split, an item is relevant to a query when it has the query's class. Binary codes are
ranked by Hamming distance (packed XOR + popcount, ``llcpkg.decode.hamming_distances``, into
uint8 levels); real-valued features by cosine similarity. A query's top R is selected by
counting (``top_r``: the cut level, then the items at or below it), linear in N, no sort.

Definitions (the HashNet / GreedyHash ``calculate_top_map`` convention)
----------------------------------------------------------------------
* AP@R of a query = the mean, over the relevant items among the top R, of the precision at
  each one's rank; 0 if the top R hold no relevant item. mAP@R = mean over *all* queries.
* mAP ("over all") = AP@N, N the database size: the classic average precision.
* precision@R = relevant items in the top R / R; recall@R = relevant in top R / all relevant.

Tie policy: ``expected`` (the only one; no order is ever taken from ``argsort``)
---------------------------------------------------------------------------------
Items at the same Hamming distance form a tie block. Every metric is the exact expectation
over a uniformly random order inside each tie block, in closed form:

* a block of n items holding r relevant, after N items holding R relevant, adds to the AP
  numerator E[Σ precision] = (r/n) · [(R + 1) S0 + (r - 1)/(n - 1) · S1], with
  S0 = Σ_{i=1..n} 1/(N + i) and S1 = Σ_{i=1..n} (i - 1)/(N + i) (harmonic numbers), since
  P(position i relevant) = r/n and P(positions i, j relevant) = r(r - 1)/(n(n - 1));
* when the cut-off R splits a block (t of its n positions kept), the number m of relevant
  items kept is hypergeometric and AP@R's denominator depends on it, so AP@R is summed
  exactly over m (positions kept are then relevant with probabilities m/t, m(m-1)/(t(t-1)));
* precision@R and recall@R are linear: the expected relevant count in the top R
  interpolates linearly inside the block that R splits.

The ranking is therefore computed from per-query histograms only — (n_d, r_d) for each
distance level d — which is what makes the 10k × 60k Fashion-MNIST evaluation take seconds.
Cosine similarities are put on the same footing by rounding 1 - cos to a grid of
``COSINE_LEVELS`` steps over [0, 2] (≈ 3e-5): items closer than that count as tied.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Iterator

import numpy as np
from scipy.special import gammaln

from . import decode, hamming

__all__ = ["expected_average_precision", "expected_hits", "rank_histograms", "hamming_levels", "TopR", "top_r",
           "hamming_top_r", "cosine_levels",
           "COSINE_LEVELS", "RetrievalResult", "evaluate_retrieval", "default_cutoffs"]

COSINE_LEVELS = 1 << 16  # grid steps over 1 - cos ∈ [0, 2]


# ----------------------------------------------------------------------------- closed forms
@lru_cache(maxsize=8)
def _harmonic(n: int) -> np.ndarray:
    """H[i] = Σ_{j=1..i} 1/j for i = 0..n (float64)."""
    return np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, n + 1, dtype=np.float64))])


def _sums(H: np.ndarray, start, length) -> tuple[np.ndarray, np.ndarray]:
    """S0 = Σ_{i=1..length} 1/(start + i), S1 = Σ_{i=1..length} (i - 1)/(start + i)."""
    s0 = H[start + length] - H[start]
    return s0, length - (start + 1) * s0


def _safe_div(a, b) -> np.ndarray:
    a, b = np.broadcast_arrays(np.asarray(a, np.float64), np.asarray(b, np.float64))
    return np.divide(a, b, out=np.zeros(a.shape), where=b != 0)


def _block_numerator(H, before_n, before_r, n, r) -> np.ndarray:
    """Expected Σ of precision over a block's relevant positions (random order in the block)."""
    s0, s1 = _sums(H, before_n, n)
    return _safe_div(r, n) * ((before_r + 1) * s0 + _safe_div(r - 1, n - 1) * s1)


def _check_hist(n, r) -> tuple[np.ndarray, np.ndarray]:
    n, r = np.atleast_2d(np.asarray(n, np.int64)), np.atleast_2d(np.asarray(r, np.int64))
    if n.shape != r.shape:
        raise ValueError(f"n and r must have the same shape (queries, levels); got {n.shape} and {r.shape}")
    if (r < 0).any() or (r > n).any():
        raise ValueError("need 0 <= r <= n in every block")
    return n, r


def expected_average_precision(n, r, R: int | None = None) -> np.ndarray:
    """Expected AP@R of each query under random order within tie blocks (exact).

    ``n``, ``r``: (q, B) items and relevant items in each tie block, blocks in rank order
    (best first; empty blocks allowed). ``R``: cut-off (None or >= N: AP over all, whose
    denominator is every relevant item). Returns (q,) float64; 0 where nothing relevant is
    retrieved.
    """
    n, r = _check_hist(n, r)
    q, B = n.shape
    cum_n, cum_r = n.cumsum(1), r.cumsum(1)
    H = _harmonic(int(cum_n[:, -1].max()) if q else 0)
    i, j = np.nonzero(r)  # only blocks holding relevant items add to the numerator
    nb, rb = n[i, j], r[i, j]
    contrib = _block_numerator(H, cum_n[i, j] - nb, cum_r[i, j] - rb, nb, rb)
    if R is None:
        return _safe_div(np.bincount(i, contrib, q), cum_r[:, -1])
    if R < 1:
        raise ValueError(f"R must be >= 1, got {R}")
    rows = np.arange(q)
    idx = (cum_n < R).sum(1)  # first block whose end reaches R (B if none)
    ic = np.minimum(idx, B - 1)
    cut = (idx < B) & (cum_n[rows, ic] > R)  # R falls strictly inside block ic
    last_full = np.where(cut, ic - 1, ic)
    A = np.bincount(i, contrib * (j <= last_full[i]), q)
    rel = np.where(last_full >= 0, cum_r[rows, np.maximum(last_full, 0)], 0)
    ap = _safe_div(A, rel)
    c = np.flatnonzero(cut)
    if c.size:  # exact sum over m ~ Hypergeometric(n_c, r_c, t) relevant items kept from the cut block
        nc, rc, Nb = n[c, ic[c]], r[c, ic[c]], cum_n[c, ic[c]] - n[c, ic[c]]
        Rb, t = rel[c], R - Nb
        lo, hi = np.maximum(0, t - (nc - rc)), np.minimum(rc, t)
        cnt = hi - lo + 1
        j = np.repeat(np.arange(c.size), cnt)
        m = lo[j] + (np.arange(cnt.sum()) - np.repeat(cnt.cumsum() - cnt, cnt))
        ncj, rcj, tj = nc[j], rc[j], t[j]
        logp = (gammaln(rcj + 1) - gammaln(m + 1) - gammaln(rcj - m + 1)
                + gammaln(ncj - rcj + 1) - gammaln(tj - m + 1) - gammaln(ncj - rcj - tj + m + 1)
                - gammaln(ncj + 1) + gammaln(tj + 1) + gammaln(ncj - tj + 1))
        s0, s1 = _sums(H, Nb[j], tj)
        Cm = (m / tj) * ((Rb[j] + 1) * s0 + _safe_div(m - 1, tj - 1) * s1)
        term = np.exp(logp) * _safe_div(A[c][j] + Cm, Rb[j] + m)
        ap[c] = np.bincount(j, weights=term, minlength=c.size)
    return ap


def expected_hits(n, r, cutoffs) -> np.ndarray:
    """Expected relevant items in the top R for each cut-off R: (q, B) blocks → (q, len(cutoffs)).

    Linear interpolation of the cumulative relevant count inside the block that R splits
    (exact under random order within ties); R beyond the database gives all relevant items.
    """
    n, r = _check_hist(n, r)
    cut = np.asarray(cutoffs, np.float64)
    q = n.shape[0]
    xp = np.concatenate([np.zeros((q, 1), np.int64), n.cumsum(1)], axis=1).astype(np.float64)
    fp = np.concatenate([np.zeros((q, 1), np.int64), r.cumsum(1)], axis=1).astype(np.float64)
    span = xp[:, -1].max() + cut.max() + 1.0  # rows laid end to end: one monotone interpolation
    off = span * np.arange(q)[:, None]
    x = np.minimum(cut[None, :], xp[:, -1:]) + off
    return np.interp(x.ravel(), (xp + off).ravel(), fp.ravel()).reshape(q, cut.size)


# ----------------------------------------------------------------------------- histograms
def rank_histograms(levels: np.ndarray, query_labels, db_labels, n_levels: int) -> tuple[np.ndarray, np.ndarray]:
    """Tie blocks from integer distance levels: (q, N) levels in [0, n_levels) (smaller =
    better) → n, r (q, n_levels): items and same-class items at each level."""
    levels = np.asarray(levels)
    q, N = levels.shape
    yq, yd = np.asarray(query_labels), np.asarray(db_labels)
    if yq.shape != (q,) or yd.shape != (N,):
        raise ValueError(f"labels must be ({q},) and ({N},); got {yq.shape} and {yd.shape}")
    flat = (np.arange(q, dtype=np.int64)[:, None] * n_levels + levels).ravel()
    n = np.bincount(flat, minlength=q * n_levels).reshape(q, n_levels)
    rel = (yq[:, None] == yd[None, :]).ravel()
    r = np.bincount(flat[rel], minlength=q * n_levels).reshape(q, n_levels)
    return n, r


def hamming_levels(query_bits, db_codes) -> tuple[np.ndarray, int]:
    """Hamming distances (q, N) of {0,1} codes (``db_codes`` may be PackedCodes) and k + 1 levels.

    Distances are uint8 for k < 256 (uint16 beyond): the same levels in a quarter of the memory.
    """
    k = db_codes.k if isinstance(db_codes, decode.PackedCodes) else np.asarray(db_codes).shape[1]
    return decode.hamming_distances(query_bits, db_codes, dtype=np.uint8 if k < 256 else np.uint16), k + 1


@dataclass
class TopR:
    """The top R of one query's ranking under the ``expected`` tie policy.

    ``ids`` (m,) ascending: every item at level <= ``level``, m >= R (m = N when R >= N).
    The ``n_before`` items strictly below ``level`` are in the top R for sure; the other
    R - n_before are a uniformly random subset of the tie block at ``level``.
    """

    ids: np.ndarray
    level: int
    n_before: int


def top_r(levels: np.ndarray, R: int, n_levels: int) -> TopR:
    """Top-R selection of one query by counting, linear in N and without a sort.

    ``levels`` (N,) integer distance levels in [0, n_levels) (smaller = better). The cut level
    t = min{t : #(levels <= t) >= R}; ``hamming.select_top_r`` finds it in one full pass in
    the common case (a sampled guess, then refined on the extracted candidates).
    """
    return TopR(*hamming.select_top_r(levels, R, n_levels))


def hamming_top_r(query_bits, db_codes: decode.PackedCodes, R: int) -> list[TopR]:
    """Hamming ranking of n queries against a packed database: one :class:`TopR` per query.

    ``query_bits`` (n, k) bits or PackedCodes. When the database holds few distinct codes
    (``hamming.use_distinct``), the ranking runs over them with per-code item counts
    (``hamming.distinct_top_r``; the distinct codes of a PackedCodes database are found once and
    kept with it, so treat its words as read-only); otherwise
    XOR + popcount into uint8 levels, then :func:`top_r` per query (``hamming.top_r_rows``'
    compiled loop when numba is there). All give the same TopR.
    """
    q, db = decode._as_packed(query_bits, "query_bits"), decode._as_packed(db_codes, "db_codes")
    decode._check_k(q, db)
    dtype, n_levels = (np.uint8 if q.k < 256 else np.uint16), q.k + 1
    dc = hamming.distinct_codes(db) if db is db_codes else None  # kept with a PackedCodes database only
    if dc is not None and R < db.n and hamming.use_distinct(dc, db.n):
        return [TopR(ids, t, nb) for ids, t, nb in hamming.distinct_top_r(q.words, dc, R, n_levels, dtype)]
    fused = hamming.top_r_rows(q.words, db.words, R, n_levels) if R < db.n else None
    if fused is not None:  # compiled: distance + counting top-R in one pass per query
        return [TopR(ids, t, nb) for ids, t, nb in fused]
    out, step = [], hamming.TOP_R_QUERIES
    levels = np.empty((min(step, q.n), db.n), dtype)
    for s in range(0, q.n, step):
        rows = hamming.distance_rows(q.words[s:s + step], db.words, levels[: min(step, q.n - s)])
        out += [top_r(row, R, n_levels) for row in rows]
    return out


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def cosine_levels(query, db, levels: int = COSINE_LEVELS) -> tuple[np.ndarray, int]:
    """1 - cos of (q, d) × (N, d) real vectors rounded to ``levels`` steps over [0, 2]:
    (q, N) int levels and the level count ``levels + 1``."""
    cos = _unit(query) @ _unit(db).T
    return np.rint((1.0 - np.clip(cos, -1.0, 1.0)) * (levels / 2.0)).astype(np.int64), levels + 1


# ----------------------------------------------------------------------------- evaluator
def default_cutoffs(n_db: int, R: int = 1000, points: int = 40) -> np.ndarray:
    """Cut-offs for precision@R and PR curves: a geometric grid 1 … N plus R."""
    grid = np.geomspace(1, n_db, points).round().astype(np.int64)
    return np.unique(np.r_[grid, min(R, n_db)])


@dataclass
class RetrievalResult:
    """Retrieval quality of one code (or feature) set: per-query APs and mean curves."""

    R: int  # the cut-off of mAP@R
    ap_at_R: np.ndarray  # (q,) expected AP@R of each query
    ap: np.ndarray  # (q,) expected AP over the whole database
    cutoffs: np.ndarray  # (c,) numbers of items retrieved
    precision: np.ndarray  # (c,) mean expected precision at each cut-off
    recall: np.ndarray  # (c,) mean expected recall at each cut-off

    @property
    def map_at_R(self) -> float:
        return float(self.ap_at_R.mean())

    @property
    def map(self) -> float:
        return float(self.ap.mean())

    def precision_at(self, R: int) -> float:
        return float(self.precision[np.flatnonzero(self.cutoffs == R)[0]])


def _code_bits(x) -> np.ndarray:
    """{0,1} codes as given, or the signs of real scores."""
    a = decode._to_numpy(x)
    return decode.signs_to_bits(a) if a.dtype.kind == "f" else a


def _blocks(query, db, metric: str, block: int | None) -> Iterator[tuple[slice, np.ndarray, int]]:
    """Yield (query rows, integer levels (rows, N), level count) block by block."""
    if metric == "hamming":
        q, packed = _code_bits(query), decode.PackedCodes.from_bits(_code_bits(db))
        step = block or 512
        for s in range(0, len(q), step):
            yield slice(s, s + step), *hamming_levels(q[s:s + step], packed)
    elif metric == "cosine":
        q, step = np.asarray(query), block or 64
        for s in range(0, len(q), step):
            yield slice(s, s + step), *cosine_levels(q[s:s + step], db)
    else:
        raise ValueError(f"metric must be 'hamming' or 'cosine'; got {metric!r}")


def evaluate_retrieval(query, db, query_labels, db_labels, metric: str = "hamming", R: int = 1000,
                       cutoffs=None, block: int | None = None) -> RetrievalResult:
    """Rank the database for every query and measure it (tie policy: ``expected``, see module).

    ``metric="hamming"``: ``query`` (q, k) and ``db`` (N, k) are {0,1} codes, or real scores
    whose signs are taken (``decode.signs_to_bits``). ``metric="cosine"``: real (q, d), (N, d).
    Processed in query blocks of ``block`` rows, so memory stays bounded. Hamming ranking runs
    over the database's distinct codes when they are few (``hamming.use_distinct``): the same
    tie blocks, so the same results.
    """
    yq, yd = np.asarray(query_labels), np.asarray(db_labels)
    n_db = len(yd)
    cut = default_cutoffs(n_db, R) if cutoffs is None else np.asarray(cutoffs, np.int64)
    ap_R, ap, hits = np.empty(len(yq)), np.empty(len(yq)), np.empty((len(yq), cut.size))
    total = np.empty(len(yq))
    blocks = ((rows, *rank_histograms(levels, yq[rows], yd, L)) for rows, levels, L in _blocks(query, db, metric, block))
    if metric == "hamming":  # few distinct database codes: the same histograms from per-code counts
        packed = decode.PackedCodes.from_bits(_code_bits(db))
        dc = hamming.DistinctCodes.of(packed.words)
        if hamming.use_distinct(dc, packed.n):
            qp, step = decode.PackedCodes.from_bits(_code_bits(query)), block or 512
            decode._check_k(qp, packed)
            dtype = np.uint8 if packed.k < 256 else np.uint16
            blocks = ((slice(s, s + step), *hamming.distinct_histograms(qp.words[s:s + step], dc, yq[s:s + step], yd,
                                                                         packed.k + 1, dtype))
                      for s in range(0, qp.n, step))
    for rows, n, r in blocks:
        ap_R[rows] = expected_average_precision(n, r, R)
        ap[rows] = expected_average_precision(n, r, None)
        hits[rows] = expected_hits(n, r, cut)
        total[rows] = r.sum(1)
    precision = (hits / np.minimum(cut, n_db)[None, :]).mean(0)
    recall = (hits / np.maximum(total, 1)[:, None]).mean(0)
    return RetrievalResult(int(R), ap_R, ap, cut, precision, recall)
