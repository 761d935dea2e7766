"""The ablation helpers of notebook 02 (llcpkg.experiments.ablations), on tiny problems with
hand-computed answers."""
import math

import numpy as np
import pandas as pd
import pytest
import torch

from llcpkg import decode
from llcpkg.codebooks import build_codebook, to_bits
from llcpkg.data import DataBundle
from llcpkg.experiments import ablations as A
from llcpkg.experiments.ablations import (FeatureConfig, ball_table, decoder_metrics, feature_config,
                                          fit_codes_on_features, sweep_bits, tie_table)
from llcpkg.profiles import get_profile
from llcpkg.seeds import summary_name
from llcpkg.verdicts import FAILS, HOLDS, INCONCLUSIVE, PARTLY


def _feature_problem(n=128, classes=4, seed=0):
    g = torch.Generator().manual_seed(seed)

    def make():
        y = torch.randint(0, classes, (n,), generator=g)
        x = 3.0 * torch.eye(classes)[y] + 0.3 * torch.randn(n, classes, generator=g)
        return torch.utils.data.TensorDataset(x, y)

    return DataBundle("toyfeat-features", make(), make(), [f"c{i}" for i in range(classes)], None, (classes,))


def test_sweep_bits():
    assert sweep_bits(10) == [4, 8, 16, 32, 64]
    assert sweep_bits(242) == [8, 12, 16, 32, 64]
    assert sweep_bits(2, top=8) == [1, 2, 3, 4, 8]


def test_decoder_metrics_by_hand():
    """Codes 00, 11, 01. Query 1: z = (0.5, -0.2) -> 10, tied between classes 0 and 1 (distance 1),
    label 1: lowest index is wrong, score <z, ±1 code> picks class 1. Query 2: z = (-1, -1) -> 00 = class 0."""
    out = {"class_bits": np.array([[0, 0], [1, 1], [0, 1]], np.uint8), "labels": np.array([1, 0]),
           "bit_logits": np.array([[0.5, -0.2], [-1.0, -1.0]]), "outputs": np.zeros((2, 3))}
    m = decoder_metrics(out)
    assert (m["mhd"], m["mhd_score"], m["mhd_tie_rate"], m["tie_oracle"], m["mean_tied"]) == (0.5, 1.0, 0.5, 1.0, 2.0)
    assert (m["ed"], m["unassigned"], m["min_code_distance"]) == (0.5, 0.5, 1)
    row = tie_table({"toy": out}).iloc[0]
    assert row["MHD"] == 0.5 and row["MHD (score ties)"] == 1.0 and row["bits"] == 2


def test_ball_table_matches_brute_force():
    rng = np.random.default_rng(0)
    k, L, n = 6, 5, 300
    codes = rng.integers(0, 2, (L, k)).astype(np.uint8)
    y = rng.integers(0, L, n)
    flips = rng.random((n, k)) < 0.2
    q = codes[y] ^ flips
    out = {"class_bits": codes, "labels": y, "bit_logits": np.where(q == 1, 1.0, -1.0)}
    df = ball_table(out, r_max=3)
    d = np.abs(q[:, None, :].astype(int) - codes[None].astype(int)).sum(-1)  # (n, L) brute force
    for r in range(4):
        within = d <= r
        pred = np.where(within.any(1), np.argmin(np.where(within, d, k + 1), axis=1), -1)  # nearest, lowest index
        row = df[df["radius"] == r].iloc[0]
        assert row["accuracy"] == pytest.approx((pred == y).mean())
        assert row["unassigned"] == pytest.approx((pred < 0).mean())
        assert row["max lookups"] == sum(math.comb(k, j) for j in range(r + 1))
    mhd = df[df["decoder"] == "MHD"].iloc[0]
    assert mhd["accuracy"] == pytest.approx((d.argmin(1) == y).mean()) and mhd["lookups per query"] == L
    assert df[df["decoder"] == "ED"].iloc[0]["lookups per query"] == 1.0


def test_fit_codes_on_features_learns_a_separable_problem():
    feats = _feature_problem()
    cfg = FeatureConfig(phase1_epochs=1, phase2_epochs=1, phase1_lr=0.1, phase2_lr=0.1, batch_size=32)
    fixed = build_codebook("hadamard", 4, 4)
    p1, p2 = fit_codes_on_features(feats, 4, cfg, fixed, learn_codebook=False)
    np.testing.assert_array_equal(p2.head.class_codes().numpy(), fixed)  # a fixed codebook stays fixed
    x, y = feats.test.tensors
    with torch.no_grad():
        bits = decode.signs_to_bits(p2.head.bit_logits(x))
    acc = (decode.mhd_decode(bits, to_bits(fixed)).pred == y.numpy()).mean()
    assert acc > 0.95


def test_feature_config_reads_the_profile():
    P = get_profile("cpu")
    cfg = feature_config(P, seed=2)
    assert (cfg.phase1_epochs, cfg.phase2_epochs) == (10, 10)  # round(2.5 × 4)
    assert (cfg.phase1_lr, cfg.phase2_lr, cfg.logit_scale, cfg.seed) == (P.lr, P.phase2_lr, P.logit_scale, 2)


def test_ablations_experiment_picks_the_retrained_sets():
    from llcpkg.experiments.ablations import AblationsExperiment

    ab = dict(datasets=["a", "b"], backbone_datasets=None)
    assert AblationsExperiment.for_profile(get_profile("smoke"), **ab).retrained == ("a",)
    assert AblationsExperiment.for_profile(get_profile("cpu"), **ab).retrained == ("a", "b")
    assert AblationsExperiment.for_profile(get_profile("cpu"), datasets=["a", "b"], backbone_datasets=["b", "c"]).retrained == ("b",)
    assert AblationsExperiment.for_profile(get_profile("cpu")).retrained == ("omniglot",)  # the default (budget)
    assert AblationsExperiment.for_profile(get_profile("cpu"), seeds=[4, 5]).seeds == (4, 5)
    assert AblationsExperiment.for_profile(get_profile("smoke")).seeds == (0,)


# ----------------------------------------------------------------------------- same start for every codebook
def test_every_codebook_starts_from_the_same_projector():
    fixed = build_codebook("hadamard", 4, 4)
    a = A.feature_model(6, 4, 4, None, "sqrt", seed=3)
    b = A.feature_model(6, 4, 4, fixed, "sqrt", seed=3)
    c = A.feature_model(6, 4, 4, fixed, "sqrt", seed=4)
    torch.testing.assert_close(a.head.projector.weight, b.head.projector.weight)
    assert not torch.equal(a.head.projector.weight, c.head.projector.weight)  # the seed does change it
    np.testing.assert_array_equal(b.head.class_codes().numpy(), fixed)


def test_warm_codebook_takes_signs_from_the_codes_and_magnitudes_from_the_random_start():
    like = torch.tensor([[0.5, -0.2], [-0.1, 0.3]])
    codes = np.array([[1.0, 1.0], [-1.0, -1.0]])
    np.testing.assert_allclose(A.warm_codebook(codes, like), [[0.5, 0.2], [-0.1, -0.3]])


def test_initial_codebook_is_the_random_start_of_phase1_and_warm_starts_keep_the_default_projector(toy_bundle, tmp_path):
    from llcpkg.pipeline import stage_configs
    from llcpkg.train import train_baseline, train_phase1

    prof = get_profile("smoke", width=4)
    cfgs = stage_configs(prof, len(toy_bundle.train), seed=1)
    mcfg = prof.model_config("llc", 4)
    base = train_baseline(toy_bundle, mcfg, cfgs["baseline"], tmp_path)
    rand = train_phase1(toy_bundle, mcfg, cfgs["phase1"], tmp_path, warm_start=base, stop_after=0)  # untrained
    torch.testing.assert_close(A.initial_codebook(prof, toy_bundle, 4, 1), rand.model.head.codebook.detach())
    warm = A.warm_codebook(build_codebook("hadamard", 4, 4), A.initial_codebook(prof, toy_bundle, 4, 1))
    plain = train_phase1(toy_bundle, mcfg, cfgs["phase1"], tmp_path, warm_start=base, codebook=warm, stop_after=0,
                         ls_projector=False)
    ls = train_phase1(toy_bundle, mcfg, cfgs["phase1"], tmp_path, warm_start=base, codebook=warm, stop_after=0)
    torch.testing.assert_close(plain.model.head.projector.weight, rand.model.head.projector.weight)
    assert not torch.allclose(ls.model.head.projector.weight, rand.model.head.projector.weight)  # least squares
    assert plain.key != ls.key


def test_grouped_ball_table_list_one_is_ed_and_the_full_list_always_hits(quick_llc, toy_bundle):
    from llcpkg.pipeline import run_llc, stage_configs

    run = run_llc(toy_bundle, quick_llc, 4, 0)
    cfg = stage_configs(quick_llc, len(toy_bundle.train), 0)["phase2"]
    grouped = A.grouped_phase2(run.phase1, toy_bundle, cfg, quick_llc.cache_dir)
    np.testing.assert_array_equal(grouped.model.head.class_codes().numpy(), run.phase1.model.head.class_codes().numpy())
    for trained, head in ((run.phase2, A.BINARY_HEAD), (grouped, A.GROUPED_HEAD)):
        df = A.grouped_ball_table(trained, toy_bundle).set_index("decoder")
        assert (df[A.HEAD] == head).all()
        assert df.loc["list-16", "unassigned"] == 0.0 and df.loc["list-16", "max lookups"] == 16  # all 2^k codes
    binary = A.grouped_ball_table(run.phase2, toy_bundle).set_index("decoder")  # k sigmoids: argmax code = sign code
    assert binary.loc["list-1", ["accuracy", "unassigned"]].tolist() == binary.loc["ED", ["accuracy", "unassigned"]].tolist()


def test_intermediate_lengths_run_on_the_first_seed_only():
    cfg = A.AblationsExperiment.for_profile(get_profile("cpu"), seeds=[3, 1])
    assert A.seed_lengths(cfg, 10, 3) == [4, 8, 16, 32, 64] and A.seed_lengths(cfg, 10, 1) == [4, 64]


def test_summary_names_follow_the_seeds_contract():
    for table, summary in ((A.CODEBOOK_TABLE, A.CODEBOOK_SUMMARY), (A.LENGTH_TABLE, A.LENGTH_SUMMARY),
                           (A.PHASE2_TABLE, A.PHASE2_SUMMARY), (A.TIE_TABLE, A.TIE_SUMMARY)):
        assert summary == summary_name(table)


def test_summaries_give_the_t_interval_over_seeds():
    df = pd.DataFrame({"seed": [0, 1, 2], "setting": "s", "dataset": "toy", "bits": 4, "protocol": A.FULL,
                       "bits rule": A.PAPER_K, "MHD tie rate": [0.1, 0.2, 0.3]})
    out = A.summaries({A.TIE_TABLE: df})[A.TIE_SUMMARY].iloc[0]
    half = 4.302652729911275 * 0.1 / math.sqrt(3)  # t_{0.975, 2} · s / √n
    assert out["MHD tie rate mean"] == pytest.approx(0.2) and out["MHD tie rate lo"] == pytest.approx(0.2 - half)
    assert out["seeds"] == 3


# ----------------------------------------------------------------------------- claims on hand-made per-seed tables
SEEDS = [0, 1, 2]
HOLD, FAIL, STRADDLE = [0.03, 0.05, 0.04], [-0.03, -0.05, -0.04], [0.02, -0.02, 0.01]  # per-seed differences


def _tables(**tables):
    def t(name):
        if name not in tables:
            raise FileNotFoundError(name)
        return tables[name]
    return t


def _codebooks(diff, dataset="toy", baseline=0.92):
    llc = np.array([0.90, 0.91, 0.92])
    rows = [{"seed": s, "dataset": dataset, "bits": 8, "codebook": c, "protocol": A.FROZEN, "MHD": m, "baseline": baseline}
            for c, offset in (("llc", 0.0), ("random", 1.0), ("svd", 1.0), ("hadamard", 1.0))
            for s, m in zip(SEEDS, llc - offset * np.array(diff))]
    rows.append({"seed": 0, "dataset": dataset, "bits": 8, "codebook": "llc", "protocol": A.FULL, "MHD": 0.0,
                 "baseline": baseline})  # the reference row is not part of the claim
    return pd.DataFrame(rows)


def _verdict(rule, **tables):
    (row,) = rule(_tables(**tables))
    return row["verdict"]


@pytest.mark.parametrize("diff, expected", [(HOLD, HOLDS), (FAIL, FAILS), (STRADDLE, INCONCLUSIVE)])
def test_learnt_codebook_rule(diff, expected):
    assert _verdict(A.claim_learnt_codebook, ablations_codebooks=_codebooks(diff)) == expected


def test_learnt_codebook_rule_names_the_failing_codebook_and_is_gated():
    df = _codebooks(HOLD)
    df.loc[(df["codebook"] == "svd"), "MHD"] += 0.1  # svd now beats the learnt codes on every seed
    v = _verdict(A.claim_learnt_codebook, ablations_codebooks=df)
    assert v.startswith(PARTLY) and "vs svd" in v and "vs random" not in v
    assert _verdict(A.claim_learnt_codebook, ablations_codebooks=_codebooks(HOLD, "fashion_mnist", 0.92)) == HOLDS
    v = _verdict(A.claim_learnt_codebook, ablations_codebooks=_codebooks(HOLD, "fashion_mnist", 0.80))
    assert v.startswith(INCONCLUSIVE) and "under-trained" in v


def _phase2(diff, dataset="toy", baseline=0.92):
    rnd = np.array([0.80, 0.82, 0.81])
    rows = [{"seed": s, "dataset": dataset, "bits": 8, "codebook init": c, "phase 2": p2, "MHD": m + (p2 == "off") * 0.5,
             "baseline": baseline}
            for c, d in (("random", [0, 0, 0]), ("svd", diff), ("cca", diff)) for p2 in ("off", "on")
            for s, m in zip(SEEDS, rnd + np.array(d))]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("diff, expected", [([-0.01, -0.005, -0.008], HOLDS),  # within 2.4 points below: a good codebook
                                            ([-0.05, -0.06, -0.055], FAILS),
                                            ([-0.01, -0.04, -0.02], INCONCLUSIVE)])
def test_warm_start_rule(diff, expected):
    assert _verdict(A.claim_warm_starts, ablations_phase2=_phase2(diff)) == expected


def test_warm_start_rule_is_gated():
    v = _verdict(A.claim_warm_starts, ablations_phase2=_phase2([0.0, 0.01, 0.0], "fashion_mnist", 0.80))
    assert v.startswith(INCONCLUSIVE) and "under-trained" in v


def _length(short_gain, long_gap, dataset="toy", baseline=0.92):
    """Random codes gain ``short_gain`` (per seed) from k=4 to k=64 and trail the learnt codes by ``long_gap`` at 64."""
    rows = []
    for s, gain, gap in zip(SEEDS, short_gain, long_gap):
        rnd4 = 0.5 + 0.01 * s
        rows += [{"seed": s, "dataset": dataset, "bits": 4, "codebook": "random", "MHD": rnd4, "baseline": baseline},
                 {"seed": s, "dataset": dataset, "bits": 4, "codebook": "llc", "MHD": 0.85, "baseline": baseline},
                 {"seed": s, "dataset": dataset, "bits": 64, "codebook": "random", "MHD": rnd4 + gain, "baseline": baseline},
                 {"seed": s, "dataset": dataset, "bits": 64, "codebook": "llc", "MHD": rnd4 + gain + gap,
                  "baseline": baseline},
                 {"seed": s, "dataset": dataset, "bits": 16, "codebook": "svd", "MHD": 0.1, "baseline": baseline}]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("gain, gap, expected", [([0.3, 0.35, 0.32], [0.01, 0.0, 0.005], HOLDS),
                                                 ([-0.01, -0.02, -0.015], [0.2, 0.25, 0.22], FAILS),
                                                 ([0.02, -0.02, 0.01], [0.0, 0.05, 0.01], INCONCLUSIVE)])
def test_longer_codes_rule(gain, gap, expected):
    assert _verdict(A.claim_longer_codes, ablations_length=_length(gain, gap)).split(" (")[0] == expected


def test_longer_codes_rule_names_the_failing_part_and_is_gated():
    v = _verdict(A.claim_longer_codes, ablations_length=_length([0.3, 0.35, 0.32], [0.2, 0.25, 0.22]))
    assert v.startswith(PARTLY) and "fails: random within 2.4 points of learnt at k=64" in v
    v = _verdict(A.claim_longer_codes, ablations_length=_length([0.3, 0.35, 0.32], [0.01, 0.0, 0.005], "fashion_mnist", 0.8))
    assert v.startswith(INCONCLUSIVE) and "under-trained" in v


def _ties(rates, dataset="toy", baseline=0.92):
    rows = [{"seed": s, "setting": f"{dataset} k=8 full", "dataset": dataset, "bits": 8, "protocol": A.FULL,
             "bits rule": A.PAPER_K, "MHD tie rate": r, "baseline": baseline} for s, r in zip(SEEDS, rates)]
    rows += [{"seed": s, "setting": f"{dataset} k=4 full", "dataset": dataset, "bits": 4, "protocol": A.FULL,
              "bits rule": "minimum", "MHD tie rate": 0.9, "baseline": baseline} for s in SEEDS]  # not the paper's k
    return pd.DataFrame(rows)


@pytest.mark.parametrize("rates, expected", [([0.03, 0.05, 0.04], HOLDS), ([0.35, 0.40, 0.38], FAILS),
                                             ([0.05, 0.12, 0.09], INCONCLUSIVE)])
def test_ties_rule(rates, expected):
    assert _verdict(A.claim_ties, ablations_ties=_ties(rates)) == expected


def test_ties_rule_is_gated():
    v = _verdict(A.claim_ties, ablations_ties=_ties([0.03, 0.05, 0.04], "fashion_mnist", 0.80))
    assert v.startswith(INCONCLUSIVE) and "under-trained" in v


@pytest.mark.parametrize("rule, table, frame, column", [
    (A.claim_learnt_codebook, "ablations_codebooks", _codebooks(HOLD), "MHD"),
    (A.claim_warm_starts, "ablations_phase2", _phase2([0.0, 0.0, 0.0]), "codebook init"),
    (A.claim_longer_codes, "ablations_length", _length([0.3, 0.3, 0.3], [0, 0, 0]), "baseline"),
    (A.claim_ties, "ablations_ties", _ties([0.1, 0.1, 0.1]), "MHD tie rate")])
def test_a_missing_column_raises(rule, table, frame, column):
    with pytest.raises(KeyError, match=column):
        rule(_tables(**{table: frame.drop(columns=column)}))
    rows = A.verdicts(_tables())  # no tables at all: not run, never an error
    assert [r["verdict"] for r in rows] == ["not run"] * len(A.CLAIMS)
