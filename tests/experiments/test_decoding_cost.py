"""Notebook 07's timing verdicts (llcpkg.experiments.decoding_cost): the log-log slope test of
"ED flat in L" and the timing goals, decided on repeated runs with a noise band, on hand-made
per-run values with known intervals."""
import math

import numpy as np
import pandas as pd
import pytest

from llcpkg.experiments import decoding_cost as D
from llcpkg.verdicts import FAILS, HOLDS, INCONCLUSIVE, NOT_RUN


@pytest.mark.parametrize("slopes, kind", [
    ((0.0, 0.01, -0.01), HOLDS),  # slope [-0.025, 0.025]: growth ≤ 1.19 < 2 / 1.1
    ((0.50, 0.52, 0.48), FAILS),  # grows like sqrt(L): far above 2 × 1.1
    ((0.0, 0.1, 0.2), INCONCLUSIVE),  # straddles
    ((0.104, 0.104, 0.104), INCONCLUSIVE),  # the old flip: ×2.05 over 1000× L lies in the noise band 1.82–2.2
    ((0.09, 0.09, 0.09), INCONCLUSIVE),  # ×1.86: under the goal, but inside the band
    ((0.05, 0.05, 0.05), HOLDS),  # ×1.41: below the band
])
def test_flat_in_L_is_a_slope_test_with_a_noise_band(slopes, kind):
    v = D.flat_in_L(np.array(slopes), 1e3, 1e6)
    assert v.kind == kind and v.seeds == 3
    assert v.interval.startswith(f"slope {np.mean(slopes):.3f}")
    assert "10% noise band" in v.rule and "over 3 runs" in v.rule


def test_the_slope_goal_follows_the_measured_range_of_L():
    # over one decade the goal allows ×10**0.1 = 1.26; slope 0.09 is inside the band there too
    assert D.flat_in_L(np.array([0.0, 0.001, -0.001]), 1e3, 1e4).kind == HOLDS
    assert D.flat_in_L(np.array([0.3, 0.31, 0.29]), 1e3, 1e4).kind == FAILS


def _slope_rows(per_run: dict[int, list[float]]) -> pd.DataFrame:
    return pd.DataFrame([{"run": r, "k": k, "batch": 1, "L min": 1000, "L max": 10**6, "points": 4, "slope": s}
                         for r, ss in per_run.items() for k, s in zip((16, 64), ss)])


def test_ed_flat_verdict_averages_code_lengths_within_a_run():
    # per run the mean over k: 0.0, 0.01, -0.01 → holds, although k = 64 alone grows
    v = D.ed_flat_verdict(_slope_rows({0: [-0.1, 0.1], 1: [-0.09, 0.11], 2: [-0.11, 0.09]}))
    assert v.kind == HOLDS and "k ∈ [16, 64]" in v.rule
    with pytest.raises(KeyError, match="slope"):
        D.ed_flat_verdict(_slope_rows({0: [0.0, 0.0]}).drop(columns=["slope"]))
    empty = D.ed_flat_verdict(_slope_rows({}).reindex(columns=["run", "k", "batch", "L min", "L max", "slope"]))
    assert empty.kind == NOT_RUN and "three L" in empty.rule  # the smoke profile's two L: no slope to test


@pytest.mark.parametrize("values, target, kind", [
    ((0.5, 0.52, 0.55), "<= 1", HOLDS),
    ((1.02, 0.98, 1.0), "<= 1", INCONCLUSIVE),  # in the noise band around 1
    ((2.0, 2.1, 2.2), "<= 1", FAILS),
    ((300, 320, 310), ">= 100", HOLDS),
    ((40, 42, 44), ">= 100", FAILS),
    ((95, 105, 100), ">= 100", INCONCLUSIVE),
])
def test_goal_verdicts_use_the_interval_over_runs(values, target, kind):
    assert D.goal_verdict(np.array(values), target).kind == kind


def _grid(slope: float, runs: int = 3) -> list[tuple[float, pd.DataFrame]]:
    """Benchmark grids whose ED time grows exactly like L ** slope, plus an MHD row."""
    Ls = [1_000, 10_000, 100_000, 1_000_000]
    out = []
    for r in range(runs):
        rows = [dict(L=L, k=k, d=np.nan, batch=b, method="ed", family="llcpkg", us_per_query=(1 + r / 10) * L ** slope,
                     codebook_bytes=L * k // 8) for L in Ls for k in (16, 64) for b in (1, 1024)]
        out.append((1e9, pd.DataFrame(rows)))
    return out


def test_slope_table_fits_every_run_k_and_batch():
    t = D.slope_table(_grid(0.25))
    assert len(t) == 3 * 2 * 2 and np.allclose(t["slope"], 0.25)
    assert t[["L min", "L max", "points"]].drop_duplicates().values.tolist() == [[1000, 1_000_000, 4]]
    assert D.ed_flat_verdict(t).kind == FAILS
    two_L = [(bw, df[df.L <= 10_000]) for bw, df in _grid(0.0)]
    assert D.slope_table(two_L).empty  # a slope needs three L


def test_judged_goals_add_a_verdict_from_the_runs():
    runs = [pd.DataFrame({"goal": ["MHD / faiss", f"{D.SLOPE_GOAL} over L"], "batch": [1, 1],
                          "measured": [m, s], "target": ["<= 1", "<= 0.1"]})
            for m, s in ((0.5, 0.0), (0.55, 0.01), (0.52, -0.01))]
    g = D.judged_goals(runs, (1e3, 1e6))
    assert g[D.VERDICT].tolist() == [HOLDS, HOLDS] and g["runs"].tolist() == [3, 3]
    assert g[D.INTERVAL].iloc[1].startswith("slope 0.000") and math.isclose(g["measured"].iloc[0], 0.52)
    with pytest.raises(ValueError, match="l_range"):
        D.judged_goals(runs)
    assert "holds: MHD / faiss, batch 1: median 0.52" in D.describe_goals(g)
