"""Decoders (llcpkg.decode): hand-computed cases, brute-force equality (ties included), errors."""
from math import comb

import numpy as np
import pytest

from llcpkg.decode import (
    DECODERS, CodeTable, PackedCodes, ball_decode, ball_lookups, decode, ed_decode,
    hamming_distances, mhd_decode, mips_decode, pack_bits, signs_to_bits, unpack_bits,
)

# 4 classes, 3 bits; class 3 duplicates class 1's code.
CODEBOOK = np.array([[0, 0, 0], [0, 1, 1], [1, 0, 1], [0, 1, 1]], np.uint8)
QUERIES = np.array([[0, 0, 0], [0, 0, 1], [1, 1, 1], [0, 1, 1], [1, 1, 0]], np.uint8)


# ------------------------------------------------------------------ brute-force references
def ref_mhd(q, cb, tie="lowest", scores=None, seed=0):
    """One query at a time: all classes at the minimum distance, then the tie policy."""
    q, cb = np.asarray(q, np.int64), np.asarray(cb, np.int64)
    u = np.random.default_rng(seed).random(len(q))
    pred, dist, n_tied = [], [], []
    for i, x in enumerate(q):
        d = (x[None, :] != cb).sum(axis=1)
        tied = np.flatnonzero(d == d.min())  # ascending class index
        if tie == "lowest":
            p = tied[0]
        elif tie == "random":
            p = tied[min(int(u[i] * len(tied)), len(tied) - 1)]
        else:
            s = (scores[i].astype(np.float64)[None, :] * (2.0 * cb[tied] - 1.0)).sum(axis=1)
            p = tied[np.flatnonzero(s == s.max())[0]]
        pred.append(p), dist.append(d.min()), n_tied.append(len(tied))
    return np.array(pred), np.array(dist), np.array(n_tied)


def ref_ed(q, cb):
    out = []
    for x in np.asarray(q):
        hit = np.flatnonzero((np.asarray(cb) == x[None, :]).all(axis=1))
        out.append(hit[0] if hit.size else -1)
    return np.array(out)


def random_case(rng, n, L, k):
    cb = rng.integers(0, 2, (L, k), dtype=np.uint8)
    scores = rng.normal(size=(n, k))
    return (scores >= 0).astype(np.uint8), cb, scores


# ------------------------------------------------------------------ hand-computed
def test_mhd_hand_computed_lowest():
    r = mhd_decode(QUERIES, CODEBOOK)
    np.testing.assert_array_equal(r.distance, [0, 1, 1, 0, 2])
    np.testing.assert_array_equal(r.n_tied, [1, 4, 3, 2, 4])
    np.testing.assert_array_equal(r.pred, [0, 0, 1, 1, 0])


def test_mhd_hand_computed_score_tie():
    # query 111 ties classes 1, 2, 3 at distance 1; <z, +-code>: class 1 = 3 -> -0.3, class 2 -> 0.5
    z = np.array([[0.9, 0.5, 0.1]])
    assert mhd_decode(signs_to_bits(z), CODEBOOK, tie="score", scores=z).pred[0] == 2
    z = np.array([[0.1, 0.5, 0.9]])  # classes 1 and 3 tie on score (same code): lowest -> 1
    assert mhd_decode(signs_to_bits(z), CODEBOOK, tie="score", scores=z).pred[0] == 1


def test_ed_hand_computed_unassigned_and_duplicates():
    table = CodeTable(CODEBOOK)
    assert table.n_distinct == 3 and table.n_classes == 4
    np.testing.assert_array_equal(table.lookup(QUERIES), [0, -1, -1, 1, -1])
    np.testing.assert_array_equal(ed_decode(QUERIES, CODEBOOK), [0, -1, -1, 1, -1])
    np.testing.assert_array_equal(table.members(table.lookup_ids(PackedCodes.from_bits(
        CODEBOOK[1:2]).words)[0]), [1, 3])


def test_ball_hand_computed():
    r = ball_decode(QUERIES, CODEBOOK, r_max=1)
    np.testing.assert_array_equal(r.pred, [0, 0, 1, 1, -1])
    np.testing.assert_array_equal(r.radius, [0, 1, 1, 0, -1])
    np.testing.assert_array_equal(r.lookups, [1, 4, 4, 1, 4])
    np.testing.assert_array_equal(r.n_tied, [1, 4, 3, 2, 0])


def test_mips_hand_computed_ties_lowest():
    cb = np.array([[1, -1], [1, 1], [1, 1]], float)
    np.testing.assert_array_equal(mips_decode([[1.0, 0.0], [0.0, 2.0], [-1, -1]], cb), [0, 1, 0])


# ------------------------------------------------------------------ brute force, ties included
@pytest.mark.parametrize("k,L", [(1, 3), (3, 40), (7, 100), (12, 300), (70, 50)])
@pytest.mark.parametrize("tie", ["lowest", "random", "score"])
@pytest.mark.parametrize("backend", ["numpy", "faiss"])
def test_mhd_equals_brute_force(k, L, tie, backend):
    rng = np.random.default_rng(k * 1000 + L)
    q, cb, z = random_case(rng, 60, L, k)
    r = mhd_decode(q, cb, tie=tie, scores=z, seed=7, backend=backend)
    pred, dist, n_tied = ref_mhd(q, cb, tie, z, seed=7)
    assert (n_tied > 1).any() or k == 70  # the case exercises ties
    np.testing.assert_array_equal(r.distance, dist)
    np.testing.assert_array_equal(r.n_tied, n_tied)
    np.testing.assert_array_equal(r.pred, pred)


def test_mhd_faiss_equals_numpy_with_tie_groups_longer_than_knn():
    rng = np.random.default_rng(0)
    q, cb, z = random_case(rng, 200, 500, 5)  # ~16 classes per code: tie groups beyond K
    for tie in ("lowest", "random", "score"):
        a = mhd_decode(q, cb, tie, z, seed=1, backend="numpy")
        b = mhd_decode(q, cb, tie, z, seed=1, backend="faiss")
        for f in ("pred", "distance", "n_tied"):
            np.testing.assert_array_equal(getattr(a, f), getattr(b, f))


def test_mhd_small_blocks_and_packed_inputs_agree():
    rng = np.random.default_rng(1)
    q, cb, z = random_case(rng, 37, 123, 9)
    a = mhd_decode(q, cb, "score", z)
    b = mhd_decode(PackedCodes.from_bits(q), PackedCodes.from_bits(cb), "score", z, block=50)
    np.testing.assert_array_equal(a.pred, b.pred)
    np.testing.assert_array_equal(a.n_tied, b.n_tied)


@pytest.mark.parametrize("k", [1, 5, 9, 64, 65, 130])
def test_hamming_distances_equal_brute_force(k):
    rng = np.random.default_rng(k)
    q, cb, _ = random_case(rng, 11, 29, k)
    ref = (q[:, None, :] != cb[None, :, :]).sum(axis=2)
    np.testing.assert_array_equal(hamming_distances(q, cb), ref)
    np.testing.assert_array_equal(hamming_distances(q, cb, block=7), ref)


@pytest.mark.parametrize("k,L", [(4, 10), (10, 300), (64, 200), (100, 60)])
def test_ed_equals_brute_force(k, L):
    rng = np.random.default_rng(k + L)
    cb = rng.integers(0, 2, (L, k), dtype=np.uint8)
    cb[L // 2:L // 2 + 3] = cb[1]  # duplicates of class 1: class 1 owns the key
    q = np.concatenate([cb[rng.integers(0, L, 40)], rng.integers(0, 2, (40, k), dtype=np.uint8)])
    pred = ed_decode(q, cb)
    np.testing.assert_array_equal(pred, ref_ed(q, cb))
    assert (pred[:40] >= 0).all() and (pred[:40] != L // 2).all()


@pytest.mark.parametrize("k,L", [(3, 5), (6, 40), (9, 100)])
@pytest.mark.parametrize("tie", ["lowest", "random", "score"])
def test_ball_full_radius_is_mhd_and_zero_radius_is_ed(k, L, tie):
    rng = np.random.default_rng(k * L)
    q, cb, z = random_case(rng, 50, L, k)
    full = ball_decode(q, cb, r_max=k, tie=tie, scores=z, seed=3)
    m = mhd_decode(q, cb, tie=tie, scores=z, seed=3)
    np.testing.assert_array_equal(full.pred, m.pred)
    np.testing.assert_array_equal(full.radius, m.distance)
    np.testing.assert_array_equal(full.n_tied, m.n_tied)
    np.testing.assert_array_equal(ball_decode(q, cb, r_max=0).pred, ed_decode(q, cb))


@pytest.mark.parametrize("k,r_max", [(8, 2), (20, 1), (70, 2)])
def test_ball_partial_radius_and_lookup_count(k, r_max):
    rng = np.random.default_rng(k)
    q, cb, z = random_case(rng, 80, 300, k)
    q[:10] = cb[:10]
    q[10:20, 0] ^= cb[10:20, 0]  # some queries near a class
    r = ball_decode(q, CodeTable(cb), r_max=r_max, tie="score", scores=z)
    pred, dist, n_tied = ref_mhd(q, cb, "score", z)
    inside = dist <= r_max
    np.testing.assert_array_equal(r.pred, np.where(inside, pred, -1))
    np.testing.assert_array_equal(r.radius, np.where(inside, dist, -1))
    np.testing.assert_array_equal(r.n_tied, np.where(inside, n_tied, 0))
    searched = np.where(inside, dist, r_max)
    np.testing.assert_array_equal(r.lookups, [ball_lookups(k, int(s)) for s in searched])
    assert ball_lookups(k, 2) == 1 + k + comb(k, 2)


# ------------------------------------------------------------------ packing
@pytest.mark.parametrize("k", [1, 7, 8, 9, 16, 33, 64, 65, 130])
def test_pack_unpack_round_trip(k):
    rng = np.random.default_rng(k)
    bits = rng.integers(0, 2, (13, k), dtype=np.uint8)
    packed = pack_bits(bits)
    assert packed.shape == (13, -(-k // 8)) and packed.dtype == np.uint8
    np.testing.assert_array_equal(packed, np.packbits(bits, axis=1, bitorder="little"))
    np.testing.assert_array_equal(unpack_bits(packed, k), bits)
    codes = PackedCodes.from_bits(bits)
    np.testing.assert_array_equal(codes.packed, packed)
    np.testing.assert_array_equal(codes.bits(), bits)
    if k % 8:  # padding bits are zero
        assert (packed[:, -1] >> (k % 8) == 0).all()


def test_bit_order_is_lsb_first():
    np.testing.assert_array_equal(pack_bits([[1, 0, 0, 0, 0, 0, 0, 0, 0, 1]]), [[1, 2]])


def test_signs_to_bits_zero_is_plus_one_and_accepts_torch():
    np.testing.assert_array_equal(signs_to_bits([[-1.0, 0.0, 2.0]]), [[0, 1, 1]])
    torch = pytest.importorskip("torch")
    t = torch.tensor([[-0.5, 0.0, 3.0]], requires_grad=True)
    np.testing.assert_array_equal(signs_to_bits(t), [[0, 1, 1]])


# ------------------------------------------------------------------ faiss's own rules, verified
def test_faiss_flat_knn_breaks_distance_ties_by_lowest_id():
    faiss = pytest.importorskip("faiss")
    rng = np.random.default_rng(0)
    for nq in (1, 7, 64):  # faiss switches code paths with the batch size
        cb = rng.integers(0, 4, (300, 1), dtype=np.uint8)  # 2 used bits: many ties
        q = rng.integers(0, 4, (nq, 1), dtype=np.uint8)
        index = faiss.IndexBinaryFlat(8)
        index.add(cb)
        _, ids = index.search(q, 1)
        ref = np.bitwise_count(q ^ cb.T).argmin(axis=1)
        np.testing.assert_array_equal(ids[:, 0], ref)


def test_faiss_hash_range_search_excludes_the_radius():
    faiss = pytest.importorskip("faiss")
    cb = pack_bits(CODEBOOK)
    index = faiss.IndexBinaryHash(8, 8)
    index.add(cb)
    q = pack_bits(QUERIES[3:4])  # 011: classes 1 and 3 match exactly
    lims, _, ids = index.range_search(q, 1)
    assert sorted(ids[lims[0]:lims[1]]) == [1, 3]
    lims, _, _ = index.range_search(q, 0)
    assert lims[1] == 0


# ------------------------------------------------------------------ registry
@pytest.mark.parametrize("name", sorted(DECODERS))
def test_registry_decoders_run_and_agree(name):
    rng = np.random.default_rng(2)
    _, cb, z = random_case(rng, 30, 20, 6)
    pred = decode(name, z, cb)
    assert pred.shape == (30,) and pred.dtype == np.int64
    assert ((pred >= -1) & (pred < 20)).all()
    bits = signs_to_bits(z)
    expected = {"mhd": mhd_decode(bits, cb).pred, "ed": ed_decode(bits, cb),
                "mhd_score": mhd_decode(bits, cb, "score", z).pred,
                "ball1": ball_decode(bits, cb, 1).pred, "ball2": ball_decode(bits, cb, 2).pred,
                "mips": mips_decode(z, 2.0 * cb - 1.0)}
    np.testing.assert_array_equal(pred, expected[name])


# ------------------------------------------------------------------ errors
def test_bad_inputs_raise_value_error():
    cb = CODEBOOK
    with pytest.raises(ValueError, match="k = 4"):
        mhd_decode(np.zeros((2, 4)), cb)
    with pytest.raises(ValueError, match="k = 4"):
        ed_decode(np.zeros((2, 4)), cb)
    with pytest.raises(ValueError, match="k = 4"):
        ball_decode(np.zeros((2, 4)), cb, 1)
    with pytest.raises(ValueError, match="k = 4"):
        hamming_distances(np.zeros((2, 4)), cb)
    with pytest.raises(ValueError, match="k = 4"):
        mips_decode(np.zeros((2, 4)), cb)
    with pytest.raises(ValueError, match="0/1"):
        mhd_decode(2 * QUERIES.astype(int) - 1, cb)  # +-1 codes are not bits
    with pytest.raises(ValueError, match="0/1"):
        CodeTable(cb * 2)
    with pytest.raises(ValueError, match="k must be >= 1"):
        pack_bits(np.zeros((3, 0)))
    with pytest.raises(ValueError, match="scores"):
        mhd_decode(QUERIES, cb, tie="score")
    with pytest.raises(ValueError, match="tie"):
        mhd_decode(QUERIES, cb, tie="first")
    with pytest.raises(ValueError, match="backend"):
        mhd_decode(QUERIES, cb, backend="gpu")
    with pytest.raises(ValueError, match="r_max"):
        ball_decode(QUERIES, cb, 4)
    with pytest.raises(ValueError, match="unknown decoder"):
        decode("nope", np.zeros((1, 3)), cb)
