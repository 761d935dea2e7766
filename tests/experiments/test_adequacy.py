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


def test_the_quick_look_runs_one_length_and_no_factor_study_unless_asked(monkeypatch):
    from llcpkg.profiles import get_profile

    monkeypatch.delenv("LLC_SEEDS", raising=False)
    cpu, smoke = get_profile("cpu"), get_profile("smoke")
    full = A.AdequacyExperiment.for_profile(cpu, lengths=None, factors=None)  # three seeds
    assert full.seeds == (0, 1, 2) and full.lengths == (1, 2) and full.factors == A.AdequacyExperiment(cpu, (0,)).factors
    quick = A.AdequacyExperiment.for_profile(cpu, seeds=[0], lengths=None, factors=None)
    assert (quick.lengths, quick.factors) == ((1,), ())
    monkeypatch.setenv("LLC_SEEDS", "0")  # make reproduce SEEDS=0
    assert A.AdequacyExperiment.for_profile(cpu, lengths=None, factors=None).lengths == (1,)
    asked = A.AdequacyExperiment.for_profile(cpu, lengths=[1, 4], factors=[A.AUGMENTATION])
    assert (asked.lengths, asked.factors) == ((1, 4), (A.AUGMENTATION,))  # a given parameter wins
    tiny = A.AdequacyExperiment.for_profile(smoke, lengths=None, factors=None)  # CI's one seed runs everything
    assert tiny.lengths == (1, 2) and tiny.factors == full.factors


def test_no_factors_train_nothing_and_read_as_not_run(toy_profile, monkeypatch):
    from llcpkg.experiments import adequacy

    monkeypatch.setattr(adequacy, "load_bundle", lambda *a, **k: pytest.fail("the empty study loaded data"))
    cfg = A.AdequacyExperiment.for_profile(toy_profile, seeds=[0], dataset="toy", factors=[])
    factors = A.factors_table(cfg)
    assert factors.empty and {A.FACTOR, "setting", A.GAP_MIPS, A.GAP_MHD, A.CHOSEN} <= set(factors.columns)
    assert "not run" in A.describe_factors(factors)
    trend = _trend({1: {**SHORT, A.GAP_ED: [50.0, 52.0, 48.0]}})
    for col in A.TREND_VALUES:
        if col not in trend:
            trend[col] = 0.5
    rows = A.open_questions({A.TREND: trend.assign(bits=16), A.FACTORS: factors}.__getitem__)
    assert rows[0]["answer"] == "only ×1 was run" and "not run" in rows[1]["answer"]


def test_run_adequacy_end_to_end_on_toy(quick_llc, monkeypatch):
    from dataclasses import replace

    from llcpkg import train
    from llcpkg.pipeline import load_bundle, run_llc

    P = replace(quick_llc, train_subset=128, test_subset=64)
    cfg = A.AdequacyExperiment.for_profile(P, seeds=[0], dataset="toy", lengths=[1, 2], factors=list(A.FACTOR_NAMES),
                                           phase2_factor=2, phase2_lrs=[0.01, 0.1], claim_trends=[A.RUNS_PART])
    tables = A.run(cfg)
    assert set(tables) == {A.TREND, A.TREND_SUMMARY, A.CLAIM_TREND, A.CLAIM_TREND_SUMMARY, A.FACTORS}
    claims = tables[A.CLAIM_TREND]  # every classification measure at both lengths (taxonomy: where toy has groups)
    n = len(A.CLASSIFICATION_TRENDS) - (load_bundle("toy", P).class_to_group() is None)
    assert len(claims) == 2 * n and set(claims[A.LENGTH]) == {1, 2} and set(claims["claim"]) <= {
        c for c, *_ in A.CLASSIFICATION_TRENDS.values()}
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


# ----------------------------------------------------------------------------- every negative verdict's trend
def _per_run(values: dict[int, list[float]], bound: float, above: bool, claim: str = "a claim",
             dataset: str = "omniglot", measure: str = "m") -> pd.DataFrame:
    """A hand-made claim-trend table: {epoch factor: one value per run}."""
    return pd.DataFrame([{"claim": claim, "dataset": dataset, A.MEASURE: measure, A.BOUND: bound, A.ABOVE: above,
                          A.LENGTH: f, A.RUN: r, "seed": r, A.VALUE: v}
                         for f, vs in values.items() for r, v in enumerate(vs)])


def test_classification_measures_come_from_the_trend_rows_with_the_claims_bounds():
    from llcpkg.experiments import ablations, classification as C, taxonomy

    row = {"seed": 0, "dataset": "omniglot", A.LENGTH: 2, **{c: 0.5 for c in A.TREND_VALUES}}
    row.update({A.GAP_MIPS: 20.0, A.GAP_MHD: 38.0, A.GAP_ED: 50.0, A.ED: 0.3, A.TIE_RATE: 0.25, A.TREE_EFFECT: 0.04})
    rows = A.classification_trend_rows(pd.DataFrame([row])).set_index(A.MEASURE)
    assert rows.loc["baseline − phase-2 MHD (points)", A.VALUE] == 38.0
    assert rows.loc["phase-2 MHD − ED (points)", A.VALUE] == 12.0
    assert rows.loc["phase-2 MHD − phase-1 MIPS (points)", A.VALUE] == -18.0  # (b − MIPS) − (b − MHD)
    assert rows.loc["exact-match rate = ED accuracy (%)", A.VALUE] == pytest.approx(30.0)
    assert rows.loc["MHD tie rate (%)", [A.VALUE, A.BOUND]].tolist() == pytest.approx([25.0, 100 * ablations.TIE_RATE_MAX])
    tree = rows.loc["learnt code tree's Spearman correlation with the groups"]
    assert tree["claim"] == taxonomy.CLAIM and tree[A.BOUND] == taxonomy.EFFECT_MIN and tree[A.ABOVE]
    assert rows.loc["baseline − phase-2 MHD (points)", A.BOUND] == C.PAPER_MHD_GAP
    no_groups = A.classification_trend_rows(pd.DataFrame([{**row, A.TREE_EFFECT: float("nan")}]))
    assert len(no_groups) == len(rows) - 1 and taxonomy.CLAIM not in set(no_groups["claim"])


def test_the_change_reads_direction_and_the_longest_runs_side_for_both_kinds_of_bound():
    # a gap that must be at most 2.4: narrowing (toward), still failing at ×2
    c = A.claim_trend_change(_per_run({1: [38.0, 40.0, 36.0], 2: [30.0, 31.0, 29.5]}, 2.4, False)).iloc[0]
    assert (c["short"], c["long"], c["toward the claim"], c["at longest"]) == (1, 2, "yes", "fails")
    assert c["change"] == pytest.approx(-7.8333, abs=1e-3) and c["runs"] == 3
    # a difference that must be at least −0.02: moving away, already failing
    c = A.claim_trend_change(_per_run({1: [-0.30, -0.32, -0.31], 2: [-0.40, -0.41, -0.43]}, -0.02, True)).iloc[0]
    assert (c["toward the claim"], c["at longest"]) == ("no", "fails")
    # noisy: no clear direction, the longest interval straddles the bound
    c = A.claim_trend_change(_per_run({1: [0.0, 0.1, -0.1], 2: [0.2, -0.3, 0.1]}, 0.0, True)).iloc[0]
    assert (c["toward the claim"], c["at longest"]) == ("unclear", "straddles")
    # reaching the claim's side at the longest run
    c = A.claim_trend_change(_per_run({1: [1.0, 1.5, 1.2], 2: [4.0, 4.2, 3.9]}, 3.0, True)).iloc[0]
    assert (c["toward the claim"], c["at longest"]) == ("yes", "holds")
    text = A.describe_claim_trend(_per_run({1: [38.0, 40.0, 36.0], 2: [30.0, 31.0, 29.5]}, 2.4, False))
    assert "toward the claim: yes" in text and text.endswith("at ×2 the interval fails.")


def test_one_length_only_says_so():
    c = A.claim_trend_change(_per_run({1: [1.0, 2.0]}, 0.0, True)).iloc[0]
    assert c["long"] == c["short"] == 1 and "change" not in c.index and "toward the claim" not in c.index
    assert A.describe_claim_trend(_per_run({1: [1.0, 2.0]}, 0.0, True)).endswith("only ×1 was run (1.5).")


def test_a_renamed_column_fails_loudly():
    with pytest.raises(KeyError, match=A.CLAIM_TREND):
        A.claim_trend_change(_per_run({1: [1.0], 2: [2.0]}, 0.0, True).rename(columns={A.VALUE: "val"}))


def test_coverage_lists_every_negative_verdict_with_its_trend_or_the_reason():
    from llcpkg.experiments import compression

    claims = pd.DataFrame([
        {"claim": "gap claim", "dataset": "omniglot", "verdict": FAILS},
        {"claim": compression.CLAIM_OVERHEAD, "dataset": "fashion_mnist, mlp3", "verdict": FAILS},
        {"claim": "untracked", "dataset": "omniglot", "verdict": f"{FAILS} (inconclusive: cost)"},
        {"claim": "gap claim", "dataset": "fashion_mnist", "verdict": HOLDS},
        {"claim": "other", "dataset": "omniglot", "verdict": PARTLY},
    ])
    per_run = _per_run({1: [38.0, 40.0, 36.0], 2: [30.0, 31.0, 29.5]}, 2.4, False, claim="gap claim")
    cov = A.trend_coverage(claims, per_run)
    assert cov["claim"].tolist() == ["gap claim", compression.CLAIM_OVERHEAD, "untracked"]
    assert cov["compute trend"].iloc[0].startswith("m: ×1 38 → ×2 30.2 (toward the claim: yes; at ×2 fails)")
    assert cov["compute trend"].iloc[1] == A.NO_TREND[compression.CLAIM_OVERHEAD]
    assert cov["compute trend"].iloc[2] == "no trend run"
    assert (A.trend_coverage(claims, None)["compute trend"].iloc[0]) == "no trend run"


def test_the_figure_has_one_panel_per_measure():
    import matplotlib

    matplotlib.use("Agg")
    per_run = pd.concat([_per_run({1: [1.0, 2.0, 1.5], 2: [2.0, 2.5, 2.2]}, 0.0, True, measure=m) for m in "abcde"])
    fig = A.plot_claim_trend(A.claim_trend_summary(per_run))
    assert sum(ax.get_visible() for ax in fig.axes) == 5


def test_the_config_rejects_an_unknown_claim_trend(toy_profile):
    with pytest.raises(ValueError, match="unknown claim trend"):
        A.AdequacyExperiment.for_profile(toy_profile, claim_trends=["hfh"])
