"""Notebook 07: decoding cost at scale (ED, MHD, a dense classifier; 10³ to 10⁶ classes),
Hamming ranking against cosine, and the HFH training step.

The benchmarks are the library's (:mod:`llcpkg.decode_bench`, :mod:`llcpkg.speed_bench`);
this module holds the profile presets of the notebook's sizes, the goal readings and the
extrapolation to 10⁸–10⁹ classes, and the timing verdicts (issue #16): every goal is measured in
``runs`` separate runs, and its verdict is :func:`llcpkg.verdicts.timing_rule` on the interval
over those runs (:func:`llcpkg.stats.ratio_interval`), so a ratio whose interval reaches into the
noise band around its target is ``inconclusive``. ED's cost "flat in L" is a log-log slope test:
the slope of log time against log L, fitted in each run (:data:`SLOPES`), read as the growth of
time over the measured range of L, ``(L_max / L_min) ** slope``, against the growth that the
target slope :data:`FLAT_SLOPE` allows (:func:`flat_in_L`). Timings are not seeded (``seed``
only draws the random codebooks): the runs, not seeds, are the repeated measurements.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from ..decode_bench import GOAL, MET, BenchConfig, copy_bandwidth, ed_slope, goals_table, median_goals, run_benchmark
from ..profiles import Profile
from ..speed_bench import SpeedConfig
from ..stats import ratio_interval, require_columns
from ..verdicts import NOT_RUN, Verdict, timing_rule

__all__ = ["DecodingCostExperiment", "SIZES", "DECODING_COST", "GOALS", "SPEED_GOALS", "SLOPES", "GOAL", "MET",
           "VERDICT", "INTERVAL", "FLAT_SLOPE", "TIMING_NOISE", "SLOPE_GOAL", "verdicts", "grid_runs", "cost_table",
           "slope_table", "flat_in_L", "ed_flat_verdict", "goal_verdict", "judged_goals", "goals_of", "run",
           "describe_goals", "describe_mhd_bandwidth", "describe_ed", "extrapolate"]

# tables (results/tables/<name>.csv)
DECODING_COST, GOALS, SPEED_GOALS, SLOPES = "decoding_cost", "decoding_cost_goals", "speed_goals", "decoding_cost_ed_slopes"
VERDICT, INTERVAL = "verdict", "interval"  # columns judged_goals adds to a goals table
FLAT_SLOPE = 0.1  # ED "flat in L": log-log slope of time against L at most this (2× time per 1000× classes)
TIMING_NOISE = 0.10  # the noise band of every timing verdict (timing_rule's default: a guess at run-to-run noise)
SLOPE_GOAL = "ED time log-log slope"  # how decode_bench.goals_table names its slope goals

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
    """One line per goal row of :func:`judged_goals`: its verdict, the median over runs and the
    interval over runs, against its target."""
    require_columns(goals, [GOAL, "batch", "measured", "target", VERDICT, INTERVAL], GOALS)
    return "\n".join(f"- {r.verdict}: {r.goal}, batch {r.batch}: median {r.measured:.3g}, interval over runs "
                     f"{r.interval} (target {r.target})" for r in goals.itertuples())


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


def slope_table(runs: list[tuple[float, pd.DataFrame]]) -> pd.DataFrame:
    """ED's log-log slope of time against L (:func:`llcpkg.decode_bench.ed_slope`), fitted in every
    run: one row per (run, k, batch) with columns ``run, k, batch, L min, L max, points, slope``.
    Empty (same columns) when fewer than three L were measured."""
    rows = []
    for r, (_, df) in enumerate(runs):
        ed = df[df.method == "ed"]
        Ls = np.sort(ed.L.unique())
        if len(Ls) < 3:
            continue
        for b in sorted(ed.batch.unique()):
            for k in sorted(ed.k.unique()):
                rows.append({"run": r, "k": int(k), "batch": int(b), "L min": int(Ls[0]), "L max": int(Ls[-1]),
                             "points": len(Ls), "slope": ed_slope(df, k, b)})
    return pd.DataFrame(rows, columns=["run", "k", "batch", "L min", "L max", "points", "slope"])


def flat_in_L(slopes: np.ndarray | pd.Series, l_min: float, l_max: float, what: str = "ED's log-log slope") -> Verdict:
    """The log-log slope test of "cost flat in L" on one slope per run (shape (runs,)).

    Each slope is read as the growth of time over the measured range, ``(l_max / l_min) ** slope``;
    :func:`llcpkg.verdicts.timing_rule` decides the interval over runs of that growth
    (:func:`llcpkg.stats.ratio_interval`) against the growth :data:`FLAT_SLOPE` allows,
    ``(l_max / l_min) ** FLAT_SLOPE``, with the :data:`TIMING_NOISE` band: holds if the whole
    interval lies below the band, does not hold if wholly above it, else inconclusive. The
    verdict's ``interval`` is the slope's (mean [lo, hi])."""
    span = math.log(l_max / l_min)
    growth = np.exp(np.asarray(slopes, dtype=float) * span)  # (runs,)
    iv = ratio_interval(growth, np.ones_like(growth))
    v = timing_rule(iv, math.exp(FLAT_SLOPE * span), "below", TIMING_NOISE,
                    what=f"the growth of time from L={l_min:.0e} to {l_max:.0e} implied by {what} "
                         f"(slope {FLAT_SLOPE} ⇔ ×{math.exp(FLAT_SLOPE * span):.2f})")
    slope = [math.log(x) / span for x in (iv.mean, iv.lo, iv.hi)]
    return replace(v, interval=f"slope {slope[0]:.3f} [{slope[1]:.3f}, {slope[2]:.3f}]")


def ed_flat_verdict(slopes: pd.DataFrame) -> Verdict:
    """"ED's cost is flat in L" from a :func:`slope_table`: per run, the mean slope over every code
    length and batch size measured, then :func:`flat_in_L` over the runs. A table with no rows
    (fewer than three L, e.g. the smoke profile) is ``not run``: there is no slope to test."""
    require_columns(slopes, ["run", "k", "batch", "L min", "L max", "slope"], SLOPES)
    if not len(slopes):
        return Verdict(NOT_RUN, f"ED's log-log slope needs at least three L; table {SLOPES!r} has none")
    per_run = slopes.groupby("run")["slope"].mean()  # (runs,)
    return flat_in_L(per_run.to_numpy(), slopes["L min"].min(), slopes["L max"].max(),
                     what=f"ED's log-log slope (mean over k ∈ {sorted(int(k) for k in slopes.k.unique())} and "
                          f"batch ∈ {sorted(int(b) for b in slopes.batch.unique())})")


def goal_verdict(values: np.ndarray | pd.Series, target: str) -> Verdict:
    """The verdict of one timing goal from its value in each run (shape (runs,)): ``target`` is
    ``"<= x"`` or ``">= x"``; :func:`llcpkg.verdicts.timing_rule` on the interval over runs
    (:func:`llcpkg.stats.ratio_interval`) with the :data:`TIMING_NOISE` band."""
    op, goal = target[:2], float(target[2:])
    if op not in ("<=", ">="):
        raise ValueError(f"target must start with <= or >=; got {target!r}")
    v = np.asarray(values, dtype=float)
    return timing_rule(ratio_interval(v, np.ones_like(v)), goal, "below" if op == "<=" else "above", TIMING_NOISE,
                       fmt=".3g")


def judged_goals(per_run: list[pd.DataFrame], l_range: tuple[float, float] | None = None) -> pd.DataFrame:
    """Goal tables of several runs → :func:`llcpkg.decode_bench.median_goals` (median, min, max,
    ``met`` on the median) plus ``verdict`` and ``interval``: :func:`goal_verdict` over the runs,
    and for ED's slope goals (:data:`SLOPE_GOAL`) :func:`flat_in_L` over ``l_range`` (the L
    measured: (min, max))."""
    out = median_goals(per_run)
    df = pd.concat([r.assign(run=i) for i, r in enumerate(per_run)], ignore_index=True)
    verdicts_, intervals = [], []
    for r in out.itertuples(index=False):
        values = df.loc[(df[GOAL] == r.goal) & (df["batch"] == r.batch) & (df["target"] == r.target), "measured"]
        if r.goal.startswith(SLOPE_GOAL):
            if l_range is None:
                raise ValueError(f"judged_goals: goal {r.goal!r} is a slope; pass l_range")
            v = flat_in_L(values.to_numpy(), *l_range)
        else:
            v = goal_verdict(values.to_numpy(), r.target)
        verdicts_.append(v.verdict)
        intervals.append(v.interval)
    return out.assign(**{VERDICT: verdicts_, INTERVAL: intervals})


def goals_of(runs: list[tuple[float, pd.DataFrame]]) -> pd.DataFrame:
    """The goals table: :func:`judged_goals` over the runs of :func:`goals_table`."""
    Ls = runs[-1][1]["L"]
    return judged_goals([goals_table(d, bw) for bw, d in runs], (float(Ls.min()), float(Ls.max())))


def run(exp: DecodingCostExperiment) -> dict[str, pd.DataFrame]:
    """The decoding tables of notebook 07 (grid, goals and ED's slopes per run), by file name."""
    runs = grid_runs(exp)
    return {DECODING_COST: cost_table(runs), GOALS: goals_of(runs), SLOPES: slope_table(runs)}


def verdicts(tables) -> list[dict]:
    """No claim of its own: the slopes table (:data:`SLOPES`, through :func:`ed_flat_verdict`)
    feeds the ED claim of :func:`llcpkg.experiments.classification.claim_ed`."""
    return []
