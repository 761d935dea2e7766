"""Codebook constructions and code-length rules (llcpkg.codebooks), on tiny problems with
hand-computed answers."""
import math

import numpy as np
import pytest
import torch

from llcpkg import decode
from llcpkg.codebooks import (CODEBOOKS, build_codebook, code_length, codebook_stats, default_bits, hadamard_exists,
                              list_codebooks, sylvester_hadamard, to_bits)


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


def test_code_length_rules():
    assert default_bits(10) == {"paper ratio": 8, "minimum": 4}
    assert default_bits(1000) == {"paper ratio": 20, "minimum": 10}
    assert code_length(242) == 16 and code_length(242, 5) == 5
