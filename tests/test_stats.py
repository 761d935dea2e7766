"""Intervals over seeds on hand-made values with answers written from the formulas."""
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from llcpkg.stats import Interval, paired_interval, ratio_interval, require_columns, seed_interval, summarise_seeds

T_975_2 = 0.95 / math.sqrt(2 * 0.975 * 0.025)  # t quantile 0.975, 2 d.f.: closed form (2p-1)/sqrt(2p(1-p)) = 4.30265
T_975_3 = 3.182446  # ... with 3 degrees of freedom (tables, 7 digits)


def test_t_interval_on_three_values():
    iv = seed_interval([1.0, 2.0, 3.0])  # mean 2, s = 1
    half = T_975_2 * 1.0 / math.sqrt(3)  # 2.4841
    assert (iv.n, iv.method, iv.level) == (3, "t", 0.95)
    assert iv.mean == pytest.approx(2.0) and iv.std == pytest.approx(1.0)
    assert iv.lo == pytest.approx(2.0 - half, abs=1e-12) and iv.hi == pytest.approx(2.0 + half, abs=1e-12)
    assert half == pytest.approx(2.4841, abs=1e-4)
    assert float(scipy_stats.t.ppf(0.975, 2)) == pytest.approx(T_975_2)  # cross-check of the constant only


def test_t_interval_four_values_and_level():
    iv = seed_interval([0.90, 0.92, 0.91, 0.93])  # mean 0.915, s = sqrt(0.0005/3)
    s = math.sqrt(((-.015) ** 2 + .005 ** 2 + .005 ** 2 + .015 ** 2) / 3)
    assert iv.std == pytest.approx(s)
    assert iv.hi - iv.mean == pytest.approx(T_975_3 * s / 2, rel=1e-6)
    wider = seed_interval([0.90, 0.92, 0.91, 0.93], level=0.99)
    assert wider.lo < iv.lo and wider.hi > iv.hi


def test_interval_text_and_helpers():
    iv = Interval(mean=0.912, std=0.01, lo=0.905, hi=0.919, n=3)
    assert str(iv) == "0.912 [0.905, 0.919]"
    assert f"{Interval(82.04, 1.0, 81.2, 82.8, 3):.1f}" == "82.0 [81.2, 82.8]"
    assert iv.contains(0.91) and not iv.contains(0.92)
    assert iv.above(0.9) and not iv.above(0.91)
    assert iv.below(0.92) and not iv.below(0.91)
    assert iv.describe("acc") == "the 95% t-interval of acc over 3 seeds"
    from dataclasses import replace
    assert replace(iv, over="held-out splits").describe("acc") == "the 95% t-interval of acc over 3 held-out splits"


def test_single_seed_is_zero_width():
    iv = seed_interval([0.8])
    assert (iv.lo, iv.mean, iv.hi, iv.n, iv.method) == (0.8, 0.8, 0.8, 1, "single seed")
    assert math.isnan(iv.std)
    assert f"{iv:.2f}" == "0.80 (one run: no interval)" and "[" not in str(iv)  # never a zero-width [x, x]


def test_bad_values_are_errors():
    with pytest.raises(ValueError):
        seed_interval([])
    with pytest.raises(ValueError):
        seed_interval([1.0, float("nan")])
    with pytest.raises(ValueError):
        seed_interval([1.0, 2.0], method="normal")


def test_bootstrap_is_deterministic_and_contains_the_mean():
    values = [0.81, 0.84, 0.83, 0.86, 0.80]
    a = seed_interval(values, method="bootstrap", rng_seed=3)
    b = seed_interval(values, method="bootstrap", rng_seed=3)
    assert a == b and a.method == "bootstrap"
    assert a.contains(np.mean(values))
    assert min(values) <= a.lo < a.hi <= max(values)  # a percentile bootstrap never leaves the data's range
    assert seed_interval(values, method="bootstrap", rng_seed=4) != a


def test_bootstrap_of_equal_values_has_zero_width():
    iv = seed_interval([2.0, 2.0, 2.0], method="bootstrap")
    assert iv.lo == iv.hi == 2.0


def test_paired_interval_on_known_differences():
    a, b = [0.90, 0.85, 0.95], [0.88, 0.82, 0.94]  # differences 0.02, 0.03, 0.01: mean 0.02, s = 0.01
    iv = paired_interval(a, b)
    half = T_975_2 * 0.01 / math.sqrt(3)
    assert iv.mean == pytest.approx(0.02) and iv.std == pytest.approx(0.01)
    assert (iv.lo, iv.hi) == (pytest.approx(0.02 - half), pytest.approx(0.02 + half))
    unpaired = seed_interval(a)  # the seed-to-seed spread the methods share is removed by pairing
    assert iv.hi - iv.lo < unpaired.hi - unpaired.lo


def test_paired_interval_aligns_series_by_seed():
    a = pd.Series([0.90, 0.85, 0.95], index=[0, 1, 2])
    b = pd.Series([0.82, 0.94, 0.88], index=[1, 2, 0])  # same values as above, other order
    assert paired_interval(a, b).mean == pytest.approx(0.02)
    with pytest.raises(ValueError):
        paired_interval(a, pd.Series([0.8, 0.8, 0.8], index=[0, 1, 5]))
    with pytest.raises(ValueError):
        paired_interval([1.0, 2.0], [1.0])


def test_ratio_interval_on_log_ratios():
    den = np.array([1.0, 2.0, 4.0])
    num = den * np.array([2.0, 2.0 * math.e, 2.0 / math.e])  # log ratios log2 + (0, 1, -1): mean log2, s = 1
    iv = ratio_interval(num, den)
    half = T_975_2 / math.sqrt(3)
    assert iv.mean == pytest.approx(2.0)
    assert (iv.lo, iv.hi) == (pytest.approx(2.0 * math.exp(-half)), pytest.approx(2.0 * math.exp(half)))
    assert iv.std == pytest.approx(1.0) and iv.n == 3


def test_ratio_interval_takes_medians_of_repeats():
    num = np.array([[3.0, 2.0, 100.0], [4.0, 4.0, 0.1], [6.0, 6.0, 6.0]])  # medians 3, 4, 6
    den = np.array([[1.0], [2.0], [3.0]])  # ratios 3, 2, 2
    assert ratio_interval(num, den).mean == pytest.approx((3 * 2 * 2) ** (1 / 3))
    with pytest.raises(ValueError):
        ratio_interval([1.0, -1.0], [1.0, 1.0])


def _per_seed() -> pd.DataFrame:
    return pd.DataFrame({"method": ["MHD"] * 3 + ["ED"] * 3, "bits": [8] * 6, "seed": [0, 1, 2] * 2,
                         "acc": [1.0, 2.0, 3.0, 0.5, 0.5, 0.5]})


def test_summarise_seeds_columns_and_values():
    out = summarise_seeds(_per_seed(), by=["method", "bits"], values=["acc"])
    assert list(out.columns) == ["method", "bits", "acc mean", "acc std", "acc lo", "acc hi", "seeds"]
    assert out["method"].tolist() == ["MHD", "ED"]  # order of first appearance
    mhd = out.iloc[0]
    assert (mhd["acc mean"], mhd["acc std"], mhd["seeds"]) == (2.0, 1.0, 3)
    assert mhd["acc hi"] == pytest.approx(2.0 + T_975_2 / math.sqrt(3), abs=1e-12)
    assert out.iloc[1]["acc lo"] == out.iloc[1]["acc hi"] == 0.5


def test_summarise_seeds_without_groups():
    out = summarise_seeds(_per_seed().iloc[:3], by=[], values=["acc"])
    assert len(out) == 1 and out.loc[0, "acc mean"] == 2.0 and out.loc[0, "seeds"] == 3


def test_missing_or_renamed_column_fails_loudly():
    df = _per_seed().rename(columns={"acc": "accuracy"})
    with pytest.raises(KeyError, match=r"classification.*acc"):
        summarise_seeds(df, by=["method"], values=["acc"], table="classification")
    with pytest.raises(KeyError, match="seed"):
        summarise_seeds(df.drop(columns="seed"), by=["method"], values=["accuracy"])
    with pytest.raises(KeyError, match=r"'ood'.*'AUROC'"):
        require_columns(df, ["method", "AUROC"], table="ood")
    require_columns(df, ["method", "accuracy"], table="classification")  # present: no error


def test_summarise_seeds_repeated_seed_and_lost_value():
    df = _per_seed()
    with pytest.raises(ValueError, match="repeat"):
        summarise_seeds(df.assign(seed=[0, 0, 1, 0, 1, 2]), by=["method"], values=["acc"])
    lost = df.assign(acc=[1.0, np.nan, 3.0, 0.5, 0.5, 0.5])
    with pytest.raises(ValueError, match="seeds \\[1\\]"):
        summarise_seeds(lost, by=["method"], values=["acc"])
    na = summarise_seeds(df.assign(extra=[np.nan] * 3 + [1.0, 2.0, 3.0]), by=["method"], values=["extra"])
    assert math.isnan(na.loc[0, "extra mean"]) and na.loc[1, "extra mean"] == 2.0
