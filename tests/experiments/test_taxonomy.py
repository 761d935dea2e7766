"""The taxonomy experiment (llcpkg.experiments.taxonomy): its figure and a toy run end to end."""
import numpy as np
import pytest

from llcpkg.experiments.taxonomy import plot_code_dendrogram

CODES = np.array([[0, 0, 0, 0], [0, 0, 0, 1], [1, 1, 1, 0], [1, 1, 1, 1]], np.uint8)
GROUPS = np.array([0, 0, 1, 1])


def test_dendrogram_figure_has_labels():
    fig = plot_code_dendrogram(CODES, ["a", "b", "c", "d"], GROUPS, ["g0", "g1"], "toy")
    ax = fig.axes[0]
    assert ax.get_title() == "toy" and "Hamming" in ax.get_ylabel()
    assert sorted(t.get_text() for t in ax.get_xticklabels()) == ["a", "b", "c", "d"]


def test_run_taxonomy_end_to_end_on_toy(quick_llc):
    from dataclasses import replace

    from llcpkg.experiments import taxonomy

    cfg = taxonomy.TaxonomyExperiment(replace(quick_llc, train_subset=128, test_subset=64), datasets=("toy",), n_perm=10,
                                      n_random=5)  # the "toy" data set of llcpkg.data: 4 classes in 2 known groups
    results = taxonomy.run_all(cfg)
    r = results["toy"]
    assert r.agreement["codebook"].tolist() == ["LLC learnt", "SVD", "CCA", "random (mean of 5)"]
    assert (r.agreement["bits"] == 4).all() and r.codebooks["SVD"].shape == (4, 4)
    assert r.instance["instances"] == 64 and r.radius.shape == (5,) and r.radius.sum() == pytest.approx(1)
    out = taxonomy.tables(results)
    assert set(out) == {taxonomy.TAXONOMY, taxonomy.INSTANCE_CODES}
    assert [row["dataset"] for row in taxonomy.verdicts(out.__getitem__)] == ["toy"]
