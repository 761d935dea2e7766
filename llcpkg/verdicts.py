"""The verdict vocabulary and the rules that turn an interval into a verdict (issue #16).

A claim ``holds`` only when its whole interval satisfies it, ``does not hold here`` only when the
whole interval contradicts it, and is ``inconclusive`` otherwise. ``partly`` is kept for claims
with several parts (:func:`combine`) and names the part that fails. Every rule returns a
:class:`Verdict` whose ``rule`` states the rule in words with its threshold, so the scoreboard
row carries the rule it was decided by.

One seed (n < 2): the value is read as a zero-width interval and decided as such, and the verdict
is marked ``(1 seed)`` (e.g. ``"holds (1 seed)"``), so the one-seed quick run still reads, but never
as if it had an interval. A rule called with ``min_seeds=k`` reads fewer than k seeds as
``inconclusive (1 seed < 3 required)``. :attr:`Verdict.kind` gives the bare verdict.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .stats import Interval, seed_interval

__all__ = ["HOLDS", "FAILS", "INCONCLUSIVE", "PARTLY", "NOT_RUN", "KINDS", "Verdict", "at_least", "at_most",
           "within", "combine", "adequacy_gate", "timing_rule", "Tables", "Rule", "collect", "pct", "claim_row", "reader",
           "CLAIM_COLUMNS"]

HOLDS, FAILS, INCONCLUSIVE, PARTLY, NOT_RUN = "holds", "does not hold here", "inconclusive", "partly", "not run"
KINDS = (HOLDS, FAILS, INCONCLUSIVE, PARTLY, NOT_RUN)
_LABELS = {FAILS: "fails", PARTLY: "partly", INCONCLUSIVE: "inconclusive", NOT_RUN: "not run"}


@dataclass(frozen=True)
class Verdict:
    """One claim's verdict: ``verdict`` (a kind in :data:`KINDS`, maybe with a note in parentheses),
    ``rule`` (the rule in words, threshold included), ``interval`` (the interval it was decided
    on, as text) and ``seeds`` (how many seeds that interval rests on)."""
    verdict: str
    rule: str
    interval: str = ""
    seeds: int = 0

    @property
    def kind(self) -> str:
        """The bare verdict, without its note: ``"holds (1 seed)"`` → ``"holds"``."""
        for k in KINDS:
            if self.verdict == k or self.verdict.startswith(k + " ("):
                return k
        raise ValueError(f"unknown verdict {self.verdict!r}")

    def as_row(self) -> dict[str, object]:
        """The columns ``verdict``, ``rule``, ``interval``, ``seeds`` of ``claims.csv``."""
        return {"verdict": self.verdict, "rule": self.rule, "interval": self.interval, "seeds": self.seeds}


def _noted(kind: str, notes: list[str]) -> str:
    """``"holds"`` + notes → ``"holds (1 seed; …)"``."""
    return f"{kind} ({'; '.join(notes)})" if notes else kind


def _as_interval(value: Interval | float) -> Interval:
    return value if isinstance(value, Interval) else seed_interval([float(value)])


def _decide(iv: Interval, holds: bool, fails: bool, rule: str, fmt: str, min_seeds: int) -> Verdict:
    """The verdict of a rule once its two conditions on ``iv`` are known (never both true)."""
    if iv.n < min_seeds:
        return Verdict(_noted(INCONCLUSIVE, [f"{iv.n} seed{'s' * (iv.n != 1)} < {min_seeds} required"]), rule,
                       format(iv, fmt), iv.n)
    kind = HOLDS if holds else FAILS if fails else INCONCLUSIVE
    return Verdict(_noted(kind, ["1 seed"] if iv.n < 2 else []), rule, format(iv, fmt), iv.n)


def at_least(interval: Interval | float, threshold: float, what: str = "the quantity", unit: str = "",
             fmt: str = ".3f", min_seeds: int = 1) -> Verdict:
    """Holds if the whole interval is ≥ ``threshold`` (lo ≥ t), does not hold if it is wholly
    below (hi < t), inconclusive if it straddles ``threshold``."""
    iv = _as_interval(interval)
    rule = (f"holds if {iv.describe(what)} lies at or above {threshold:{fmt}}{unit}, "
            f"does not hold if it lies below, inconclusive if it straddles it")
    return _decide(iv, iv.lo >= threshold, iv.below(threshold), rule, fmt, min_seeds)


def at_most(interval: Interval | float, threshold: float, what: str = "the quantity", unit: str = "",
            fmt: str = ".3f", min_seeds: int = 1) -> Verdict:
    """Holds if the whole interval is ≤ ``threshold`` (hi ≤ t), does not hold if it is wholly
    above (lo > t), inconclusive if it straddles ``threshold``."""
    iv = _as_interval(interval)
    rule = (f"holds if {iv.describe(what)} lies at or below {threshold:{fmt}}{unit}, "
            f"does not hold if it lies above, inconclusive if it straddles it")
    return _decide(iv, iv.hi <= threshold, iv.above(threshold), rule, fmt, min_seeds)


def within(interval: Interval | float, lo: float, hi: float, what: str = "the quantity", unit: str = "",
           fmt: str = ".3f", min_seeds: int = 1) -> Verdict:
    """Holds if the whole interval lies in the band ``[lo, hi]``, does not hold if it lies wholly
    outside it (disjoint), inconclusive if it crosses an edge."""
    if lo > hi:
        raise ValueError(f"within: empty band [{lo}, {hi}]")
    iv = _as_interval(interval)
    rule = (f"holds if {iv.describe(what)} lies within [{lo:{fmt}}, {hi:{fmt}}]{unit}, "
            f"does not hold if it lies wholly outside, inconclusive if it crosses an edge")
    return _decide(iv, lo <= iv.lo and iv.hi <= hi, iv.below(lo) or iv.above(hi), rule, fmt, min_seeds)


def combine(parts: dict[str, Verdict]) -> Verdict:
    """One verdict for a claim with several named parts.

    Holds if every part holds; does not hold if every part fails; inconclusive if every part is
    inconclusive; not run if none was run. A mix that includes a holding part is ``partly`` and
    names the other parts by kind: ``"partly (fails: cost flat in L)"``. A mix with no holding
    part (fails and inconclusive) does not hold, naming the inconclusive parts: no part is
    confirmed and one is contradicted. Inconclusive and not-run parts alone are inconclusive, naming
    the parts not run. ``seeds`` is the fewest seeds of any part that was run.
    """
    if not parts:
        raise ValueError("combine: no parts")
    kinds = {name: v.kind for name, v in parts.items()}
    by_kind = {k: [name for name, kk in kinds.items() if kk == k] for k in KINDS}
    seeds = min((v.seeds for v in parts.values() if v.kind != NOT_RUN), default=0)
    rule = "; ".join(f"{name}: {v.rule}" for name, v in parts.items())
    interval = "; ".join(f"{name}: {v.interval}" for name, v in parts.items() if v.interval)

    def notes_for(kinds_: tuple[str, ...]) -> list[str]:
        return [f"{_LABELS[k]}: {', '.join(by_kind[k])}" for k in kinds_ if by_kind[k]]

    single = ["1 seed"] if seeds == 1 else []
    if len(by_kind[NOT_RUN]) == len(parts):
        return Verdict(NOT_RUN, rule, interval, 0)
    for k in (HOLDS, FAILS, INCONCLUSIVE):
        if len(by_kind[k]) == len(parts):
            return Verdict(_noted(k, single), rule, interval, seeds)
    others = (FAILS, PARTLY, INCONCLUSIVE, NOT_RUN)
    if by_kind[HOLDS] or by_kind[PARTLY]:
        return Verdict(_noted(PARTLY, notes_for(others) + single), rule, interval, seeds)
    if by_kind[FAILS]:
        return Verdict(_noted(FAILS, notes_for((INCONCLUSIVE, NOT_RUN)) + single), rule, interval, seeds)
    return Verdict(_noted(INCONCLUSIVE, notes_for((NOT_RUN,)) + single), rule, interval, seeds)


def adequacy_gate(verdict: Verdict, baseline: Interval | float, reference: float, what: str, source: str,
                  unit: str = "%", fmt: str = ".1f") -> Verdict:
    """Gate ``verdict`` on its baseline being trained adequately.

    ``reference`` is what the baseline's architecture reaches on that data according to ``source``
    (a public result, or a longer run of ours in ``results/``). The baseline counts as
    under-trained only when the *upper end* of its interval lies below ``reference``, i.e. the
    shortfall exceeds the seed spread; then any decided verdict (holds, fails, partly) becomes
    ``inconclusive (baseline under-trained: 82.0% < 89.0%)`` (the baseline's mean against the
    reference), never forced either way. ``not run`` stays. The gate is appended to the rule.
    """
    iv = _as_interval(baseline)
    rule = (f"{verdict.rule}; gated: inconclusive if {iv.describe(what)} lies wholly below "
            f"{reference:{fmt}}{unit} ({source})")
    if verdict.kind == NOT_RUN or not iv.below(reference):
        return Verdict(verdict.verdict, rule, verdict.interval, verdict.seeds)
    note = f"baseline under-trained: {iv.mean:{fmt}}{unit} < {reference:{fmt}}{unit}"
    return Verdict(_noted(INCONCLUSIVE, [note] + (["1 seed"] if verdict.seeds == 1 else [])), rule,
                   verdict.interval, verdict.seeds)


def timing_rule(ratio: Interval | float, goal: float, direction: str, noise_band: float = 0.10,
                what: str = "the time ratio", fmt: str = ".2f", min_seeds: int = 1) -> Verdict:
    """A timing claim on a ratio of medians of repeated measurements (:func:`llcpkg.stats.ratio_interval`).

    ``direction="below"``: the claim is ratio < ``goal``; it holds if the whole interval lies
    below ``goal / (1 + noise_band)`` and does not hold if it lies wholly above
    ``goal · (1 + noise_band)``. ``direction="above"`` mirrors it. A ratio whose interval reaches
    into the noise band around ``goal`` is inconclusive. The default band, 10%, is a guess at
    run-to-run timing noise on a shared CPU; a measured band should replace it.
    """
    if direction not in ("below", "above"):
        raise ValueError(f"direction must be 'below' or 'above', not {direction!r}")
    iv = _as_interval(ratio)
    lo_band, hi_band = goal / (1 + noise_band), goal * (1 + noise_band)
    rule = (f"holds if {iv.describe(what)} lies {direction} {goal:{fmt}} by more than the "
            f"{noise_band:.0%} noise band ({lo_band:{fmt}}–{hi_band:{fmt}}), does not hold if it lies beyond "
            f"the band on the other side, inconclusive if it reaches into the band")
    if direction == "below":
        return _decide(iv, iv.below(lo_band), iv.above(hi_band), rule, fmt, min_seeds)
    return _decide(iv, iv.above(hi_band), iv.below(lo_band), rule, fmt, min_seeds)


# ----------------------------------------------------------------------------- claim rows
Tables = Callable[[str], Any]  # table name -> its DataFrame; raises FileNotFoundError when it was not run
Rule = Callable[[Tables], list[dict]]  # the claims rows (CLAIM_COLUMNS) of one claim

CLAIM_COLUMNS = ["claim", "paper", "dataset", "ours", "verdict", "seeds", "interval", "rule"]  # claims.csv


def reader(tables: dict[str, Any], results_dir: str | Path | None = None) -> Tables:
    """``tables`` (name → DataFrame, e.g. a notebook's own) as :data:`Tables`; a name not there is read
    from ``results_dir/tables`` when given (e.g. another notebook's table a reference reads), and is
    otherwise ``FileNotFoundError``, which rules read as "not run" (never a KeyError: that means a
    missing column)."""
    def t(name: str) -> Any:
        if name in tables:
            return tables[name]
        if results_dir is not None:
            from .results import read_table
            try:
                return read_table(name, results_dir)
            except FileNotFoundError:
                pass
        raise FileNotFoundError(f"no table {name}.csv")
    return t


def pct(x: float) -> str:
    """A share as a percentage with one decimal: 0.1234 → ``"12.3%"``."""
    return f"{100 * x:.1f}%"


def claim_row(claim: str, paper: str, dataset: str, ours: str, verdict: Verdict) -> dict[str, object]:
    """One row of ``claims.csv`` (:data:`CLAIM_COLUMNS`): what is claimed, the paper's figure, the
    data set, our numbers in words, and the verdict with its seeds, interval and rule."""
    return {"claim": claim, "paper": paper, "dataset": dataset, "ours": ours, **verdict.as_row()}


def collect(rules: dict[str, Rule], tables: Tables) -> list[dict]:
    """The rows of every rule, in order. A rule whose table is missing (``FileNotFoundError``: the
    notebook was not run) gives one ``not run`` row with the rule's name as its claim and the error
    as ``ours``. A missing column or row is a ``KeyError``/``IndexError`` and propagates: a renamed
    column must fail loudly, never read as "not run"."""
    rows: list[dict] = []
    for name, rule in rules.items():
        try:
            rows += rule(tables)
        except FileNotFoundError as e:
            rows.append(claim_row(name, "", "", f"({type(e).__name__}: {e})",
                                  Verdict(NOT_RUN, "the table this claim reads was not produced")))
    return rows
