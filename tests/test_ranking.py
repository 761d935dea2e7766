"""Retrieval metrics (llcpkg.ranking): hand-computed APs, brute force over tie orders, scikit-learn."""
from itertools import permutations, product

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from llcpkg.ranking import (
    cosine_levels, default_cutoffs, evaluate_retrieval, expected_average_precision, expected_hits, rank_histograms,
)


# ------------------------------------------------------------------ brute-force references
def ap_of_order(rel: np.ndarray, R: int | None) -> float:
    """AP@R of one ranked relevance list (HashNet/GreedyHash convention: mean precision over
    the relevant items in the top R; 0 if none)."""
    top = np.asarray(rel[: len(rel) if R is None else R], float)
    if R is None:
        denom = np.sum(rel)
    else:
        denom = top.sum()
    if denom == 0:
        return 0.0
    ranks = np.flatnonzero(top) + 1
    return float((np.arange(1, len(ranks) + 1) / ranks).sum() / denom)


def brute_force(levels: np.ndarray, rel: np.ndarray, R: int | None, cutoffs=()) -> tuple[float, np.ndarray]:
    """Average over every order of the items within each tie level (the `expected` policy)."""
    groups = [np.flatnonzero(levels == v) for v in np.unique(levels)]
    aps, hits = [], []
    for perms in product(*(permutations(g) for g in groups)):
        order = np.concatenate([np.array(p, int) for p in perms])
        ranked = rel[order]
        aps.append(ap_of_order(ranked, R))
        hits.append([ranked[:c].sum() for c in cutoffs])
    return float(np.mean(aps)), np.mean(np.array(hits, float), axis=0) if cutoffs else np.zeros(0)


def hist(levels, rel, n_levels):
    """(1, n_levels) histograms of one query whose same-class items are ``rel``."""
    n, r = rank_histograms(np.asarray(levels)[None, :], np.array([1]), np.where(rel, 1, 0), n_levels)
    return n, r


# ------------------------------------------------------------------ hand-computed
def test_five_items_hand_computed_tie_over_all():
    # distances 0, 1, 1, 2, 3; relevant items 0, 2, 3. The tie at distance 1 holds one relevant
    # and one irrelevant item: orders give AP (1 + 2/3 + 3/4)/3 or (1 + 1 + 3/4)/3; mean 31/36.
    n, r = hist([0, 1, 1, 2, 3], np.array([1, 0, 1, 1, 0], bool), 4)
    assert expected_average_precision(n, r)[0] == pytest.approx(31 / 36, abs=1e-12)
    # top 3: (1 + 2/3)/2 or (1 + 1)/2 -> 11/12
    assert expected_average_precision(n, r, R=3)[0] == pytest.approx(11 / 12, abs=1e-12)
    # precision@2: 1 + 1/2 relevant expected in the top 2
    assert expected_hits(n, r, [1, 2, 3, 5])[0] == pytest.approx([1, 1.5, 2, 3])


def test_cut_through_a_tie_uses_the_random_denominator():
    # item 0 irrelevant; a 3-way tie holding one relevant item; R = 2 keeps one of the three:
    # the relevant one (prob 1/3) is then at rank 2 -> AP@2 = 1/2, else 0 -> expected 1/6.
    n, r = hist([0, 1, 1, 1, 2], np.array([0, 1, 0, 0, 1], bool), 3)
    assert expected_average_precision(n, r, R=2)[0] == pytest.approx(1 / 6, abs=1e-12)


def test_no_relevant_retrieved_gives_zero():
    n, r = hist([0, 0, 1, 2], np.array([0, 0, 0, 1], bool), 3)
    assert expected_average_precision(n, r, R=2)[0] == 0.0
    assert expected_average_precision(n, r)[0] == pytest.approx(1 / 4)


# ------------------------------------------------------------------ brute force, ties included
@pytest.mark.parametrize("seed", range(12))
def test_expected_ap_and_hits_equal_brute_force(seed):
    rng = np.random.default_rng(seed)
    N = int(rng.integers(3, 8))
    levels = rng.integers(0, 3, N)  # few levels: many ties
    rel = rng.random(N) < 0.5
    n, r = hist(levels, rel, 3)
    cuts = list(range(1, N + 1))
    for R in [None, *cuts]:
        want, hits = brute_force(levels, rel, R, cuts)
        assert expected_average_precision(n, r, R)[0] == pytest.approx(want, abs=1e-12), (levels, rel, R)
    np.testing.assert_allclose(expected_hits(n, r, cuts)[0], hits, atol=1e-12)


def test_evaluate_hamming_equals_brute_force_per_query():
    rng = np.random.default_rng(3)
    db, yd = rng.integers(0, 2, (7, 3)).astype(np.uint8), rng.integers(0, 2, 7)
    q, yq = rng.integers(0, 2, (4, 3)).astype(np.uint8), rng.integers(0, 2, 4)
    res = evaluate_retrieval(q, db, yq, yd, "hamming", R=3, cutoffs=[1, 3, 7], block=3)
    for i in range(4):
        dist = (q[i][None, :] != db).sum(1)
        want_R, hits = brute_force(dist, yd == yq[i], 3, [1, 3, 7])
        want_all, _ = brute_force(dist, yd == yq[i], None)
        assert res.ap_at_R[i] == pytest.approx(want_R, abs=1e-12)
        assert res.ap[i] == pytest.approx(want_all, abs=1e-12)


def test_real_scores_are_read_through_their_signs():
    rng = np.random.default_rng(0)
    z_db, z_q = rng.normal(size=(20, 8)), rng.normal(size=(5, 8))
    yd, yq = rng.integers(0, 3, 20), rng.integers(0, 3, 5)
    a = evaluate_retrieval(z_q, z_db, yq, yd, R=10)
    b = evaluate_retrieval((z_q >= 0).astype(np.uint8), (z_db >= 0).astype(np.uint8), yq, yd, R=10)
    np.testing.assert_array_equal(a.ap_at_R, b.ap_at_R)


# ------------------------------------------------------------------ scikit-learn cross-check
def test_cosine_map_equals_sklearn_average_precision():
    # 2-D unit vectors at distinct whole-degree angles: cosines to each query differ by far
    # more than the rounding grid, so there are no ties and AP must equal scikit-learn's.
    rng = np.random.default_rng(0)
    ang = np.deg2rad(rng.permutation(180)[:60].astype(float))
    db, yd = np.c_[np.cos(ang), np.sin(ang)], rng.integers(0, 3, 60)
    qa = np.deg2rad(np.array([0.25, 40.25, 91.25, 150.25]))
    q, yq = np.c_[np.cos(qa), np.sin(qa)], np.array([0, 1, 2, 1])
    res = evaluate_retrieval(q, db, yq, yd, "cosine", R=10)
    cos = q @ db.T
    for i in range(len(q)):
        levels, _ = cosine_levels(q[i:i + 1], db)
        assert len(np.unique(levels)) == len(db)  # really no ties
        assert res.ap[i] == pytest.approx(average_precision_score(yd == yq[i], cos[i]), abs=1e-9)
        top = np.argsort(-cos[i])[:10]
        assert res.ap_at_R[i] == pytest.approx(ap_of_order(yd[top] == yq[i], None), abs=1e-9)


def test_curves_are_monotone_and_end_at_full_recall():
    rng = np.random.default_rng(1)
    db, yd = rng.integers(0, 2, (300, 8)).astype(np.uint8), rng.integers(0, 4, 300)
    q, yq = rng.integers(0, 2, (30, 8)).astype(np.uint8), rng.integers(0, 4, 30)
    res = evaluate_retrieval(q, db, yq, yd, R=100)
    assert res.cutoffs[-1] == 300 and 100 in res.cutoffs
    assert np.all(np.diff(res.recall) >= -1e-12) and res.recall[-1] == pytest.approx(1.0)
    assert res.precision[-1] == pytest.approx(np.mean([(yd == y).mean() for y in yq]))
    assert res.precision_at(100) == pytest.approx(res.precision[list(res.cutoffs).index(100)])


def test_bad_inputs_raise():
    with pytest.raises(ValueError):
        expected_average_precision([[1, 1]], [[2, 0]])
    with pytest.raises(ValueError):
        evaluate_retrieval(np.zeros((1, 3), np.uint8), np.zeros((2, 3), np.uint8), [0], [0, 1], metric="l2")
    assert list(default_cutoffs(10, R=4, points=3)) == [1, 3, 4, 10]


# ------------------------------------------------------------------ top-R by counting (no sort)
@pytest.mark.parametrize("N, levels_max, R", [(7, 3, 1), (7, 3, 4), (7, 3, 7), (7, 3, 20), (5000, 16, 100),
                                               (5000, 64, 1000), (9000, 2, 3000)])
def test_top_r_is_the_sorted_prefix_with_its_tie_block(N, levels_max, R):
    from llcpkg.ranking import top_r

    levels = np.random.default_rng(N + R).integers(0, levels_max + 1, N).astype(np.uint8)
    got = top_r(levels, R, levels_max + 1)
    ranked = np.sort(levels, kind="stable")
    t = int(ranked[min(R, N) - 1])  # the level of the R-th best item
    assert got.level == t
    assert got.n_before == (np.count_nonzero(levels < t) if R < N else N)
    np.testing.assert_array_equal(got.ids, np.flatnonzero(levels <= t))


def test_hamming_top_r_agrees_with_the_expected_hits_of_the_histograms():
    from llcpkg.decode import PackedCodes, hamming_distances
    from llcpkg.ranking import hamming_levels, hamming_top_r

    rng = np.random.default_rng(3)
    db, q = rng.integers(0, 2, (3000, 20)), rng.integers(0, 2, (70, 20))
    yd, yq = rng.integers(0, 5, 3000), rng.integers(0, 5, 70)
    R = 250
    levels, L = hamming_levels(q, PackedCodes.from_bits(db))
    np.testing.assert_array_equal(levels, hamming_distances(q, db))  # uint8 levels, same values
    n, r = rank_histograms(levels, yq, yd, L)
    expected = expected_hits(n, r, [R])[:, 0]
    for i, top in enumerate(hamming_top_r(q, PackedCodes.from_bits(db), R)):
        d, rel = levels[i, top.ids], yd[top.ids] == yq[i]
        tied = d == top.level
        hits = rel[~tied].sum() + (R - top.n_before) * rel[tied].mean()  # tie block: random subset
        assert hits == pytest.approx(expected[i])
