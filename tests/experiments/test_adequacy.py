"""The adequacy experiment (llcpkg.experiments.adequacy): its claim rule on hand-made per-seed
trend tables, the factor reading on a hand-made factor table, and a toy run end to end."""
import pandas as pd
import pytest

from llcpkg.experiments import adequacy as A
from llcpkg.verdicts import FAILS, HOLDS, INCONCLUSIVE, NOT_RUN, PARTLY


def _trend(gaps: dict[int, dict[str, list[float]]], baseline: float = 0.85) -> pd.DataFrame:
    """Per-seed trend rows: {epoch factor: {gap column: one value per seed}}."""
    rows = []
    for factor, cols in gaps.items():
        n = len(next(iter(cols.values())))
        for s in range(n):
            rows.append({"seed": s, "dataset": "omniglot", A.LENGTH: factor, A.BASELINE: baseline,
                         **{c: v[s] for c, v in cols.items()}})
    return pd.DataFrame(rows)


def _verdict(trend: pd.DataFrame) -> dict:
    (row,) = A.verdicts({A.TREND: trend}.__getitem__)
    return row


SHORT = {A.GAP_MIPS: [20.0, 21.0, 19.0], A.GAP_MHD: [38.0, 40.0, 36.0]}


def test_a_gap_that_longer_training_leaves_in_place_holds():
    row = _verdict(_trend({1: SHORT, 4: {A.GAP_MIPS: [19.5, 20.5, 19.0], A.GAP_MHD: [37.5, 40.0, 35.5]}}))
    assert row["verdict"] == HOLDS and row["seeds"] == 3  # changes −0.5, −0.5, 0: interval [−1.05, 0.38] ≥ −2
    assert "×1 → ×4" in row["ours"] and "-2.0 points" in row["rule"]


def test_a_gap_that_longer_training_closes_does_not_hold():
    row = _verdict(_trend({1: SHORT, 4: {A.GAP_MIPS: [10.0, 11.5, 9.0], A.GAP_MHD: [20.0, 22.0, 17.0]}}))
    assert row["verdict"] == FAILS  # changes about −10 and −18 points, wholly below −2


def test_a_change_straddling_the_tolerance_is_inconclusive():
    row = _verdict(_trend({1: SHORT, 2: {A.GAP_MIPS: [19.0, 18.0, 16.5], A.GAP_MHD: [37.0, 37.0, 33.5]}}))
    assert row["verdict"] == INCONCLUSIVE  # changes −1, −3, −2.5: [−4.76, 0.42] straddles −2


def test_one_decoder_closing_its_gap_is_partly_and_named():
    row = _verdict(_trend({1: SHORT, 4: {A.GAP_MIPS: [19.5, 20.5, 19.0], A.GAP_MHD: [20.0, 22.0, 17.0]}}))
    assert row["verdict"] == f"{PARTLY} (fails: {A.MHD})"


def test_one_length_or_one_seed_cannot_hold_plainly():
    row = _verdict(_trend({1: SHORT}))
    assert row["verdict"] == f"{INCONCLUSIVE} (one training length)"
    one_seed = _verdict(_trend({1: {A.GAP_MIPS: [20.0], A.GAP_MHD: [38.0]}, 2: {A.GAP_MIPS: [19.0], A.GAP_MHD: [37.0]}}))
    assert one_seed["verdict"] == f"{HOLDS} (1 seed)"


def test_the_claim_is_not_run_without_its_table_and_fails_loudly_on_a_renamed_column():
    def missing(name):
        raise FileNotFoundError(name)

    assert [r["verdict"] for r in A.verdicts(missing)] == [NOT_RUN]
    renamed = _trend({1: SHORT, 4: SHORT}).rename(columns={A.GAP_MHD: "gap of MHD"})
    with pytest.raises(KeyError, match=A.GAP_MHD):
        A.verdicts({A.TREND: renamed}.__getitem__)


def _factor_row(factor: str, mips_gap: float, mhd_gap: float, setting: str | None = None) -> dict:
    return {A.FACTOR: factor, "setting": setting or factor, A.GAP_MIPS: mips_gap, A.GAP_MHD: mhd_gap,
            A.ED_TRAIN: 0.3, A.BASELINE_TRAIN: 0.99, A.MIPS_TRAIN: 0.97}


def test_describe_factors_names_the_factor_that_narrows_each_gap_most():
    table = pd.DataFrame([_factor_row(A.REFERENCE, 20.0, 38.0), _factor_row(A.AUGMENTATION, 4.0, 25.0),
                          _factor_row(A.SCRATCH, 22.0, 39.0), _factor_row(A.PHASE2_LONGER, 20.0, 30.0, "p2 lr 0.01")])
    text = A.describe_factors(table).splitlines()
    assert text[-2].startswith(f"MIPS (goal within {A.MIPS_GOAL:g} points): the largest narrowing comes from "
                               f"{A.AUGMENTATION} (-16.0 points, to 4.0); the goal is reached by: {A.AUGMENTATION}.")
    assert text[-1].startswith(f"MHD (goal within {A.MHD_GOAL:g} points): the largest narrowing comes from "
                               f"{A.AUGMENTATION} (-13.0 points")
    assert text[-1].endswith("no single factor tried reaches the goal.")


def test_describe_factors_says_when_nothing_narrows_a_gap():
    table = pd.DataFrame([_factor_row(A.REFERENCE, 20.0, 38.0), _factor_row(A.SCRATCH, 22.0, 39.0)])
    assert A.describe_factors(table).splitlines()[-1].endswith("none narrows the gap.")
    with pytest.raises(ValueError, match="reference"):
        A.describe_factors(table[table[A.FACTOR] != A.REFERENCE])


def test_wide_width_and_features_give_d_at_least_L():
    assert [A.wide_width(L) for L in (242, 10, 33, 32)] == [64, 8, 16, 8]
    assert [A.wide_features(L) for L in (242, 10, 33, 32)] == [256, 32, 64, 32]
    assert all(4 * A.wide_width(L) >= L and A.wide_features(L) >= L for L in range(1, 600))


def test_the_config_rejects_bad_lengths_and_unknown_factors(toy_profile):
    with pytest.raises(ValueError, match="lengths"):
        A.AdequacyExperiment.for_profile(toy_profile, lengths=[1, 0])
    with pytest.raises(ValueError, match="unknown factor"):
        A.AdequacyExperiment.for_profile(toy_profile, factors=["more data"])
    assert A.AdequacyExperiment.for_profile(toy_profile, seeds=[0, 1], lengths=[1, 2]).seeds == (0, 1)


def test_run_adequacy_end_to_end_on_toy(quick_llc, monkeypatch):
    from dataclasses import replace

    from llcpkg import train
    from llcpkg.pipeline import load_bundle, run_llc

    P = replace(quick_llc, train_subset=128, test_subset=64)
    cfg = A.AdequacyExperiment.for_profile(P, seeds=[0], dataset="toy", lengths=[1, 2], factors=list(A.FACTOR_NAMES),
                                           phase2_factor=2, phase2_lrs=[0.01, 0.1])
    tables = A.run(cfg)
    assert set(tables) == {A.TREND, A.TREND_SUMMARY, A.FACTORS}
    trend, factors = tables[A.TREND], tables[A.FACTORS]
    assert trend[A.LENGTH].tolist() == [1, 2] and trend["phase2 epochs"].tolist() == [1, 2]
    assert trend[A.GAP_MHD].tolist() == pytest.approx((100 * (trend[A.BASELINE] - trend[A.MHD])).tolist())
    assert trend[[A.BASELINE_TRAIN, A.ED_TRAIN, A.UNASSIGNED]].apply(lambda c: c.between(0, 1).all()).all()
    assert factors[A.FACTOR].tolist() == [A.REFERENCE, A.AUGMENTATION, A.FEATURES, A.WIDTH, A.SCRATCH,
                                          A.PHASE2_LONGER, A.PHASE2_LONGER]
    assert "d = 32" in factors.loc[factors[A.FACTOR] == A.FEATURES, "setting"].iloc[0]  # wide_features(4) at width 8
    assert factors.loc[factors[A.FACTOR] == A.PHASE2_LONGER, A.PHASE2_LR].tolist() == [0.01, 0.1]
    assert factors[A.CHOSEN].sum() >= 1 and not factors.loc[factors[A.FACTOR] != A.PHASE2_LONGER, A.CHOSEN].any()
    assert len(factors.columns) == len(set(factors.columns))
    assert A.readings(tables).count("\n") >= 2 and len(A.verdicts(tables.__getitem__)) == 1

    trained = []
    real = train._train_stage
    monkeypatch.setattr(train, "_train_stage", lambda *a, **k: trained.append(a[0]) or real(*a, **k))
    from llcpkg.experiments.classification import standard_configs

    toy = load_bundle("toy", P)
    run_llc(toy, P, 4, 0, configs=standard_configs(P, toy, 0))  # notebook 01's stages at ×1: all cached by the trend
    assert trained == []


def test_describe_trend_reads_the_change_with_the_claims_tolerance():
    trend = _trend({1: {**SHORT, A.GAP_ED: [50.0, 52.0, 48.0]},
                    4: {A.GAP_MIPS: [10.0, 11.5, 9.0], A.GAP_MHD: [37.5, 40.0, 35.5], A.GAP_ED: [49.0, 48.0, 46.5]}})
    for col in A.TREND_VALUES:
        if col not in trend:
            trend[col] = 0.5
    text = A.describe_trend(A.trend_summary(trend.assign(bits=16)), trend).splitlines()
    assert text[-3].startswith(f"{A.MIPS} gap, ×4 − ×1: ") and text[-3].endswith("narrows by more than 2 points.")
    assert text[-2].endswith("narrows by at most 2 points.")
    assert text[-1].endswith("may or may not narrow by more than 2 points.")  # −1, −4, −1.5: straddles −2


def test_open_questions_answer_from_both_tables():
    trend = _trend({1: {**SHORT, A.GAP_ED: [50.0, 52.0, 48.0]}, 2: {**SHORT, A.GAP_ED: [50.0, 52.0, 48.0]}})
    for col in A.TREND_VALUES:
        if col not in trend:
            trend[col] = 0.5
    factors = pd.DataFrame([_factor_row(A.REFERENCE, 20.0, 38.0), _factor_row(A.AUGMENTATION, 4.0, 25.0)])
    rows = A.open_questions({A.TREND: trend.assign(bits=16), A.FACTORS: factors}.__getitem__)
    assert [r["dataset"] for r in rows] == ["omniglot", "omniglot"]
    assert rows[0]["answer"].count("narrows by at most 2 points") == 3  # the gaps do not move at all
    assert rows[1]["answer"].startswith("MIPS (goal within 5 points)") and "MHD (goal within 10" in rows[1]["answer"]
