"""Adequacy references: what each baseline's architecture reaches on its data (issue #16, item 3).

A verdict that compares against a baseline is only informative when that baseline is trained
adequately. Each entry of :data:`REFERENCES` names what an architecture reaches on a data set,
the source of that number (a public result, or a longer run of ours recorded in ``results/``),
and a tolerance; :func:`gate` turns a verdict whose baseline falls short of ``value − tolerance``
into ``inconclusive (baseline under-trained: X% < Y%)`` through
:func:`llcpkg.verdicts.adequacy_gate`. A reference is a property of the architecture and data,
never of our result: it is not tuned to make a gate pass.
"""
from __future__ import annotations

from dataclasses import dataclass

from .stats import Interval
from .verdicts import Verdict, adequacy_gate

__all__ = ["Reference", "REFERENCES", "reference", "gate"]


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


REFERENCES: dict[str, Reference] = {
    "smallcnn/fashion_mnist": Reference(
        "a small conv net on Fashion-MNIST (test accuracy)", 0.918,
        "../shared/README.md §1, the quick CPU calibration: a 5-conv CNN of width 32, 3 epochs, 91.8%",
        tolerance=0.02),
    "mlp1000/fashion_mnist": Reference(
        "a ReLU MLP with one hidden layer of 1,000 units on Fashion-MNIST (test accuracy)", 0.877,
        "Xiao, Rasul & Vollgraf 2017 (arXiv 1708.07747), benchmark table: scikit-learn MLPClassifier, ReLU, "
        "100 hidden units, 87.7% (a wider net reaches at least as much)", tolerance=0.02),
    "mlp100x3/fashion_mnist": Reference(
        "a ReLU MLP with three hidden layers of 100 units on Fashion-MNIST (test accuracy)", 0.877,
        "Xiao, Rasul & Vollgraf 2017 (arXiv 1708.07747), benchmark table: scikit-learn MLPClassifier, ReLU, "
        "100 hidden units, 87.7% (one hidden layer of the same width)", tolerance=0.02),
}


def reference(key: str) -> Reference:
    """The reference named ``key`` (e.g. ``"smallcnn/fashion_mnist"``); unknown keys are an error."""
    if key not in REFERENCES:
        raise KeyError(f"no adequacy reference {key!r}; known: {sorted(REFERENCES)}")
    return REFERENCES[key]


def gate(verdict: Verdict, baseline: Interval | float, key: str) -> Verdict:
    """``verdict`` gated on the baseline (accuracy share, an interval over seeds) reaching the
    threshold of reference ``key``; the rule text names the reference and its source."""
    ref = reference(key)
    b = baseline
    pct = (Interval(100 * b.mean, 100 * b.std, 100 * b.lo, 100 * b.hi, b.n, b.level, b.method)
           if isinstance(b, Interval) else 100 * float(b))
    return adequacy_gate(verdict, pct, 100 * ref.threshold, f"the baseline's test accuracy",
                         f"{ref.what}: {100 * ref.value:.1f}% per {ref.source}, less {100 * ref.tolerance:.1f} points")
