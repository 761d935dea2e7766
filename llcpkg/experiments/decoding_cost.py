"""Notebook 07: decoding cost at scale (ED, MHD, a dense classifier; 10³ to 10⁶ classes),
Hamming ranking against cosine, and the HFH training step.

The benchmarks are the library's (:mod:`llcpkg.decode_bench`, :mod:`llcpkg.speed_bench`);
this module holds the profile presets of the notebook's sizes, the goal readings and the
extrapolation to 10⁸–10⁹ classes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..decode_bench import GOAL, MET, BenchConfig, copy_bandwidth, goals_table, median_goals, run_benchmark
from ..profiles import Profile
from ..speed_bench import SpeedConfig

__all__ = ["DecodingCostExperiment", "SIZES", "DECODING_COST", "GOALS", "SPEED_GOALS", "GOAL", "MET", "verdicts", "grid_runs",
           "cost_table", "goals_of", "run", "describe_goals", "describe_mhd_bandwidth", "describe_ed",
           "extrapolate"]

DECODING_COST, GOALS, SPEED_GOALS = "decoding_cost", "decoding_cost_goals", "speed_goals"  # tables (results/tables/<name>.csv)

SIZES = {  # profile -> (Ls, ks, n_single, repeats, copy MiB, runs, speed calls)
    "smoke": ((1_000, 10_000), (16, 64), 5, 1, 64, 2, 5),
    "cpu": ((1_000, 10_000, 100_000, 1_000_000), (16, 20, 32, 64), 10, 2, 256, 3, 20),
    "gpu": ((1_000, 10_000, 100_000, 1_000_000), (16, 20, 32, 64), 20, 3, 256, 5, 30),
}


@dataclass(frozen=True)
class DecodingCostExperiment:
    """Notebook 07's parameters (``None``: the profile's preset in ``SIZES``, cpu's for others)."""

    profile: Profile  # whose preset and results folder
    Ls: tuple[int, ...] | None = None  # numbers of classes
    ks: tuple[int, ...] | None = None  # code lengths in bits
    batches: tuple[int, ...] = (1, 1024)  # queries per call
    dense_ds: tuple[int, ...] = (128, 2048)  # feature widths of the dense classifier
    n_single: int | None = None  # queries timed one at a time at batch 1
    repeats: int | None = None  # timed calls per batched measurement
    runs: int | None = None  # repeats of every measurement; goals report the median run
    speed_calls: int | None = None  # timed calls per side in the retrieval comparison
    seed: int = 0

    @classmethod
    def for_profile(cls, profile: Profile, **params) -> "DecodingCostExperiment":
        """The notebook's parameters (lists become tuples) on ``profile``."""
        return cls(profile, **{k: tuple(v) if isinstance(v, list) else v for k, v in params.items()})

    @property
    def _preset(self) -> tuple:
        return SIZES.get(self.profile.name, SIZES["cpu"])

    @property
    def n_runs(self) -> int:
        return self.runs or self._preset[5]

    def bench(self) -> BenchConfig:
        """The decoding benchmark's grid."""
        Ls, ks, single, repeats, copy_mb, _, _ = self._preset
        return BenchConfig(Ls=tuple(self.Ls or Ls), ks=tuple(self.ks or ks), batches=tuple(self.batches),
                           dense_ds=tuple(self.dense_ds), n_single=self.n_single or single,
                           repeats=self.repeats or repeats, copy_bytes=copy_mb << 20, seed=self.seed)

    def speed(self) -> SpeedConfig:
        """The retrieval and HFH-step comparison."""
        calls = self.speed_calls or self._preset[6]
        return SpeedConfig(calls=calls, steps=calls, seed=self.seed)


def describe_goals(goals: pd.DataFrame) -> str:
    """One line per goal row: MET or MISSED, measured against its target."""
    return "\n".join(f"- {'MET' if r.met else 'MISSED'}: {r.goal}, batch {r.batch}: {r.measured:.3g} (target {r.target})"
                     for r in goals.itertuples())


def describe_mhd_bandwidth(df: pd.DataFrame, bandwidth: float) -> str:
    """MHD at batch 1, the largest L and k: the bytes it scans per second against the copy bandwidth."""
    mhd1 = df[(df.method == "mhd") & (df.batch == 1) & (df.L == df.L.max()) & (df.k == df.k.max())]
    if not len(mhd1):
        return ""
    r = mhd1.iloc[0]
    return (f"MHD batch 1 at L={r.L:.0e}, k={r.k:.0f}: {r.us_per_query:.0f} µs per query scans "
            f"{r.codebook_bytes / 1e6:.1f} MB = {r.codebook_bytes / r.us_per_query / 1e3:.1f} GB/s, "
            f"against {bandwidth / 1e9:.1f} GB/s copy bandwidth.")


def describe_ed(df: pd.DataFrame) -> str:
    """llcpkg's ED against faiss's IndexBinaryHash at batch 1, the largest L and k."""
    t = df[(df.batch == 1) & (df.L == df.L.max()) & (df.k == df.k.max())].set_index("method").us_per_query
    if not {"ed", "faiss_hash_r0"} <= set(t.index):
        return ""
    return (f"ED batch 1: llcpkg {t['ed']:.1f} µs vs faiss IndexBinaryHash {t['faiss_hash_r0']:.1f} µs "
            "(per-call Python overhead dominates both; neither depends on L).")


LINEAR_IN_L = ("mhd", "faiss_flat", "dense_d2048")  # scan every class
CONSTANT_IN_L = ("ed", "ball1", "ball2", "faiss_hash_r0")  # hash lookups (ignores more cache misses in a larger table)


def extrapolate(df: pd.DataFrame, targets: tuple[float, ...] = (1e8, 1e9)) -> pd.DataFrame:
    """Time and memory at ``targets`` classes from the largest measured L at batch 1 (linear in
    L for the scans, constant for the hash lookups; memory linear in L for all)."""
    big = df[(df.L == df.L.max()) & (df.batch == 1) & ((df.k == df.k.max()) | (df.method == "dense_d2048"))]
    rows = []
    for L_target in targets:
        for r in big.itertuples():
            if r.method not in LINEAR_IN_L + CONSTANT_IN_L:
                continue
            scale = L_target / r.L if r.method in LINEAR_IN_L else 1.0
            rows.append(dict(L=L_target, method=r.method, ms_per_query=r.us_per_query * scale / 1e3,
                             memory_GB=r.index_bytes * (L_target / r.L) / 1e9))
    return pd.DataFrame(rows)


def grid_runs(exp: DecodingCostExperiment, bandwidth: float | None = None) -> list[tuple[float, pd.DataFrame]]:
    """:func:`run_benchmark` ``exp.n_runs`` times, each with the copy bandwidth measured before it
    (``bandwidth``: an already measured one for the first run): [(bytes per second, grid)]."""
    cfg, out = exp.bench(), []
    for r in range(exp.n_runs):
        bw = bandwidth if r == 0 and bandwidth is not None else copy_bandwidth(cfg.copy_bytes)
        out.append((bw, run_benchmark(cfg)))
    return out


def cost_table(runs: list[tuple[float, pd.DataFrame]]) -> pd.DataFrame:
    """The last run's grid, with ``mhd_bound_us``: the time to stream the codebook once at that
    run's copy bandwidth (NaN for the dense classifier)."""
    bandwidth, df = runs[-1]
    df["mhd_bound_us"] = np.where(df.family == "dense", np.nan, df["codebook_bytes"] / bandwidth * 1e6)
    return df


def goals_of(runs: list[tuple[float, pd.DataFrame]]) -> pd.DataFrame:
    """The goals table: the median over the runs of :func:`goals_table`."""
    return median_goals([goals_table(d, bw) for bw, d in runs])


def run(exp: DecodingCostExperiment) -> dict[str, pd.DataFrame]:
    """The decoding tables of notebook 07 (grid and goals), by file name."""
    runs = grid_runs(exp)
    return {DECODING_COST: cost_table(runs), GOALS: goals_of(runs)}


def verdicts(tables) -> list[dict]:
    """No claim of its own: the goals table (:data:`GOALS`) feeds the ED claim of
    :func:`llcpkg.experiments.classification.claim_ed`."""
    return []
