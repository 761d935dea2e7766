"""Hierarchy scores (llcpkg.hierarchy): agreement scores and instance-code statistics on hand-made codes."""
import numpy as np
import pytest
from scipy.cluster.hierarchy import cophenet
from scipy.spatial.distance import squareform
from scipy.stats import rankdata, spearmanr

from llcpkg.hierarchy import (
    _spearman_two_valued, agreement_pvalues, agreement_scores, code_tree, codebook_agreement, hierarchy_distance, instance_code_stats,
    radius_distribution,
)

# 4 classes, 4 bits, two groups {0, 1} and {2, 3}: codes within a group differ in 1 bit,
# across groups in 3 or 4 bits — the code tree is exactly the known hierarchy.
CODES = np.array([[0, 0, 0, 0], [0, 0, 0, 1], [1, 1, 1, 0], [1, 1, 1, 1]], np.uint8)
GROUPS = np.array([0, 0, 1, 1])


def test_hierarchy_distance_condensed_order():
    # pairs (0,1) (0,2) (0,3) (1,2) (1,3) (2,3)
    np.testing.assert_array_equal(hierarchy_distance(GROUPS), [1, 2, 2, 2, 2, 1])


def test_scores_hand_computed_perfect_tree():
    s = agreement_scores(CODES, GROUPS)
    # within: d(0,1) = 1, d(2,3) = 1; across: d(0,2) = 3, d(0,3) = 4, d(1,2) = 4, d(1,3) = 3
    assert s["within"] == 1 and s["across"] == 3.5 and s["gap"] == 2.5
    assert s["ARI"] == 1.0 and s["spearman tree"] == pytest.approx(1.0)
    # ranks of (1, 3, 4, 4, 3, 1) vs (1, 2, 2, 2, 2, 1): Pearson of the ranks
    a, b = np.array([1.5, 3.5, 5.5, 5.5, 3.5, 1.5]), np.array([1.5, 4.5, 4.5, 4.5, 4.5, 1.5])
    assert s["spearman codes"] == pytest.approx(np.corrcoef(a, b)[0, 1])


def test_scores_when_the_tree_contradicts_the_groups():
    s = agreement_scores(CODES, np.array([0, 1, 0, 1]))  # groups cut across the tree
    assert s["gap"] < 0 and s["ARI"] < 0.5 and s["spearman tree"] < 0


def test_fast_spearman_equals_scipy():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 6, 50).astype(float)  # many ties
    y = rng.choice([1.0, 2.0], 50)
    assert _spearman_two_valued(rankdata(x), y) == pytest.approx(spearmanr(x, y).statistic)
    z = rng.integers(0, 2, (30, 8), dtype=np.uint8)
    g = rng.integers(0, 3, 30)
    d = squareform((z[:, None] != z[None]).sum(-1), checks=False)
    coph = cophenet(code_tree(z))
    s = agreement_scores(z, g)
    assert s["spearman codes"] == pytest.approx(spearmanr(d, hierarchy_distance(g)).statistic)
    assert s["spearman tree"] == pytest.approx(spearmanr(coph, hierarchy_distance(g)).statistic)


def test_tree_merges_close_codes_first():
    z = code_tree(CODES)
    assert sorted(z[0, :2]) in ([0, 1], [2, 3]) and z[0, 2] == 1 and z[1, 2] == 1
    assert z[2, 2] == pytest.approx(3.5)  # average linkage of the two groups


def test_permutation_pvalues():
    rng = np.random.default_rng(0)
    centres = rng.integers(0, 2, (4, 16), dtype=np.uint8)
    groups = np.repeat(np.arange(4), 6)
    codes = centres[groups].copy()  # 24 classes: 6 noisy copies of each group's centre
    flip = rng.random(codes.shape) < 0.05
    codes[flip] ^= 1
    p = agreement_pvalues(codes, groups, n_perm=199)
    assert p["p ARI"] == pytest.approx(1 / 200) and p["p gap"] == pytest.approx(1 / 200)
    noise = rng.integers(0, 2, (24, 16), dtype=np.uint8)
    assert agreement_pvalues(noise, groups, n_perm=199)["p ARI"] > 0.01


def test_permutation_counts_ties_as_at_least_as_good():
    # 2 of the 6 arrangements of groups (0, 0, 1, 1) give the tree's own partition (ARI 1): p ≈ 1/3
    p = agreement_pvalues(CODES, GROUPS, n_perm=299)
    assert 0.2 < p["p ARI"] < 0.5


def test_codebook_agreement_table():
    t = codebook_agreement({"learnt": CODES, "pm": 2.0 * CODES - 1}, GROUPS, n_perm=20, n_random=10)
    assert t["codebook"].tolist() == ["learnt", "pm", "random (mean of 10)"]
    assert t.loc[0, "ARI"] == t.loc[1, "ARI"] == 1.0  # ±1 codes are read as bits
    assert 0 < t.loc[0, "p ARI vs random"] <= 1 and np.isnan(t.loc[2, "p ARI"])


def test_instance_code_stats_hand_computed():
    class_codes = np.array([[0, 0, 0], [1, 1, 1]], np.uint8)
    inst = np.array([[0, 0, 0], [0, 0, 1], [1, 1, 1], [1, 1, 1]], np.uint8)
    labels = np.array([0, 0, 1, 0])  # the last one sits on the other class's code: radius 3
    s = instance_code_stats(inst, labels, class_codes)
    assert s["distinct instance codes"] == 3
    assert s["distinct if uniform"] == pytest.approx(8 * (1 - (7 / 8) ** 4))
    assert s["on own class code"] == 0.5 and s["on any class code"] == 0.75
    # bits' shares of ones: 0.5, 0.5, 0.75
    assert s["bit balance mean"] == pytest.approx(0.25 / 3) and s["bit balance max"] == 0.25
    # bits 0 and 1 are identical (r = 1); bit 2 vs bit 0: r = 1/sqrt(3)
    assert s["bit |corr| max"] == pytest.approx(1.0)
    assert s["bit |corr| mean"] == pytest.approx((1 + 2 / np.sqrt(3)) / 3)
    assert s["radius mean"] == 1.0 and s["radius >= 3"] == 0.25
    np.testing.assert_allclose(radius_distribution(inst, labels, class_codes), [0.5, 0.25, 0, 0.25])
