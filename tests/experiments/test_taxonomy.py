"""The taxonomy experiment (llcpkg.experiments.taxonomy): its figure, a toy run end to end over
seeds, and its claim rule on hand-made per-seed tables."""
import numpy as np
import pandas as pd
import pytest

from llcpkg.experiments import taxonomy as tx
from llcpkg.experiments.taxonomy import plot_code_dendrogram
from llcpkg.verdicts import FAILS, HOLDS, INCONCLUSIVE, PARTLY

CODES = np.array([[0, 0, 0, 0], [0, 0, 0, 1], [1, 1, 1, 0], [1, 1, 1, 1]], np.uint8)
GROUPS = np.array([0, 0, 1, 1])


def test_dendrogram_figure_has_labels():
    fig = plot_code_dendrogram(CODES, ["a", "b", "c", "d"], GROUPS, ["g0", "g1"], "toy")
    ax = fig.axes[0]
    assert ax.get_title() == "toy" and "Hamming" in ax.get_ylabel()
    assert sorted(t.get_text() for t in ax.get_xticklabels()) == ["a", "b", "c", "d"]


def test_run_taxonomy_end_to_end_on_toy_over_seeds(quick_llc):
    from dataclasses import replace

    cfg = tx.TaxonomyExperiment(replace(quick_llc, train_subset=128, test_subset=64), seeds=(0, 1), datasets=("toy",),
                                n_perm=10, n_random=5)  # the "toy" data set of llcpkg.data: 4 classes in 2 known groups
    results = tx.run_all(cfg)
    first, second = results["toy"][0], results["toy"][1]
    assert first.agreement["codebook"].tolist() == ["LLC learnt", "SVD", "CCA", "random (mean of 5)"]
    assert (first.agreement["bits"] == 4).all() and first.codebooks["SVD"].shape == (4, 4)
    assert first.instance["instances"] == 64 and first.radius.shape == (5,) and first.radius.sum() == pytest.approx(1)
    assert second.instance is None  # instance codes: first seed only
    out = tx.tables(results)
    assert set(out) == {tx.TAXONOMY, tx.TAXONOMY_SUMMARY, tx.INSTANCE_CODES}
    per_seed = out[tx.TAXONOMY]
    assert per_seed.columns[0] == "seed" and sorted(per_seed["seed"].unique()) == [0, 1]
    s = out[tx.TAXONOMY_SUMMARY]
    assert (s["seeds"] == 2).all() and f"{tx.EFFECT} lo" in s and len(s) == 4
    rows = tx.verdicts(out.__getitem__)
    assert [r["dataset"] for r in rows] == ["toy"] and rows[0]["seeds"] == 2
    assert "recovers the groups" in tx.describe_agreement(per_seed)
    assert len(tx.plot_effect(s)) == 1


# ----------------------------------------------------------------------------- the claim rule
def _per_seed(llc, svd, cca, baseline=(0.92, 0.91, 0.93), dataset="fashion_mnist"):
    rows = []
    for seed, (a, b, c, acc) in enumerate(zip(llc, svd, cca, baseline)):
        for cb, v in (("LLC learnt", a), ("SVD", b), ("CCA", c), ("random (mean of 5)", 0.0)):
            rows.append({"seed": seed, "dataset": dataset, "codebook": cb, tx.EFFECT: v, "ARI": v / 2,
                         tx.BASELINE_ACC: acc})
    return pd.DataFrame(rows)


def _verdict(df):
    (row,) = tx.claim_taxonomy({tx.TAXONOMY: df}.__getitem__)
    return row["verdict"]


def test_taxonomy_holds_with_a_clear_effect_as_good_as_svd_cca():
    assert _verdict(_per_seed([0.50, 0.52, 0.48], [0.45, 0.47, 0.44], [0.40, 0.41, 0.42])) == HOLDS


def test_taxonomy_fails_with_no_effect_and_worse_than_svd_cca():
    assert _verdict(_per_seed([0.00, 0.02, -0.01], [0.45, 0.47, 0.44], [0.40, 0.41, 0.42])) == FAILS


def test_taxonomy_partly_names_the_failing_comparison():
    v = _verdict(_per_seed([0.30, 0.31, 0.29], [0.60, 0.61, 0.62], [0.20, 0.21, 0.22]))
    assert v == f"{PARTLY} (fails: vs SVD)"


def test_taxonomy_inconclusive_when_every_interval_straddles():
    # effect 0.1 ± wide; learnt − SVD and − CCA straddle −0.05
    v = _verdict(_per_seed([0.02, 0.10, 0.20], [0.10, 0.10, 0.12], [0.15, 0.05, 0.17]))
    assert v == INCONCLUSIVE


def test_taxonomy_comparisons_gated_on_an_under_trained_baseline():
    df = _per_seed([0.50, 0.52, 0.48], [0.45, 0.47, 0.44], [0.40, 0.41, 0.42], baseline=(0.80, 0.81, 0.79))
    v = _verdict(df)
    assert v.startswith(PARTLY) and "inconclusive: vs SVD, vs CCA" in v  # the effect part is not gated
    assert _verdict(df.assign(dataset="toy")) == HOLDS  # no reference for toy: ungated


def test_taxonomy_missing_column_raises():
    df = _per_seed([0.5] * 3, [0.4] * 3, [0.4] * 3).drop(columns=[tx.EFFECT])
    with pytest.raises(KeyError, match="spearman tree"):
        tx.verdicts({tx.TAXONOMY: df}.__getitem__)
