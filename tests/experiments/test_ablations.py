"""The ablation helpers of notebook 02 (llcpkg.experiments.ablations), on tiny problems with
hand-computed answers."""
import math

import numpy as np
import pytest
import torch

from llcpkg import decode
from llcpkg.codebooks import build_codebook, to_bits
from llcpkg.data import DataBundle
from llcpkg.experiments.ablations import (FeatureConfig, ball_table, decoder_metrics, feature_config,
                                          fit_codes_on_features, phase2_with_codebook, sweep_bits, tie_table)
from llcpkg.profiles import get_profile


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


def test_phase2_with_codebook_freezes_the_codes_and_caches(toy_bundle, tmp_path, monkeypatch):
    from llcpkg.pipeline import stage_configs
    from llcpkg.models import ModelConfig
    from llcpkg.profiles import get_profile
    from llcpkg.train import train_baseline

    monkeypatch.setenv("LLC_CACHE", str(tmp_path))
    prof = get_profile("smoke", width=4)
    cfgs = stage_configs(prof, 1_000_000)  # one epoch per stage
    base = train_baseline(toy_bundle, ModelConfig(width=4), cfgs["baseline"], tmp_path)
    codes = build_codebook("hadamard", 4, 4)
    kw = dict(proj_cfg=FeatureConfig(1, 1, 0.1, 0.1, batch_size=64), cfg=cfgs["phase2"])
    trained = phase2_with_codebook(toy_bundle, prof, base, codes, **kw)
    np.testing.assert_array_equal(trained.model.head.class_codes().numpy(), codes)
    assert len(list(tmp_path.glob("phase2cb-*.pt"))) == 1
    again = phase2_with_codebook(toy_bundle, prof, base, codes, **kw)
    for a, b in zip(trained.model.state_dict().values(), again.model.state_dict().values()):
        torch.testing.assert_close(a, b)



def test_feature_config_reads_the_profile():
    P = get_profile("cpu")
    cfg = feature_config(P, seed=2)
    assert (cfg.phase1_epochs, cfg.phase2_epochs) == (10, 10)  # round(2.5 × 4)
    assert (cfg.phase1_lr, cfg.phase2_lr, cfg.logit_scale, cfg.seed) == (P.lr, P.phase2_lr, P.logit_scale, 2)


def test_ablations_experiment_picks_the_retrained_sets():
    from llcpkg.experiments.ablations import AblationsExperiment

    assert AblationsExperiment.for_profile(get_profile("smoke"), datasets=["a", "b"]).retrained == ("a",)
    assert AblationsExperiment.for_profile(get_profile("cpu"), datasets=["a", "b"]).retrained == ("a", "b")
    assert AblationsExperiment.for_profile(get_profile("cpu"), backbone_datasets=["b"]).retrained == ("b",)
