"""Hamming kernels and the distinct-code ranking (llcpkg.hamming) against brute force and the direct path.

Every test runs twice: with the compiled (numba) kernels and with the numpy fallback.
"""
import numpy as np
import pytest

from llcpkg import hamming, ranking
from llcpkg.decode import PackedCodes, hamming_distances, mhd_decode
from llcpkg.ranking import evaluate_retrieval, hamming_levels, hamming_top_r, rank_histograms, top_r

KS = [1, 7, 8, 16, 20, 32, 64, 65, 128]


def brute_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, k) x (m, k) {0,1} bits -> (n, m) Hamming distances by unpacked comparison."""
    return (a[:, None, :] != b[None, :, :]).sum(-1)


def tied_codes(rng, n: int, k: int, distinct: int) -> np.ndarray:
    """(n, k) bits drawn from ``distinct`` random codes: many repeated codes, many ties."""
    pool = rng.integers(0, 2, (distinct, k), dtype=np.uint8)
    return pool[rng.integers(0, distinct, n)]


@pytest.fixture(autouse=True, params=["compiled", "numpy"])
def kernels(request, monkeypatch):
    """Run the test on the compiled kernels (skipped without numba), then on the numpy path."""
    if request.param == "compiled":
        pytest.importorskip("numba")
        monkeypatch.setattr(hamming, "USE_COMPILED", True)
        assert hamming.compiled() is not None
    else:
        monkeypatch.setattr(hamming, "USE_COMPILED", False)
        assert hamming.compiled() is None and hamming.nearest(np.zeros((1, 1), np.uint8), np.zeros((1, 1), np.uint8)) is None
    return request.param


@pytest.fixture
def force_path(monkeypatch):
    """force_path(True) ranks over distinct codes whatever U is; force_path(False) never."""
    def force(distinct: bool):
        monkeypatch.setattr(hamming, "DISTINCT_MAX_FRACTION", np.inf if distinct else -1.0)
    return force


# ------------------------------------------------------------------ kernels
@pytest.mark.parametrize("k", KS + [300])
@pytest.mark.parametrize("nq", [1, 5])
def test_distance_rows_equal_brute_force(k, nq):
    rng = np.random.default_rng(k * 10 + nq)
    a, b = rng.integers(0, 2, (nq, k), dtype=np.uint8), rng.integers(0, 2, (257, k), dtype=np.uint8)
    dtype = np.uint8 if k < 256 else np.uint16
    out = hamming.distance_rows(PackedCodes.from_bits(a).words, PackedCodes.from_bits(b).words,
                                np.empty((nq, 257), dtype))
    assert np.array_equal(out, brute_distances(a, b))


@pytest.mark.parametrize("k", KS)
@pytest.mark.parametrize("block", [1, 7, None])
def test_blocked_distances_equal_brute_force(k, block):
    """Blocks of one word, of a few words and the default: the block edges change nothing."""
    rng = np.random.default_rng(k)
    a, b = rng.integers(0, 2, (3, k), dtype=np.uint8), rng.integers(0, 2, (50, k), dtype=np.uint8)
    ref = brute_distances(a, b)
    assert np.array_equal(hamming_distances(a, b, block=block), ref)
    assert np.array_equal(hamming_distances(a, b, block=block, dtype=np.uint8), ref)


def test_all_bits_set_reach_distance_k():
    """The byte-sum multiply must not carry: all-ones against all-zeros is k for every word size."""
    for k in KS:
        ones, zeros = np.ones((1, k), np.uint8), np.zeros((2, k), np.uint8)
        assert hamming_distances(ones, zeros, dtype=np.uint8).tolist() == [[k, k]]


def brute_mhd(a: np.ndarray, b: np.ndarray, tie: str, scores: np.ndarray, seed: int) -> tuple:
    """MHD by definition (module docstring of llcpkg.decode): pred, distance, n_tied per query."""
    d = brute_distances(a, b)
    u = np.random.default_rng(seed).random(len(a))
    pred = []
    for i, row in enumerate(d):
        tied = np.flatnonzero(row == row.min())
        if tie == "random":
            pred.append(tied[min(int(u[i] * len(tied)), len(tied) - 1)])
        elif tie == "score":
            s = ((2.0 * b[tied] - 1.0) * scores[i]).sum(1)
            pred.append(tied[np.flatnonzero(s == s.max())[0]])
        else:
            pred.append(tied[0])
    return np.array(pred), d.min(1), (d == d.min(1)[:, None]).sum(1)


@pytest.mark.parametrize("k", KS)
@pytest.mark.parametrize("tie", ["lowest", "random", "score"])
def test_mhd_equals_brute_force_ties_included(k, tie):
    """A codebook of few distinct codes (many tied classes), over several code blocks."""
    rng = np.random.default_rng(k)
    cb = tied_codes(rng, 5000, k, 40)
    q = np.concatenate([tied_codes(rng, 5, k, 40), rng.integers(0, 2, (4, k), dtype=np.uint8)])
    scores = rng.standard_normal(q.shape)
    res = mhd_decode(q, cb, tie=tie, scores=scores if tie == "score" else None, seed=3, block=3 * 5000)
    pred, dist, n_tied = brute_mhd(q, cb, tie, scores, 3)
    assert np.array_equal(res.pred, pred) and np.array_equal(res.distance, dist)
    assert np.array_equal(res.n_tied, n_tied) and n_tied.max() > 1


@pytest.mark.parametrize("k", [3, 16, 64, 65])
def test_direct_top_r_equals_its_definition(k, force_path):
    """The direct (non-distinct) top-R of many queries, small and large R, ties included."""
    force_path(False)
    rng = np.random.default_rng(k)
    db = tied_codes(rng, 3000, k, 200)
    q = np.concatenate([tied_codes(rng, 20, k, 200), rng.integers(0, 2, (20, k), dtype=np.uint8)])
    d = brute_distances(q, db)
    for R in (1, 5, 700, 2999, 3000):
        for row, t in zip(d, hamming_top_r(q, PackedCodes.from_bits(db), R), strict=True):
            cut = int(np.argmax(np.cumsum(np.bincount(row, minlength=k + 1)) >= R)) if R < 3000 else row.max()
            assert t.level == cut and np.array_equal(t.ids, np.flatnonzero(row <= cut))
            assert t.n_before == ((row < cut).sum() if R < 3000 else 3000)


# ------------------------------------------------------------------ distinct codes
def test_distinct_codes_group_every_item_once_in_id_order():
    rng = np.random.default_rng(0)
    bits = tied_codes(rng, 200, 12, 9)
    dc = hamming.DistinctCodes.of(PackedCodes.from_bits(bits).words)
    assert dc.n_distinct == len(np.unique(bits, axis=0))
    assert dc.counts.sum() == 200 and np.array_equal(np.sort(dc.order), np.arange(200))
    for u in range(dc.n_distinct):
        ids = dc.order[dc.starts[u]:dc.starts[u + 1]]
        assert np.all(np.diff(ids) > 0) and np.all(dc.inverse[ids] == u)
        assert (bits[ids] == bits[ids[0]]).all()
    assert np.array_equal(dc.items_of(np.array([2, 0])), np.flatnonzero(np.isin(dc.inverse, [0, 2])))


def test_select_top_r_equals_its_definition():
    rng = np.random.default_rng(1)
    for trial in range(30):
        N = int(rng.integers(1, 60))
        levels = rng.integers(0, int(rng.integers(1, 6)), N).astype(np.uint8)  # many ties
        for R in range(1, N + 2):
            ids, t, before = hamming.select_top_r(levels, R, 6)
            if R >= N:
                assert np.array_equal(ids, np.arange(N)) and before == N
                continue
            cum = np.array([(levels <= v).sum() for v in range(6)])
            t_ref = int(np.argmax(cum >= R))
            assert t == t_ref and before == (levels < t_ref).sum()
            assert np.array_equal(ids, np.flatnonzero(levels <= t_ref))


def test_select_top_r_when_the_sampled_guess_is_wrong():
    """A strided sample (stride 4 here) that sees only 3s, or only 0s: the guess must move down, or up."""
    levels = np.full(10_000, 3, np.uint8)
    levels[1::4] = 0  # never sampled: the guess (3) is too high
    ids, t, before = hamming.select_top_r(levels, 2_000, 4)
    assert (t, before) == (0, 0) and np.array_equal(ids, np.arange(1, 10_000, 4))
    levels = np.full(10_000, 3, np.uint8)
    levels[0::4] = 0  # all sampled: the guess (0) is too low
    ids, t, before = hamming.select_top_r(levels, 3_000, 4)
    assert (t, before) == (3, 2_500) and np.array_equal(ids, np.arange(10_000))


def test_direct_top_r_when_the_sampled_guess_is_wrong(force_path):
    """As above through hamming_top_r (compiled or numpy): codes 0 at every 4th item only."""
    force_path(False)
    for first, far, R, expect in ((1, 2, 2_000, (0, 0)), (0, 3, 3_000, (3, 2_500))):
        db = np.zeros((10_000, 3), np.uint8)
        db[:, :far] = 1
        db[first::4] = 0
        (t,) = hamming_top_r(np.zeros((1, 3), np.uint8), PackedCodes.from_bits(db), R)
        d = db.sum(1)
        assert (t.level, t.n_before) == expect and np.array_equal(t.ids, np.flatnonzero(d <= expect[0]))


@pytest.mark.parametrize("k,distinct", [(4, 16), (8, 5), (20, 40), (64, 30), (65, 12)])
def test_distinct_ranking_equals_the_direct_path(k, distinct, force_path):
    rng = np.random.default_rng(k)
    db = PackedCodes.from_bits(tied_codes(rng, 300, k, distinct))
    q = np.concatenate([tied_codes(rng, 6, k, distinct), rng.integers(0, 2, (4, k), dtype=np.uint8)])
    for R in (1, 7, 100, 299, 300, 1000):
        force_path(False)
        direct = hamming_top_r(q, db, R)
        force_path(True)
        fast = hamming_top_r(q, db, R)
        for a, b in zip(direct, fast, strict=True):
            assert np.array_equal(a.ids, b.ids) and (a.level, a.n_before) == (b.level, b.n_before)


def test_distinct_histograms_equal_rank_histograms():
    rng = np.random.default_rng(3)
    k = 6
    db, q = tied_codes(rng, 400, k, 11), tied_codes(rng, 25, k, 20)
    yd, yq = rng.integers(0, 4, 400), rng.integers(0, 5, 25)  # class 4 is in no database item
    levels, L = hamming_levels(q, PackedCodes.from_bits(db))
    dc = hamming.DistinctCodes.of(PackedCodes.from_bits(db).words)
    n, r = hamming.distinct_histograms(PackedCodes.from_bits(q).words, dc, yq, yd, L, np.uint8)
    n_ref, r_ref = rank_histograms(levels, yq, yd, L)
    assert np.array_equal(n, n_ref) and np.array_equal(r, r_ref)
    assert r[yq == 4].sum() == 0


@pytest.mark.parametrize("k,distinct,n_db", [(5, 8, 300), (16, 30, 500), (1, 2, 40)])
def test_evaluate_retrieval_is_identical_on_both_paths(k, distinct, n_db, force_path):
    rng = np.random.default_rng(k)
    db, q = tied_codes(rng, n_db, k, distinct), tied_codes(rng, 37, k, distinct + 3)
    yd, yq = rng.integers(0, 3, n_db), rng.integers(0, 3, 37)
    out = []
    for distinct_path in (False, True):
        force_path(distinct_path)
        out.append(evaluate_retrieval(q, db, yq, yd, R=50, block=16))
    a, b = out
    for field in ("ap_at_R", "ap", "cutoffs", "precision", "recall"):
        assert np.array_equal(getattr(a, field), getattr(b, field)), field


# ------------------------------------------------------------------ edge cases
@pytest.mark.parametrize("distinct_path", [False, True])
def test_one_item_all_equal_and_R_beyond_the_database(distinct_path, force_path):
    force_path(distinct_path)
    one = PackedCodes.from_bits(np.array([[1, 0, 1]], np.uint8))
    (t,) = hamming_top_r(np.array([[0, 0, 0]], np.uint8), one, 1)
    assert t.ids.tolist() == [0] and t.n_before == 1
    same = PackedCodes.from_bits(np.ones((50, 9), np.uint8))
    for R in (1, 49, 50, 80):
        (t,) = hamming_top_r(np.zeros((1, 9), np.uint8), same, R)
        assert np.array_equal(t.ids, np.arange(50))
        assert (t.level, t.n_before) == ((9, 0) if R < 50 else (9, 50))
    res = evaluate_retrieval(np.ones((2, 9), np.uint8), np.ones((50, 9), np.uint8), [0, 1], np.r_[[0] * 10, [2] * 40],
                             R=5)
    # one 50-way tie holding 10 items of query 0's class and none of query 1's: P@5 = (10/50 + 0) / 2
    assert res.precision_at(5) == pytest.approx(0.1) and res.ap_at_R[1] == 0.0 and res.ap_at_R[0] > 0


def test_top_r_of_levels_matches_the_old_counting_rule():
    """ranking.top_r (now hamming.select_top_r) against brute force on real Hamming levels."""
    rng = np.random.default_rng(5)
    levels = hamming_levels(tied_codes(rng, 3, 10, 3), PackedCodes.from_bits(tied_codes(rng, 500, 10, 25)))[0]
    for row in levels:
        for R in (1, 10, 250, 499):
            got = top_r(row, R, 11)
            t = int(np.argmax(np.cumsum(np.bincount(row, minlength=11)) >= R))
            assert got.level == t and np.array_equal(got.ids, np.flatnonzero(row <= t))
            assert got.n_before == int((row < t).sum())
    assert ranking.TopR is type(got)
