"""Intervals over seeds: the spread that a verdict rests on (issue #16).

Every number on the scoreboard is the mean over a few seeds (3 in the ``cpu`` profile) with a
95% interval. The default is the Student-t interval on the mean, ``mean ± t_{1-α/2, n-1} · s/√n``
with the sample standard deviation ``s`` (ddof = 1). It is the usual choice for 3–5 seeds: a
percentile bootstrap of 3 values has only 10 distinct resampled means, so its interval is coarse
and too narrow (it never reaches beyond the extreme values). ``method="bootstrap"`` is offered for
larger seed counts and is deterministic given ``rng_seed``.

One seed: the interval has zero width (``lo = hi = mean``, ``std`` NaN) and ``method`` is
``"single seed"``; :mod:`llcpkg.verdicts` decides on the point value but marks the verdict
``(1 seed)``, or reads it as inconclusive when a rule asks for ``min_seeds`` > 1.

Comparisons of two methods run on the same seeds use :func:`paired_interval` (the interval of the
per-seed differences), timing ratios use :func:`ratio_interval` (t on log ratios).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats as _scipy_stats

__all__ = ["Interval", "seed_interval", "paired_interval", "ratio_interval", "summarise_seeds",
           "require_columns", "METHODS"]

METHODS = ("t", "bootstrap")
SINGLE = "single seed"
LOG_RATIO = "t (log ratio)"


@dataclass(frozen=True)
class Interval:
    """A mean over ``n`` seeds with its ``level`` (e.g. 0.95) interval ``[lo, hi]``.

    ``method`` is ``"t"``, ``"bootstrap"``, ``"single seed"`` (n = 1: zero width, ``std`` NaN) or
    ``"t (log ratio)"`` (:func:`ratio_interval`: ``mean``, ``lo``, ``hi`` are ratios, ``std`` is
    the standard deviation of the log ratios).
    """
    mean: float
    std: float
    lo: float
    hi: float
    n: int
    level: float = 0.95
    method: str = "t"
    over: str = ""  # what the n values are, for rule texts ("held-out splits"); "": seeds (ratios: runs)

    def __format__(self, spec: str) -> str:
        spec = spec or ".3f"
        if self.method == SINGLE:  # a zero-width "[x, x]" would read as certainty
            return f"{self.mean:{spec}} (one run: no interval)"
        return f"{self.mean:{spec}} [{self.lo:{spec}}, {self.hi:{spec}}]"

    def __str__(self) -> str:
        """``"0.912 [0.905, 0.919]"``, or ``"0.912 (one run: no interval)"`` from one value;
        ``f"{iv:.1f}"`` picks another number format."""
        return format(self)

    def contains(self, x: float) -> bool:
        """``lo ≤ x ≤ hi``."""
        return self.lo <= x <= self.hi

    def above(self, x: float) -> bool:
        """The whole interval lies above ``x``: ``lo > x``."""
        return self.lo > x

    def below(self, x: float) -> bool:
        """The whole interval lies below ``x``: ``hi < x``."""
        return self.hi < x

    def describe(self, what: str = "the quantity") -> str:
        """The interval of ``what`` in words, for rule texts: ``"the 95% t-interval of acc over 3 seeds"``."""
        if self.method == SINGLE:
            return f"the value of {what} from 1 seed (no interval)"
        kind = {"t": "t-interval", "bootstrap": "percentile-bootstrap interval",
                LOG_RATIO: "t-interval (on log ratios)"}.get(self.method, f"{self.method} interval")
        over = self.over or ("runs" if self.method == LOG_RATIO else "seeds")
        return f"the {self.level:.0%} {kind} of {what} over {self.n} {over}"


def _as_values(values: Iterable[float], what: str = "values") -> np.ndarray:
    """``values`` as a 1-D float array; empty or non-finite values are an error, never dropped."""
    x = np.asarray(list(values) if not isinstance(values, (np.ndarray, pd.Series)) else values, dtype=float)
    x = x.ravel()
    if x.size == 0:
        raise ValueError(f"{what}: no values to summarise")
    if not np.isfinite(x).all():
        raise ValueError(f"{what}: non-finite values {x.tolist()}")
    return x


def seed_interval(values: Iterable[float], level: float = 0.95, method: str = "t",
                  resamples: int = 10_000, rng_seed: int = 0) -> Interval:
    """The ``level`` interval on the mean of ``values`` (one value per seed, shape (n,)).

    ``method="t"`` (default, for 3–5 seeds): ``mean ± t_{(1+level)/2, n-1} · s/√n``, s with ddof = 1.
    ``method="bootstrap"``: percentile interval of the means of ``resamples`` resamples (with
    replacement, size n) drawn by ``numpy.random.default_rng(rng_seed)``; deterministic.
    n = 1 gives ``lo = hi = mean``, ``std`` NaN, ``method="single seed"`` whatever ``method`` says.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, not {method!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), not {level}")
    x = _as_values(values)
    n, mean = x.size, float(x.mean())
    if n == 1:
        return Interval(mean, math.nan, mean, mean, 1, level, SINGLE)
    std = float(x.std(ddof=1))
    if method == "t":
        half = float(_scipy_stats.t.ppf((1 + level) / 2, n - 1)) * std / math.sqrt(n)
        return Interval(mean, std, mean - half, mean + half, n, level, "t")
    rng = np.random.default_rng(rng_seed)
    means = x[rng.integers(0, n, size=(resamples, n))].mean(axis=1)  # (resamples,)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return Interval(mean, std, float(lo), float(hi), n, level, "bootstrap")


def paired_interval(a: Sequence[float] | pd.Series, b: Sequence[float] | pd.Series, level: float = 0.95,
                    method: str = "t", **kw) -> Interval:
    """Interval on the mean of the per-seed differences ``a − b`` of two methods run on the same seeds.

    ``a`` and ``b`` are aligned by position (shape (n,) each), or by index when both are Series
    indexed by seed; then their seed sets must be equal. Pairing removes the seed-to-seed
    variation the two methods share, so it is tighter than comparing two separate intervals.
    """
    if isinstance(a, pd.Series) and isinstance(b, pd.Series):
        if set(a.index) != set(b.index) or a.index.has_duplicates or b.index.has_duplicates:
            raise ValueError(f"paired_interval: seeds differ or repeat: {sorted(a.index)} vs {sorted(b.index)}")
        b = b.loc[a.index]
    x, y = _as_values(a, "a"), _as_values(b, "b")
    if x.shape != y.shape:
        raise ValueError(f"paired_interval: {x.size} values of a against {y.size} of b")
    return seed_interval(x - y, level, method, **kw)


def ratio_interval(numerator: np.ndarray | Sequence, denominator: np.ndarray | Sequence,
                   level: float = 0.95) -> Interval:
    """Interval on the ratio ``numerator / denominator`` of two timings, paired by run.

    Each argument is shape (runs,) of per-run medians, or (runs, repeats) of raw repeated
    measurements whose median per run is taken first. The t-interval is taken over the
    ``runs`` log ratios and back-transformed with ``exp``: ``mean`` is the geometric-mean ratio,
    ``std`` the standard deviation of the log ratios. One run gives a zero-width interval.
    """
    num, den = (np.asarray(v, dtype=float) for v in (numerator, denominator))
    num, den = (np.median(v, axis=1) if v.ndim == 2 else v for v in (num, den))
    if num.shape != den.shape:
        raise ValueError(f"ratio_interval: {num.size} runs of the numerator against {den.size} of the denominator")
    if (num <= 0).any() or (den <= 0).any():
        raise ValueError("ratio_interval: timings must be positive")
    logs = seed_interval(np.log(num / den), level, "t")
    std = logs.std if logs.n > 1 else math.nan
    return Interval(math.exp(logs.mean), std, math.exp(logs.lo), math.exp(logs.hi), logs.n, level,
                    LOG_RATIO if logs.n > 1 else SINGLE)


def require_columns(df: pd.DataFrame, columns: Iterable[str], table: str) -> None:
    """Raise ``KeyError`` naming ``table`` and every missing column: a renamed column must fail
    loudly, never read as "not run"."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise KeyError(f"table {table!r} has no column(s) {missing}; its columns are {list(df.columns)}")


def summarise_seeds(df: pd.DataFrame, by: list[str], values: list[str], seed_col: str = "seed",
                    level: float = 0.95, method: str = "t", table: str = "table") -> pd.DataFrame:
    """The summary table beside a per-seed table: one row per group of ``by``.

    Columns: ``by``, then for each ``v`` in ``values`` ``"<v> mean"``, ``"<v> std"``, ``"<v> lo"``,
    ``"<v> hi"`` (:func:`seed_interval` with ``level``, ``method``), then ``seeds`` (the number of
    seeds in the group). Groups keep the order of first appearance; NaN keys form their own group.
    A missing column raises ``KeyError`` naming ``table``; a seed repeated in a group raises
    ``ValueError``. A value that is NaN for every seed of a group (a metric that does not apply
    there) gives NaN; NaN for some seeds only (a lost number) raises ``ValueError``.
    """
    require_columns(df, [*by, *values, seed_col], table)
    groups = df.groupby(by, sort=False, dropna=False) if by else [((), df)]
    rows = []
    for key, g in groups:
        key = key if isinstance(key, tuple) else (key,)
        if g[seed_col].duplicated().any():
            raise ValueError(f"table {table!r}, group {dict(zip(by, key))}: seeds repeat: {g[seed_col].tolist()}")
        row = dict(zip(by, key))
        for v in values:
            col = g[v].astype(float)
            if col.isna().all():
                row.update({f"{v} mean": math.nan, f"{v} std": math.nan, f"{v} lo": math.nan, f"{v} hi": math.nan})
                continue
            if col.isna().any():
                raise ValueError(f"table {table!r}, group {dict(zip(by, key))}: column {v!r} is missing for "
                                 f"seeds {g.loc[col.isna(), seed_col].tolist()}")
            iv = seed_interval(col.to_numpy(), level, method)
            row.update({f"{v} mean": iv.mean, f"{v} std": iv.std, f"{v} lo": iv.lo, f"{v} hi": iv.hi})
        row["seeds"] = len(g)
        rows.append(row)
    return pd.DataFrame(rows, columns=[*by, *(f"{v} {s}" for v in values for s in ("mean", "std", "lo", "hi")),
                                       "seeds"])
