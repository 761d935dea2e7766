"""The compression experiment's config (llcpkg.experiments.compression) and its readings on a
hand-made grid."""
import pandas as pd

from llcpkg.experiments.compression import CompressionExperiment, describe_hfh_vs_hashednets, describe_hfh_vs_pruning
from llcpkg.profiles import get_profile


def test_config_builds_the_grid_entries_from_the_notebook_parameters():
    cfg = CompressionExperiment.for_profile(get_profile("smoke"), seed=2, mlp3_hidden=[30], hfh_hashes=8)
    assert cfg.mlp3.hidden == (30,) and cfg.cnn.kind == "cnn"
    h = cfg.comp("hfh", 1 / 8)
    assert (h.method, h.factor, h.hashes, h.depth, h.seed) == ("hfh", 1 / 8, 8, 2, 2)
    assert cfg.comp("pruning", 1 / 4).method == "pruning"


def _grid():
    rows = [("mlp3", 0.125, "hashednets", 0.20, 100), ("mlp3", 0.125, "hfh", 0.10, 100), ("mlp3", 0.125, "pruning", 0.05, 150),
            ("mlp3", 0.25, "hashednets", 0.10, 200), ("mlp3", 0.25, "hfh", 0.15, 200), ("mlp3", 0.25, "pruning", 0.30, 300)]
    return pd.DataFrame(rows, columns=["net", "factor", "method", "error", "bytes"])


def test_readings_count_wins_by_hand():
    text = describe_hfh_vs_hashednets(_grid())
    assert text.startswith("HFH beats HashedNets in 1 of 2 (net, factor) pairs") and text.endswith("not supported on this run.")
    text = describe_hfh_vs_pruning(_grid())
    assert "HFH has lower error than pruning in 1 of 2" in text and "stores 1.50× HFH's bytes" in text
