"""The stage-time recorder: records aggregate per (notebook, stage, cached) and merge into run_times.csv.
Times are recorded by hand here (no timing in tests) except where only their presence is checked."""
import pandas as pd
import pytest

from llcpkg import runtimes
from llcpkg.results import read_table


@pytest.fixture(autouse=True)
def _fresh():
    runtimes.clear()
    yield
    runtimes.clear()


def test_write_aggregates_runs(tmp_path):
    runtimes.record("02_classification", "baseline", 10.0, cached=False)
    runtimes.record("02_classification", "baseline", 12.0, cached=False)
    runtimes.record("02_classification", "baseline", 0.5, cached=True)
    runtimes.record("02_classification", "phase1", 3.0, cached=False)
    path = runtimes.write_run_times(tmp_path)
    assert path == tmp_path / "tables" / "run_times.csv" and (tmp_path / "tables" / "run_times.md").exists()
    out = read_table("run_times", tmp_path)
    assert list(out.columns) == runtimes.COLUMNS
    rows = {(r.stage, bool(r.cached)): (r.seconds, r.runs) for r in out.itertuples()}
    assert rows == {("baseline", False): (22.0, 2), ("baseline", True): (0.5, 1), ("phase1", False): (3.0, 1)}


def test_write_merges_and_replaces(tmp_path):
    runtimes.record("02_classification", "baseline", 10.0, cached=False)
    runtimes.record("03_ood", "baseline", 4.0, cached=False)
    runtimes.write_run_times(tmp_path)
    runtimes.write_run_times(tmp_path)  # writing twice gives the same table
    assert len(read_table("run_times", tmp_path)) == 2
    runtimes.clear()
    runtimes.record("02_classification", "baseline", 1.0, cached=True)  # a rerun: the stage is cached now
    runtimes.record("02_classification", "notebook", 30.0, cached=False)
    runtimes.write_run_times(tmp_path)
    out = read_table("run_times", tmp_path)
    got = {(r.notebook, r.stage, bool(r.cached)): r.seconds for r in out.itertuples()}
    assert got == {("02_classification", "baseline", True): 1.0, ("02_classification", "notebook", False): 30.0,
                   ("03_ood", "baseline", False): 4.0}


def test_timed_records_the_block(monkeypatch):
    monkeypatch.setenv("LLC_NOTEBOOK", "05_taxonomy")
    with runtimes.timed("hfh") as t:
        t.cached = True
    with runtimes.timed("phase2", notebook="04_hfh"):
        pass
    with pytest.raises(RuntimeError), runtimes.timed("broken"):
        raise RuntimeError
    rec = runtimes.records()
    assert rec[["notebook", "stage", "cached"]].values.tolist() == [["05_taxonomy", "hfh", True],
                                                                   ["04_hfh", "phase2", False]]
    assert (rec["seconds"] >= 0).all()


def test_bad_table_and_negative_time(tmp_path):
    (tmp_path / "tables").mkdir()
    pd.DataFrame({"notebook": ["a"], "stage": ["b"], "secs": [1.0]}).to_csv(tmp_path / "tables" / "run_times.csv")
    runtimes.record("a", "b", 1.0, cached=False)
    with pytest.raises(KeyError, match="seconds"):
        runtimes.write_run_times(tmp_path)
    with pytest.raises(ValueError):
        runtimes.record("a", "b", -1.0, cached=False)


def test_run_stage_records_a_trained_then_a_cached_stage(tmp_path, toy_bundle):
    from llcpkg.models import ModelConfig, build_model
    from llcpkg.train import TrainConfig, run_stage

    cfg, model_cfg = TrainConfig(epochs=1, batch_size=32), ModelConfig("smallcnn", 4, "linear")
    for _ in range(2):  # the second call loads the checkpoint the first wrote
        model = build_model(model_cfg, toy_bundle.image_shape[0], toy_bundle.num_classes)
        run_stage("toystage", "key", model, toy_bundle.train, "ce", cfg, tmp_path)
    rec = runtimes.records()
    assert rec["stage"].tolist() == ["toystage", "toystage"] and rec["cached"].tolist() == [False, True]
    assert (rec["seconds"] >= 0).all()
