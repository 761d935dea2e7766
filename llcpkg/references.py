"""Adequacy references: what each baseline's architecture reaches on its data (issue #16, item 3).

A verdict that compares against a baseline is only informative when that baseline is trained
adequately. Each entry of :data:`REFERENCES` names what an architecture reaches on a data set,
the source of that number (a public result, or a longer run of ours recorded in ``results/``),
and a tolerance; :func:`gate` turns a verdict whose baseline falls short of ``value − tolerance``
into ``inconclusive (baseline under-trained: X% < Y%)`` through
:func:`llcpkg.verdicts.adequacy_gate`. A reference is a property of the architecture and data,
never of our result: it is not tuned to make a gate pass.

Where no public number fits our architecture and data, the reference is a longer run of ours
(:class:`LongerRun`): its value is not typed but read, when a claim is decided, from the table
that run wrote (e.g. notebook 08's ×4-epoch baseline on Omniglot). A claim passes its ``tables``
reader to :func:`gate`; while that table is missing the verdict is left ungated and its rule says so.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from .stats import Interval, require_columns, seed_interval
from .verdicts import Tables, Verdict, adequacy_gate

__all__ = ["Reference", "LongerRun", "REFERENCES", "reference", "gate", "gate_baseline"]


@dataclass(frozen=True)
class Reference:
    """What ``what`` reaches (``value``, test accuracy as a share) according to ``source``; a
    baseline counts as adequately trained down to ``value − tolerance``."""

    what: str
    value: float
    source: str
    tolerance: float = 0.02

    @property
    def threshold(self) -> float:
        """The gate: the lowest accuracy (share) that counts as adequately trained."""
        return self.value - self.tolerance


@dataclass(frozen=True)
class LongerRun:
    """A reference from a longer run of ours: the mean over seeds of ``column`` in the rows of
    ``table`` whose ``length`` column (an epoch factor, 1 = the standard run) is largest (the longest
    training run in it, which must be longer than ×1), optionally restricted to the rows matching
    ``where`` (column → value). :meth:`resolve` reads it."""

    what: str
    table: str  # results/tables/<table>.csv
    column: str  # the accuracy (share) read
    length: str  # the column giving each run's training length; its maximum is the longer run
    source: str
    where: tuple[tuple[str, object], ...] = ()
    tolerance: float = 0.02

    def resolve(self, tables: Tables) -> Reference:
        """The :class:`Reference` this run gives, read through ``tables`` (name → DataFrame; a
        missing table raises FileNotFoundError, a missing column KeyError, no matching row or no run
        longer than ×1 LookupError)."""
        df: pd.DataFrame = tables(self.table)
        require_columns(df, [self.column, self.length, *(c for c, _ in self.where)], self.table)
        for col, value in self.where:
            df = df[df[col] == value]
        if df.empty:
            raise LookupError(f"table {self.table!r} has no rows with {dict(self.where)}")
        longest = df[self.length].max()
        if longest <= 1:
            raise LookupError(f"table {self.table!r} holds no run longer than ×1 ({self.length} = {longest:g} only; "
                              "the quick look runs ×1 only)")
        rows = df[df[self.length] == longest]
        return Reference(self.what, float(rows[self.column].mean()),
                         f"{self.source}: {self.column!r} at {self.length} = {longest:g}, mean of {len(rows)} "
                         f"run(s), results/tables/{self.table}.csv", self.tolerance)


REFERENCES: dict[str, Reference | LongerRun] = {
    "smallcnn/fashion_mnist": Reference(
        "a small conv net on Fashion-MNIST (test accuracy)", 0.918,
        "../shared/README.md §1, the quick CPU calibration: a 5-conv CNN of width 32, 3 epochs, 91.8%",
        tolerance=0.02),
    "smallcnn/omniglot": LongerRun(
        "the profile's small conv net on the Omniglot subset (test accuracy)", "adequacy_trend", "baseline",
        "epochs factor", "our longer run (notebook 08, every stage's epochs × the largest factor)",
        tolerance=0.02),
    "mlp1000/fashion_mnist": Reference(
        "a ReLU MLP with one hidden layer of 1,000 units on Fashion-MNIST (test accuracy)", 0.900,
        "the Fashion-MNIST README's benchmark table (github.com/zalandoresearch/fashion-mnist): "
        "an MLP 256-128-64, no preprocessing, 0.900", tolerance=0.02),
    "mlp100x3/fashion_mnist": Reference(
        "a ReLU MLP with three hidden layers of 100 units on Fashion-MNIST (test accuracy)", 0.900,
        "the Fashion-MNIST README's benchmark table (github.com/zalandoresearch/fashion-mnist): "
        "an MLP 256-128-64 (a net of the same depth class, wider), no preprocessing, 0.900", tolerance=0.03),
}


def reference(key: str, tables: Tables | None = None) -> Reference:
    """The reference named ``key`` (e.g. ``"smallcnn/fashion_mnist"``); unknown keys are an error.
    A :class:`LongerRun` entry is read through ``tables`` (required for it)."""
    if key not in REFERENCES:
        raise KeyError(f"no adequacy reference {key!r}; known: {sorted(REFERENCES)}")
    ref = REFERENCES[key]
    if isinstance(ref, LongerRun):
        if tables is None:
            raise LookupError(f"reference {key!r} is read from our longer run ({ref.table}): no tables given")
        return ref.resolve(tables)
    return ref


def gate(verdict: Verdict, baseline: Interval | float, key: str, tables: Tables | None = None) -> Verdict:
    """``verdict`` gated on the baseline (accuracy share, an interval over seeds) reaching the
    threshold of reference ``key``; the rule text names the reference and its source. For a
    :class:`LongerRun` reference pass ``tables``; while its table (or its row) is missing the
    verdict is returned ungated, with the rule saying so (never forced either way)."""
    try:
        ref = reference(key, tables)
    except (FileNotFoundError, LookupError) as e:
        if isinstance(e, KeyError):
            raise
        return Verdict(verdict.verdict, f"{verdict.rule}; not gated: reference {key!r} not available ({e})",
                       verdict.interval, verdict.seeds)
    b = baseline
    pct = (replace(b, mean=100 * b.mean, std=100 * b.std, lo=100 * b.lo, hi=100 * b.hi)
           if isinstance(b, Interval) else 100 * float(b))
    return adequacy_gate(verdict, pct, 100 * ref.threshold, f"the baseline's test accuracy",
                         f"{ref.what}: {100 * ref.value:.1f}% per {ref.source}, less {100 * ref.tolerance:.1f} points")


def gate_baseline(verdict: Verdict, baselines, architecture: str, dataset: str, tables: Tables | None = None,
                  over: str = "") -> Verdict:
    """``verdict`` gated on ``baselines`` (the baseline's test accuracy per seed, shares, shape (seeds,))
    by the reference ``<architecture>/<dataset>`` when one is declared; otherwise returned with its
    rule saying that no reference exists for that pair (never silently, never forced). ``over``:
    what the values are, when not seeds (:attr:`llcpkg.stats.Interval.over`)."""
    key = f"{architecture}/{dataset}"
    if key not in REFERENCES:
        return Verdict(verdict.verdict, f"{verdict.rule}; not gated: no adequacy reference {key!r}",
                       verdict.interval, verdict.seeds)
    return gate(verdict, replace(seed_interval(np.asarray(baselines, dtype=float)), over=over), key, tables)
