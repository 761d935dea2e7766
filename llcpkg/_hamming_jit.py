"""Compiled (numba) Hamming kernels behind :mod:`llcpkg.hamming`; importing this needs numba.

Each kernel is the fused loop that numpy cannot express without full-size temporaries:
XOR + popcount (LLVM's ``ctpop``, which LLVM vectorises with AVX2 byte shuffles) and the
reduction that follows, in one pass over blocks of codes that stay in L1. Codes are
PackedCodes words (bits LSB-first, padding zero), passed as (n,) words of one unsigned
dtype for k <= 64 (so that the loop vectorises) or (n, W) uint64 words for k > 64.
Results equal :mod:`llcpkg.hamming`'s numpy path exactly (integer arithmetic only).
Compiled on first use per word dtype and cached on disk (``cache=True``).
"""
from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.extending import intrinsic, overload

_CODES_BLOCK = 2048  # codes per block: 16 KiB of uint64 words, held in L1 while every query of a batch scans them


@intrinsic
def popcount(typingctx, x):
    """Set bits of an unsigned integer (LLVM ``ctpop``), same type as ``x``."""
    if not isinstance(x, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        fn = builder.module.declare_intrinsic("llvm.ctpop", [args[0].type])
        return builder.call(fn, [args[0]])
    return x(x), codegen


def row_distances(q, cw, l0, l1, out):
    """out[:l1 - l0] = Hamming distances of one query to codes cw[l0:l1]: q a word and cw (N,)
    words of its dtype, or q (W,) and cw (N, W) uint64 words. Compiled code only (an
    overload); indices rather than slices keep the arrays contiguous for the vectoriser.
    (Taking the minimum in the same loop measured 2x slower: it stops the vectorisation.)"""
    raise NotImplementedError("row_distances runs inside compiled kernels only")


@overload(row_distances)
def _row_distances(q, cw, l0, l1, out):
    if cw.ndim == 1:
        def one(q, cw, l0, l1, out):
            for n in range(l0, l1):
                out[n - l0] = popcount(q ^ cw[n])
        return one

    def multi(q, cw, l0, l1, out):
        for n in range(l0, l1):
            acc = 0
            for j in range(cw.shape[1]):
                acc += popcount(q[j] ^ cw[n, j])
            out[n - l0] = acc
    return multi


@njit(cache=True, nogil=True)
def distance_rows(qw, cw, out):
    """Distances of queries qw (q,) or (q, W) to codes cw (N,) or (N, W) into out (q, N),
    codes in blocks held in L1 while every query scans them."""
    N = cw.shape[0]
    for l0 in range(0, N, _CODES_BLOCK):
        l1 = min(N, l0 + _CODES_BLOCK)
        for i in range(qw.shape[0]):
            row_distances(qw[i], cw, l0, l1, out[i, l0:])


@njit(cache=True, nogil=True)
def nearest(qw, cw, buf, arg, dist, count):
    """Per query of qw (q,) or (q, W): the first nearest code of cw (N,) or (N, W) (lowest
    index), its distance and the number of codes at that distance, into arg, dist, count (q,)
    int64. buf: (_CODES_BLOCK,) scratch of a dtype holding k (uint8 for k < 256)."""
    nq, N = qw.shape[0], cw.shape[0]
    dist[:] = np.iinfo(np.int64).max
    count[:] = 0
    arg[:] = 0
    for l0 in range(0, N, _CODES_BLOCK):
        l1 = min(N, l0 + _CODES_BLOCK)
        for i in range(nq):
            row_distances(qw[i], cw, l0, l1, buf)
            n_block = l1 - l0
            m = buf[0]
            for n in range(n_block):  # vectorised min
                m = min(m, buf[n])
            if m > dist[i]:
                continue
            c = 0
            for n in range(n_block):  # vectorised count
                c += buf[n] == m
            if m == dist[i]:
                count[i] += c
                continue
            first = 0
            while buf[first] != m:
                first += 1
            dist[i], arg[i], count[i] = m, l0 + first, c


@njit(cache=True, nogil=True)
def top_r(qw, cw, R, n_levels, lev, cand, cand_lev, ids, starts, cut, before):
    """Top R of each query of qw (q,) or (q, W) over codes cw, 1 <= R < N, as ``hamming.select_top_r``.

    Scratch: lev, cand_lev (N,) of the levels dtype, cand (N,) int64. Output: the ids of
    query i (ascending) are ``ids[starts[i]:starts[i + 1]]`` (ids grown as needed and
    returned), cut[i] its cut level t = min{t : #(levels <= t) >= R}, before[i] the items
    strictly below t (0 when t = 0). The cut is guessed from a strided sample (aimed at 1.5 R
    items), the items at or below it extracted in one pass, and the cut refined on those.
    """
    nq, N = qw.shape[0], cw.shape[0]
    stride = max(1, N // 2048)
    n_sample = (N + stride - 1) // stride
    target = (3 * R * n_sample + 2 * N - 1) // (2 * N)  # aim the guess at 1.5 R items
    hist = np.empty(n_levels, np.int64)
    total = 0
    for i in range(nq):
        row_distances(qw[i], cw, 0, N, lev)
        hist[:] = 0
        for n in range(0, N, stride):
            hist[lev[n]] += 1
        t, acc = 0, hist[0]
        while acc < target and t < n_levels - 1:
            t += 1
            acc += hist[t]
        while True:  # candidates: every item at level <= t, ascending (one branch-free pass)
            m = 0
            for n in range(N):
                cand[m] = n
                cand_lev[m] = lev[n]
                m += lev[n] <= t
            if m >= R:
                break
            t += 1
        hist[:] = 0
        for j in range(m):
            hist[cand_lev[j]] += 1
        t, acc = 0, hist[0]
        while acc < R:  # the exact cut: min{t : #(levels <= t) >= R}
            t += 1
            acc += hist[t]
        cut[i], before[i] = t, acc - hist[t] if t > 0 else 0
        if total + acc > ids.shape[0]:
            grown = np.empty(max(2 * ids.shape[0], total + acc), np.int64)
            grown[:total] = ids[:total]
            ids = grown
        starts[i] = total
        for j in range(m):
            if cand_lev[j] <= t:
                ids[total] = cand[j]
                total += 1
    starts[nq] = total
    return ids
