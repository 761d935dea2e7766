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
    overload). Loops run over 0..n on a slice: an offset index (``cw[l0 + n]``) or the
    minimum taken in the same loop measured 2-6x slower (no vectorisation)."""
    raise NotImplementedError("row_distances runs inside compiled kernels only")


def as_level(cw, x):
    """x cast to the type distances to codes cw are compared in: the word dtype for (N,)
    words, int64 for (N, W). Compiled code only (an overload)."""
    raise NotImplementedError("as_level runs inside compiled kernels only")


@overload(as_level)
def _as_level(cw, x):
    word = getattr(np, str(cw.dtype)) if cw.ndim == 1 else np.int64
    return lambda cw, x: word(x)


@overload(row_distances)
def _row_distances(q, cw, l0, l1, out):
    if cw.ndim == 1:
        word = getattr(np, str(cw.dtype))  # numba widens q ^ w to 64 bits: narrow it back (2-6x faster)

        def one(q, cw, l0, l1, out):
            c = cw[l0:l1]
            for n in range(c.shape[0]):
                out[n] = popcount(word(q ^ c[n]))
        return one

    def multi(q, cw, l0, l1, out):
        c = cw[l0:l1]
        for n in range(c.shape[0]):
            acc = 0
            for j in range(c.shape[1]):
                acc += popcount(q[j] ^ c[n, j])
            out[n] = acc
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


def code_distance(q, cw, n):
    """Hamming distance of one query (a word, or (W,) uint64 words) to code cw[n]; compiled
    code only (an overload, as :func:`row_distances`)."""
    raise NotImplementedError("code_distance runs inside compiled kernels only")


@overload(code_distance)
def _code_distance(q, cw, n):
    if cw.ndim == 1:
        word = getattr(np, str(cw.dtype))  # as in row_distances
        return lambda q, cw, n: popcount(word(q ^ cw[n]))

    def multi(q, cw, n):
        acc = 0
        for j in range(cw.shape[1]):
            acc += popcount(q[j] ^ cw[n, j])
        return acc
    return multi


@njit(cache=True, nogil=True)
def nearest(qw, cw, cap, buf, arg, dist, count):
    """Per query of qw (q,) or (q, W): the first nearest code of cw (N,) or (N, W) (lowest
    index), its distance and the number of codes at that distance, into arg, dist, count (q,)
    int64. cap: a distance above every possible one (the code bits + 1, which the level
    type of :func:`as_level` holds); buf: (_CODES_BLOCK,) scratch of a dtype holding k.

    Per block of codes and query, a vectorised pass asks whether any code is within the
    query's best distance so far; only then (rarely, once the best is small) are the block's
    distances stored and its minimum, first index and tie count taken."""
    nq, N = qw.shape[0], cw.shape[0]
    dist[:] = cap
    count[:] = 0
    arg[:] = 0
    for l0 in range(0, N, _CODES_BLOCK):
        l1 = min(N, l0 + _CODES_BLOCK)
        for i in range(nq):
            q, best, hit, blk = qw[i], as_level(cw, dist[i]), False, cw[l0:l1]
            for n in range(blk.shape[0]):
                hit |= code_distance(q, blk, n) <= best
            if not hit:
                continue
            row_distances(q, cw, l0, l1, buf)
            n_block = l1 - l0
            m = buf[0]
            for n in range(n_block):  # vectorised min
                m = min(m, buf[n])
            c = 0
            for n in range(n_block):  # vectorised count
                c += buf[n] == m
            if m == best:
                count[i] += c
                continue
            first = 0
            while buf[first] != m:
                first += 1
            dist[i], arg[i], count[i] = m, l0 + first, c


def mask_at_most(q, cw, t, flags, masks):
    """masks (ceil(N / 64),) uint64: bit j of masks[b] set iff code 64 b + j of cw is within
    distance t of q; flags (64 ceil(N / 64),) uint8 scratch. Compiled code only (an overload)."""
    raise NotImplementedError("mask_at_most runs inside compiled kernels only")


@overload(mask_at_most)
def _mask_at_most(q, cw, t, flags, masks):
    if cw.ndim == 1 and cw.dtype.bitwidth < 64:
        def narrow(q, cw, t, flags, masks):
            # narrow words: 0/1 bytes in one vectorised pass, then 8 bytes -> 8 bits by one
            # multiply (byte j lands on bit 56 + j; little-endian words, no carries)
            N, tl = cw.shape[0], as_level(cw, t)
            for n in range(N):
                flags[n] = code_distance(q, cw, n) <= tl
            flags[N:] = 0
            words, out = flags.view(np.uint64), masks.view(np.uint8)
            for w in range(words.shape[0]):
                out[w] = (words[w] * np.uint64(0x0102040810204080)) >> np.uint64(56)
        return narrow

    def wide(q, cw, t, flags, masks):
        # 64-bit lanes: compare and fold 64 codes into a word (measured faster than bytes here)
        N, tl = cw.shape[0], as_level(cw, t)
        for b in range(N // 64):
            mk = np.uint64(0)
            for j in range(64):
                mk |= np.uint64(code_distance(q, cw, 64 * b + j) <= tl) << np.uint64(j)
            masks[b] = mk
        if N % 64:
            mk = np.uint64(0)
            for n in range(N - N % 64, N):
                mk |= np.uint64(code_distance(q, cw, n) <= tl) << np.uint64(n % 64)
            masks[N // 64] = mk
    return wide


@njit(cache=True, nogil=True)
def _set_bits(masks, out):
    """Indices (ascending) of the set bits of masks into out; returns how many."""
    m = 0
    for b in range(masks.shape[0]):
        mk = masks[b]
        while mk:
            low = mk & (~mk + np.uint64(1))  # the lowest set bit
            out[m] = 64 * b + popcount(low - np.uint64(1))
            m += 1
            mk ^= low
    return m


@njit(cache=True, nogil=True)
def top_r(qw, cw, R, n_levels, flags, masks, cand, cand_lev, ids, starts, cut, before):
    """Top R of each query of qw (q,) or (q, W) over codes cw, 1 <= R < N, as ``hamming.select_top_r``.

    Scratch: flags (64 ceil(N / 64),) uint8, masks (ceil(N / 64),) uint64, cand and
    cand_lev (N,) int64. Output: the ids of query i (ascending) are ``ids[starts[i]:starts[i + 1]]`` (ids grown
    as needed and returned), cut[i] its cut level t = min{t : #(levels <= t) >= R},
    before[i] the items strictly below t (0 when t = 0). The cut is guessed from a strided
    sample (aimed at 1.5 R items); one vectorised pass marks the items within it in bit
    masks, their set bits are the candidates, and the exact cut is found on those.
    """
    nq, N = qw.shape[0], cw.shape[0]
    stride = max(1, N // 2048)
    n_sample = (N + stride - 1) // stride
    target = (3 * R * n_sample + 2 * N - 1) // (2 * N)  # aim the guess at 1.5 R items
    hist = np.empty(n_levels, np.int64)
    total = 0
    for i in range(nq):
        q = qw[i]
        hist[:] = 0
        for n in range(0, N, stride):
            hist[code_distance(q, cw, n)] += 1
        t, acc = 0, hist[0]
        while acc < target and t < n_levels - 1:
            t += 1
            acc += hist[t]
        while True:
            mask_at_most(q, cw, t, flags, masks)
            m = _set_bits(masks, cand)
            if m >= R:
                break
            t += 1  # the guess was too low (rare): widen it
        hist[:] = 0
        for j in range(m):
            cand_lev[j] = code_distance(q, cw, cand[j])
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
