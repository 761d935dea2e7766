"""The retrieval experiment (llcpkg.experiments.retrieval) end to end on the toy data set: every
registered method trains, ranks and lands in the table the claims read."""
from dataclasses import replace

import pytest

from llcpkg.experiments import retrieval as RT


def test_run_trains_every_registered_method_on_toy(quick_llc):
    P = replace(quick_llc, train_subset=128, test_subset=32)
    cfg = RT.RetrievalExperiment.for_profile(P, datasets=["toy"], bits=[16], max_queries=16)
    out = RT.run(cfg)
    table = out[RT.RETRIEVAL]
    assert set(out) == {RT.RETRIEVAL, RT.CURVES}
    assert set(table[RT.METHOD]) == {RT.METHOD_NAMES[m] for m in RT.RETRIEVAL_METHODS}
    assert table[RT.map_column(RT.PAPER_R)].between(0, 1).all() and (table["queries"] == 16).all()
    rows = RT.verdicts(out.__getitem__)
    assert [r["dataset"] for r in rows] == ["toy"] and rows[0]["verdict"] in {"holds", "partly", "does not hold here"}


def test_an_unknown_method_names_the_registry(quick_llc, toy_bundle):
    with pytest.raises(ValueError, match="llc-full"):
        RT.train_method("nope", toy_bundle, quick_llc, 8, RT.RetrievalSetup(epochs=1))
