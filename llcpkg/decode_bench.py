"""Decoding cost at scale: llcpkg's ED / ball / MHD against faiss and a dense classifier.

Measures the paper's efficiency claim (LLC, Sec. 3.3: ED is a hash lookup whose cost does not
depend on the number of classes L; MHD a cheap linear scan of bits) on random codebooks and
random queries, per query, single-threaded, at batch 1 (queries decoded one at a time) and
batch 1024. Used by ``benchmarks/decode_scaling.py`` and ``notebooks/07_decoding_cost.ipynb``.

Timing conventions
------------------
* Every decoder gets the queries already packed (the faiss layout; packing is the same work
  for all of them) and an index built beforehand (build time reported separately).
* batch 1: ``n_single`` different queries decoded one after another, each timed; the median.
  batch B > 1: the whole batch decoded ``repeats`` times; the median divided by B.
* Memory: ``index_bytes`` is what the decoder keeps (packed codebook + table, faiss index
  serialised, dense weight L * d * 4); ``peak_bytes`` the largest transient numpy memory of
  one call (tracemalloc; faiss allocates in C++, so NaN there).
* Dense classifier (float32 matmul + argmax, ``mips_decode``): when L * d * 4 exceeds
  ``dense_max_bytes`` the weight is NOT materialised: a slice of rows is timed and the time
  scaled by L / rows (``timed_rows`` < ``L`` marks those rows). Matmul time is linear in L,
  so the scaling is fair up to cache effects (the slice is already far larger than cache).
* Copy bandwidth: ``np.copyto`` of a ``copy_bytes`` buffer, bandwidth = 2 * bytes / time
  (read + write, the STREAM "copy" convention); the MHD batch-1 bound is
  (L * ceil(k/8) bytes of packed codebook) / bandwidth.
"""
from __future__ import annotations

import os
import time
import tracemalloc
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from .decode import CodeTable, PackedCodes, ball_decode, mhd_decode, mips_decode

__all__ = ["GOAL", "MET", "BenchConfig", "copy_bandwidth", "run_benchmark", "goals_table", "ed_slope", "met",
           "median_goals", "popcount_support", "LLC_METHODS", "FAISS_METHODS"]

GOAL, MET = "goal", "met"  # columns of the goals tables: the goal in words, and whether it was met
LLC_METHODS = ("ed", "ball1", "ball2", "mhd")
FAISS_METHODS = ("faiss_flat", "faiss_hash_r0", "faiss_hash_r1", "faiss_hash_r2")


@dataclass
class BenchConfig:
    """What to measure (defaults: the issue's full grid)."""

    Ls: tuple = (1_000, 10_000, 100_000, 1_000_000)  # numbers of classes
    ks: tuple = (16, 20, 32, 64)  # code lengths in bits
    batches: tuple = (1, 1024)  # queries per call
    dense_ds: tuple = (128, 2048)  # feature widths of the dense real-valued classifier
    methods: tuple = LLC_METHODS + FAISS_METHODS  # code decoders to time
    n_single: int = 20  # queries timed one by one at batch 1
    repeats: int = 3  # timed calls per batched measurement
    dense_max_bytes: int = 256 << 20  # largest dense weight slice materialised
    copy_bytes: int = 256 << 20  # buffer size of the copy-bandwidth measurement
    threads: int = 1  # faiss OpenMP threads (numpy's kernels are single-threaded)
    seed: int = 0  # codebooks, queries and weights
    extra: dict = field(default_factory=dict)  # free-form notes copied into the table


# ------------------------------------------------------------------ timing helpers
def _time_per_query(fn: Callable, queries, batch: int, n_single: int, repeats: int) -> float:
    """Median seconds per query (see module docstring)."""
    if batch == 1:
        fn(queries(0, 1))  # warm-up
        ts = []
        for i in range(n_single):
            q = queries(i, i + 1)
            t0 = time.perf_counter()
            fn(q)
            ts.append(time.perf_counter() - t0)
        return float(np.median(ts))
    q = queries(0, batch)
    fn(q)
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(q)
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts)) / batch


def _peak_bytes(fn: Callable, q) -> float:
    """Peak traced (numpy/Python) allocation of one call, scratch buffers included."""
    from . import decode as _decode, hamming as _hamming
    _decode._WORK.__dict__.clear()  # count the reused scratch buffers too
    _hamming._SCRATCH.__dict__.clear()
    tracemalloc.start()
    try:
        fn(q)
        return float(tracemalloc.get_traced_memory()[1])
    finally:
        tracemalloc.stop()


def copy_bandwidth(nbytes: int = 256 << 20, repeats: int = 5) -> float:
    """Plain memory-copy bandwidth in bytes/s: 2 * nbytes / best time of ``np.copyto``."""
    src = np.ones(nbytes // 8, np.uint64)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    best = min(_timed(lambda: np.copyto(dst, src)) for _ in range(repeats))
    return 2 * src.nbytes / best


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _set_threads(n: int):
    try:
        import faiss
        faiss.omp_set_num_threads(n)
    except ImportError:
        pass


# ------------------------------------------------------------------ decoders under test
def _code_decoders(cb: PackedCodes, methods) -> dict[str, tuple[Callable, float, float, bool]]:
    """name -> (decode(PackedCodes), index_bytes, build_seconds, numpy_path).

    Not through ``decode.DECODERS``: a registered decoder takes real scores and codebook bits
    and packs the queries, packs the codebook and builds the hash table on every call, while
    this benchmark times the query side alone on pre-packed codes against a table built once
    (its build time is reported apart); routing through the registry would time the packing
    and the table build too and change what ``us_per_query`` measures."""
    out = {}
    need_table = any(m in methods for m in ("ed", "ball1", "ball2"))
    if need_table:
        t0 = time.perf_counter()
        table = CodeTable(cb)
        tb = time.perf_counter() - t0
        nb = table.nbytes + cb.words.nbytes
        out["ed"] = (table.lookup, nb, tb, True)
        out["ball1"] = (lambda q: ball_decode(q, table, 1), nb, tb, True)
        out["ball2"] = (lambda q: ball_decode(q, table, 2), nb, tb, True)
    out["mhd"] = (lambda q: mhd_decode(q, cb, backend="numpy"), cb.words.nbytes, 0.0, True)
    if any(m.startswith("faiss") for m in methods):
        import faiss
        t0 = time.perf_counter()
        flat = cb.faiss_index()
        out["faiss_flat"] = (lambda q: flat.search(q.packed, 1), cb.n * cb.nbytes,
                             time.perf_counter() - t0, False)
        t0 = time.perf_counter()
        hashed = faiss.IndexBinaryHash(8 * cb.nbytes, min(cb.k, 64))
        hashed.add(np.ascontiguousarray(cb.packed))
        th = time.perf_counter() - t0
        hb = float(len(faiss.serialize_index_binary(hashed)))
        for r in (0, 1, 2):
            def search(q, r=r):
                hashed.nflip = r
                return hashed.search(q.packed, 1)
            out[f"faiss_hash_r{r}"] = (search, hb, th, False)
    return {m: out[m] for m in methods if m in out}


def run_benchmark(cfg: BenchConfig, progress: Callable[[str], None] | None = None) -> pd.DataFrame:
    """Time every decoder of ``cfg.methods`` and the dense classifier over the grid.

    Returns a tidy DataFrame, one row per (L, k or d, batch, method): ``us_per_query``,
    ``index_bytes``, ``peak_bytes``, ``build_s``, ``timed_rows`` (< L where a dense slice was
    timed and scaled), ``family`` (llcpkg / faiss / dense).
    """
    _set_threads(cfg.threads)
    rng = np.random.default_rng(cfg.seed)
    nq = max(max(cfg.batches), cfg.n_single)
    rows = []
    for L in cfg.Ls:
        for k in cfg.ks:
            nbytes = -(-k // 8)
            cb = PackedCodes.from_packed(_random_packed(rng, L, k), k)
            qs = PackedCodes.from_packed(_random_packed(rng, nq, k), k)
            def queries(a, b, qs=qs):
                return PackedCodes(qs.words[a:b], qs.k)
            for name, (fn, ib, tb, is_numpy) in _code_decoders(cb, cfg.methods).items():
                for batch in cfg.batches:
                    t = _time_per_query(fn, queries, batch, cfg.n_single, cfg.repeats)
                    peak = _peak_bytes(fn, queries(0, batch)) if is_numpy else float("nan")
                    rows.append(dict(L=L, k=k, d=np.nan, batch=batch, method=name,
                                     family="faiss" if name.startswith("faiss") else "llcpkg",
                                     us_per_query=t * 1e6, index_bytes=ib, peak_bytes=peak,
                                     build_s=tb, timed_rows=L, codebook_bytes=L * nbytes))
                if progress:
                    progress(f"L={L} k={k} {name}")
        for d in cfg.dense_ds:
            rows.extend(_bench_dense(rng, L, d, cfg))
            if progress:
                progress(f"L={L} dense d={d}")
    df = pd.DataFrame(rows)
    df.attrs["config"] = cfg
    return df


def _random_packed(rng, n: int, k: int) -> np.ndarray:
    bits = rng.integers(0, 2, (n, k), dtype=np.uint8)
    return np.packbits(bits, axis=1, bitorder="little")


def _bench_dense(rng, L: int, d: int, cfg: BenchConfig) -> list[dict]:
    """Dense classifier x (b, d) @ W.T (d, L) + argmax, float32; sliced and scaled when big."""
    timed_rows = int(min(L, max(1, cfg.dense_max_bytes // (4 * d))))
    W = rng.standard_normal((timed_rows, d), dtype=np.float32)
    x = rng.standard_normal((max(max(cfg.batches), cfg.n_single), d), dtype=np.float32)
    def queries(a, b):
        return x[a:b]
    fn = lambda q: mips_decode(q, W)  # noqa: E731
    out = []
    for batch in cfg.batches:
        n_single = min(cfg.n_single, 5)
        t = _time_per_query(fn, queries, batch, n_single, cfg.repeats) * L / timed_rows
        out.append(dict(L=L, k=np.nan, d=d, batch=batch, method=f"dense_d{d}", family="dense",
                        us_per_query=t * 1e6, index_bytes=float(L) * d * 4, peak_bytes=np.nan,
                        build_s=0.0, timed_rows=timed_rows, codebook_bytes=float(L) * d * 4))
    return out


# ------------------------------------------------------------------ goals
def ed_slope(df: pd.DataFrame, k: float, batch: int) -> float:
    """Least-squares slope of log(ED time) against log(L) over every L measured (0 = flat;
    0.1 = 2x per 1000x classes)."""
    d = df[(df.method == "ed") & (df.k == k) & (df.batch == batch)]
    return float(np.polyfit(np.log(d.L.astype(float)), np.log(d.us_per_query), 1)[0])


def goals_table(df: pd.DataFrame, bandwidth: float) -> pd.DataFrame:
    """The issue's goals, evaluated at the largest L measured (ED: over every L; one row each).

    Columns: goal, batch, measured (a ratio, or ED's log-log slope in L), target, met. Ratios
    are per-query times from the same run. Goals needing a method or size that was not
    measured are left out; ED's slope needs at least three L.
    """
    Lmax, Ls = df["L"].max(), np.sort(df["L"].unique())
    kmax = df["k"].max()
    t = df.set_index(["method", "L", "k", "batch"])["us_per_query"]
    dense = df[df.family == "dense"].set_index(["method", "L", "batch"])["us_per_query"]
    rows = []
    for b in sorted(df["batch"].unique()):
        for k in sorted(df["k"].dropna().unique()):
            if len(Ls) >= 3 and all(("ed", L, k, b) in t.index for L in Ls):
                rows.append(dict(goal=f"ED time log-log slope over L={Ls[0]:.0e}..{Lmax:.0e} "
                                      f"({len(Ls)} points, k={k:.0f})",
                                 batch=b, measured=ed_slope(df, k, b), target="<= 0.1"))
        if ("mhd", Lmax, kmax, b) in t.index and ("faiss_flat", Lmax, kmax, b) in t.index:
            rows.append(dict(goal=f"MHD / faiss IndexBinaryFlat time (L={Lmax:.0e}, k={kmax:.0f})",
                             batch=b, measured=t["mhd", Lmax, kmax, b] / t["faiss_flat", Lmax, kmax, b],
                             target="<= 1"))
        if b == 1 and ("mhd", Lmax, kmax, 1) in t.index:
            bound_us = Lmax * -(-kmax // 8) / bandwidth * 1e6
            rows.append(dict(goal=f"MHD time / copy-bandwidth bound (L={Lmax:.0e}, k={kmax:.0f})",
                             batch=b, measured=t["mhd", Lmax, kmax, 1] / bound_us, target="<= 2"))
        for m in ("ed", "mhd"):
            dkey = ("dense_d2048", Lmax, b)
            if (m, Lmax, kmax, b) in t.index and dkey in dense.index:
                rows.append(dict(goal=f"dense d=2048 time / {m.upper()} time (L={Lmax:.0e}, "
                                      f"k={kmax:.0f})",
                                 batch=b, measured=dense[dkey] / t[m, Lmax, kmax, b], target=">= 100"))
    g = pd.DataFrame(rows, columns=[GOAL, "batch", "measured", "target"])
    g[MET] = [met(m, tg) for m, tg in zip(g.measured, g.target)]
    return g


def met(measured: float, target: str) -> bool:
    """Whether ``measured`` meets a target written "<= x" or ">= x"."""
    op, value = target[:2], float(target[2:])
    if op not in ("<=", ">="):
        raise ValueError(f"target must start with <= or >=; got {target!r}")
    return measured <= value if op == "<=" else measured >= value


def median_goals(runs: list[pd.DataFrame]) -> pd.DataFrame:
    """Goal tables of several runs → one row per (goal, batch): the median, min and max of
    ``measured`` over the runs, the target, and ``met`` judged on the median."""
    df = pd.concat([r.assign(run=i) for i, r in enumerate(runs)], ignore_index=True)
    out = (df.groupby([GOAL, "batch", "target"], sort=False)["measured"]
           .agg(measured="median", run_min="min", run_max="max", runs="count").reset_index())
    out[MET] = [met(m, tg) for m, tg in zip(out.measured, out.target)]
    return out[[GOAL, "batch", "measured", "run_min", "run_max", "runs", "target", MET]]


def popcount_support() -> pd.DataFrame:
    """What this CPU and numpy offer for popcount, and ``np.bitwise_count``'s measured speed.

    One row per unsigned dtype: ns per element and per 64 bits, over a 1 MiB array in cache
    (median of 7). Attributes ``avx512_vpopcntdq_cpu`` (from /proc/cpuinfo's flags, None if
    unreadable) and ``avx512_vpopcntdq_numpy`` (numpy's runtime dispatch table).
    """
    from numpy._core._multiarray_umath import __cpu_features__

    try:
        flags = next((line.split(":", 1)[1].split() for line in open("/proc/cpuinfo")
                      if line.startswith("flags")), [])
        cpu = "avx512_vpopcntdq" in flags
    except OSError:
        cpu = None
    rows = []
    for dt in (np.uint8, np.uint16, np.uint32, np.uint64):
        x = np.random.default_rng(0).integers(0, np.iinfo(dt).max, (1 << 20) // np.dtype(dt).itemsize, dtype=dt)
        out = np.empty(len(x), np.uint8)
        np.bitwise_count(x, out=out)
        t = float(np.median([_timed(lambda: np.bitwise_count(x, out=out)) for _ in range(7)]))
        ns = t / len(x) * 1e9
        rows.append(dict(dtype=np.dtype(dt).name, ns_per_element=ns, ns_per_64_bits=ns * 64 / (8 * x.itemsize)))
    df = pd.DataFrame(rows)
    df.attrs.update(avx512_vpopcntdq_cpu=cpu, avx512_vpopcntdq_numpy=bool(__cpu_features__.get("AVX512VPOPCNTDQ")))
    return df


def environment_note() -> str:
    """One line on where the numbers come from."""
    import platform
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores visible, "
            f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, numpy {np.__version__}")
