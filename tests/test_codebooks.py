"""Codebook constructions (llcpkg.codebooks) and the ablation helpers (llcpkg.ablations),
on tiny problems with hand-computed answers."""
import math

import numpy as np
import pytest
import torch

from llcpkg import decode
from llcpkg.ablations import (FeatureConfig, ball_table, decoder_metrics, fit_codes_on_features, phase2_with_codebook,
                              sweep_bits, tie_table)
from llcpkg.codebooks import (CODEBOOKS, build_codebook, codebook_stats, hadamard_exists, list_codebooks,
                              sylvester_hadamard, to_bits)
from llcpkg.data import DataBundle


def _distances(codes):
    b = to_bits(codes)
    return decode.hamming_distances(b, b)


# ----------------------------------------------------------------------------- registry-wide
_RNG = np.random.default_rng(0)
_Y = np.arange(200) % 6
_INPUTS = {"weights": _RNG.standard_normal((6, 5)), "features": _RNG.standard_normal((6, 5))[_Y] + _RNG.standard_normal((200, 5)),
           "labels": _Y}


@pytest.mark.parametrize("name", list_codebooks())
@pytest.mark.parametrize("bits", [4, 8])
def test_every_builder_gives_plus_minus_one_codes(name, bits):
    codes = build_codebook(name, 6, bits, seed=3, **_INPUTS)
    assert codes.shape == (6, bits) and codes.dtype == np.float32
    assert set(np.unique(codes)) <= {-1.0, 1.0}
    np.testing.assert_array_equal(codes, build_codebook(name, 6, bits, seed=3, **_INPUTS))  # deterministic


def test_unknown_codebook_and_missing_inputs_raise():
    with pytest.raises(ValueError, match="unknown codebook"):
        build_codebook("nope", 4, 4)
    with pytest.raises(ValueError, match="weights"):
        build_codebook("svd", 4, 4)
    with pytest.raises(ValueError, match="features"):
        build_codebook("cca", 4, 4)
    assert set(CODEBOOKS) == {"random", "svd", "cca", "hadamard", "lexicode"}


def test_random_codes_follow_the_seed():
    a, b = build_codebook("random", 50, 16, seed=0), build_codebook("random", 50, 16, seed=1)
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(a, np.where(np.random.default_rng(0).standard_normal((50, 16)) >= 0, 1, -1))


# ----------------------------------------------------------------------------- SVD
def _known_weights():
    """W = E Vᵀ + 1 w0ᵀ with centred, orthogonal class embeddings E (4, 2): |e1|² = 120 > |e2|² = 44."""
    e1 = np.array([8.0, 2.0, -4.0, -6.0])  # largest entry +8: sign kept -> + + - -
    e2 = np.array([3.0, -5.0, -1.0, 3.0])  # largest |entry| is -5: column flipped -> - + + -
    v, _ = np.linalg.qr(np.random.default_rng(1).standard_normal((5, 2)))
    return np.outer(e1, v[:, 0]) + np.outer(e2, v[:, 1]) + np.array([1.0, -2.0, 0.5, 3.0, 7.0])


def test_svd_codes_of_a_known_matrix():
    codes = build_codebook("svd", 4, 2, weights=_known_weights())
    np.testing.assert_array_equal(codes, [[1, -1], [1, 1], [-1, 1], [-1, -1]])


def test_svd_pads_beyond_the_rank_with_seeded_random_projections():
    w = _known_weights()
    a, b = build_codebook("svd", 4, 6, weights=w, seed=0), build_codebook("svd", 4, 6, weights=w, seed=1)
    np.testing.assert_array_equal(a[:, :2], [[1, -1], [1, 1], [-1, 1], [-1, -1]])  # rank 2: SVD bits first
    assert not np.array_equal(a[:, 2:], b[:, 2:])  # the padding bits depend on the seed


def test_svd_accepts_a_torch_weight():
    w = _known_weights()
    np.testing.assert_array_equal(build_codebook("svd", 4, 2, weights=torch.tensor(w, requires_grad=True)),
                                  build_codebook("svd", 4, 2, weights=w))


# ----------------------------------------------------------------------------- CCA
def test_cca_codes_recover_the_class_layout():
    """Four classes at (±2, ±1) in 2-d: LDA directions are x (larger spread) then y, so bit 0
    splits by the sign of x, bit 1 by the sign of y, and the codes are the four sign patterns."""
    rng = np.random.default_rng(0)
    means = np.array([[2.0, 1.0], [2.0, -1.0], [-2.0, 1.0], [-2.0, -1.0]])
    y = np.arange(800) % 4
    x = means[y] + 0.1 * rng.standard_normal((800, 2))
    codes = build_codebook("cca", 4, 2, features=x, labels=y)
    assert codebook_stats(codes)["distinct"] == 4
    assert codes[0, 0] == codes[1, 0] != codes[2, 0] == codes[3, 0]  # bit 0: sign of x
    assert codes[0, 1] == codes[2, 1] != codes[1, 1] == codes[3, 1]  # bit 1: sign of y
    np.testing.assert_array_equal(_distances(codes), _distances(np.sign(means)))


# ----------------------------------------------------------------------------- Hadamard and lexicode
@pytest.mark.parametrize("n", [1, 2, 4, 8, 16])
def test_sylvester_hadamard_is_orthogonal(n):
    h = sylvester_hadamard(n).astype(int)
    np.testing.assert_array_equal(h @ h.T, n * np.eye(n, dtype=int))


@pytest.mark.parametrize("classes,bits", [(10, 8), (14, 8), (7, 8), (30, 16)])
def test_hadamard_distance_property(classes, bits):
    codes = build_codebook("hadamard", classes, bits)
    d = _distances(codes)
    iu = np.triu_indices(classes, 1)
    assert set(d[iu]) <= {bits // 2, bits}  # k/2 between rows, k between a row and its negation
    assert d[iu].min() == bits // 2
    half = bits - 1  # rows 1..k-1 of H: pairwise exactly k/2, every bit balanced over them
    assert (d[:min(classes, half), :min(classes, half)][np.triu_indices(min(classes, half), 1)] == bits // 2).all()
    if classes >= half:
        np.testing.assert_array_equal(to_bits(codes[:half]).sum(0)[1:], np.full(bits - 1, bits // 2 - 1))


def test_hadamard_exists_only_for_powers_of_two_and_few_classes():
    assert hadamard_exists(10, 8) and hadamard_exists(14, 8) and not hadamard_exists(15, 8)
    assert not hadamard_exists(10, 12) and not hadamard_exists(242, 64)
    with pytest.raises(ValueError, match="no Hadamard code"):
        build_codebook("hadamard", 10, 4)


def test_lexicode_of_length_7_is_the_hamming_code():
    codes = build_codebook("lexicode", 16, 7)
    b = to_bits(codes)
    assert codebook_stats(codes)["min distance"] == 3 and codebook_stats(codes)["distinct"] == 16
    words = {tuple(r) for r in b}
    assert all(tuple(np.bitwise_xor(u, v)) in words for u in b for v in b)  # linear: closed under XOR
    np.testing.assert_array_equal(build_codebook("lexicode", 2, 5), [[-1] * 5, [1] * 5])  # 00000, 11111


def test_codebook_stats_by_hand():
    bits = np.array([[0, 0, 0], [1, 1, 0], [1, 1, 0]])  # distances 2, 2, 0
    s = codebook_stats(bits)
    assert s == {"distinct": 2, "min distance": 0, "mean distance": pytest.approx(4 / 3),
                 "bit balance": pytest.approx((1 / 6 + 1 / 6 + 1 / 2) / 3)}
    assert codebook_stats(2.0 * bits - 1) == s


# ----------------------------------------------------------------------------- ablation helpers
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


def _feature_problem(n=128, classes=4, seed=0):
    g = torch.Generator().manual_seed(seed)

    def make():
        y = torch.randint(0, classes, (n,), generator=g)
        x = 3.0 * torch.eye(classes)[y] + 0.3 * torch.randn(n, classes, generator=g)
        return torch.utils.data.TensorDataset(x, y)

    return DataBundle("toyfeat-features", make(), make(), [f"c{i}" for i in range(classes)], None, (classes,))


def test_fit_codes_on_features_learns_a_separable_problem():
    feats = _feature_problem()
    cfg = FeatureConfig(phase1_epochs=1, phase2_epochs=1, batch_size=32)
    fixed = build_codebook("hadamard", 4, 4)
    p1, p2 = fit_codes_on_features(feats, 4, cfg, fixed, learn_codebook=False)
    np.testing.assert_array_equal(p2.head.class_codes().numpy(), fixed)  # a fixed codebook stays fixed
    x, y = feats.test.tensors
    with torch.no_grad():
        bits = decode.signs_to_bits(p2.head.bit_logits(x))
    acc = (decode.mhd_decode(bits, to_bits(fixed)).pred == y.numpy()).mean()
    assert acc > 0.95


def test_phase2_with_codebook_freezes_the_codes_and_caches(toy_bundle, tmp_path, monkeypatch):
    from llcpkg.experiments import stage_configs
    from llcpkg.models import ModelConfig
    from llcpkg.profiles import get_profile
    from llcpkg.train import train_baseline

    monkeypatch.setenv("LLC_CACHE", str(tmp_path))
    prof = get_profile("smoke", width=4)
    cfgs = stage_configs(prof, 1_000_000)  # one epoch per stage
    base = train_baseline(toy_bundle, ModelConfig(width=4), cfgs["baseline"], tmp_path)
    codes = build_codebook("hadamard", 4, 4)
    kw = dict(proj_cfg=FeatureConfig(1, 1, batch_size=64), cfg=cfgs["phase2"])
    trained = phase2_with_codebook(toy_bundle, prof, base, codes, **kw)
    np.testing.assert_array_equal(trained.model.head.class_codes().numpy(), codes)
    assert len(list(tmp_path.glob("phase2cb-*.pt"))) == 1
    again = phase2_with_codebook(toy_bundle, prof, base, codes, **kw)
    for a, b in zip(trained.model.state_dict().values(), again.model.state_dict().values()):
        torch.testing.assert_close(a, b)
