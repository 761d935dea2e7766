"""Seeds of a run, per-seed tables and their summaries; claim rows; adequacy references."""
import math

import pandas as pd
import pytest

from llcpkg import runtimes
from llcpkg.profiles import get_profile
from llcpkg.references import REFERENCES, gate
from llcpkg.seeds import over_seeds, parse_seeds, resolve_seeds, summary_name, summary_table
from llcpkg.verdicts import CLAIM_COLUMNS, HOLDS, INCONCLUSIVE, NOT_RUN, at_least, claim_row, collect


def test_seeds_come_from_the_argument_then_the_environment_then_the_profile(monkeypatch):
    monkeypatch.delenv("LLC_SEEDS", raising=False)
    assert resolve_seeds(get_profile("cpu")) == (0, 1, 2)
    assert resolve_seeds(get_profile("smoke")) == (0,)
    monkeypatch.setenv("LLC_SEEDS", "0")
    assert resolve_seeds(get_profile("cpu")) == (0,)
    assert resolve_seeds(get_profile("cpu"), [3, 4]) == (3, 4)
    assert resolve_seeds(get_profile("cpu"), 5) == (5,)
    monkeypatch.setenv("LLC_SEEDS", " ")
    assert resolve_seeds(get_profile("cpu")) == (0, 1, 2)


@pytest.mark.parametrize("bad", ["", "0,0", "a", "-1", "1.5"])
def test_bad_seed_lists_are_refused(bad):
    with pytest.raises(ValueError, match="seeds"):
        parse_seeds(bad)


def test_over_seeds_stacks_one_table_per_seed_with_the_seed_first():
    df = over_seeds(lambda s: pd.DataFrame({"dataset": ["a", "b"], "acc": [s, 10 * s]}), (0, 1, 2))
    assert list(df.columns) == ["seed", "dataset", "acc"]
    assert df["seed"].tolist() == [0, 0, 1, 1, 2, 2]
    s = summary_table(df, ["dataset"], ["acc"])
    assert s["acc mean"].tolist() == [1.0, 10.0] and s["seeds"].tolist() == [3, 3]
    # t-interval of (0, 1, 2): mean 1, s = 1, t_{0.975, 2} = 4.3027 -> 1 ± 2.484
    assert math.isclose(s.loc[0, "acc hi"], 1 + 4.302652729911275 / math.sqrt(3), rel_tol=1e-9)
    assert summary_name("classification") == "classification_summary"
    with pytest.raises(ValueError, match="seed"):
        over_seeds(lambda s: pd.DataFrame({"seed": [s]}), (0,))


def test_collect_reads_a_missing_table_as_not_run_but_a_missing_column_fails():
    def missing_table(t):
        raise FileNotFoundError("no table x.csv")

    rows = collect({"claim A": missing_table}, lambda name: None)
    assert rows[0]["verdict"] == NOT_RUN and set(rows[0]) == set(CLAIM_COLUMNS)

    def renamed_column(t):
        return [claim_row("c", "p", "d", "o", at_least(pd.DataFrame({"acc": [1.0]})["accuracy"].mean(), 0.5))]

    with pytest.raises(KeyError):
        collect({"claim B": renamed_column}, lambda name: None)


def test_a_baseline_below_its_reference_makes_the_verdict_inconclusive():
    ref = REFERENCES["smallcnn/fashion_mnist"]
    v = at_least(0.95, 0.9, "acc")
    assert v.kind == HOLDS
    under = gate(v, ref.threshold - 0.05, "smallcnn/fashion_mnist")
    assert under.kind == INCONCLUSIVE and "baseline under-trained" in under.verdict
    assert gate(v, ref.threshold + 0.01, "smallcnn/fashion_mnist").kind == HOLDS
    with pytest.raises(KeyError, match="no adequacy reference"):
        gate(v, 0.9, "nonet/nodata")


def test_a_kernel_log_is_merged_into_run_times(tmp_path, monkeypatch):
    log = tmp_path / "log.jsonl"
    monkeypatch.setenv(runtimes.LOG_ENV, str(log))
    runtimes.clear()
    runtimes.record("01_x", "baseline", 2.0, cached=False)
    runtimes.record("01_x", "baseline", 3.0, cached=False)
    runtimes.clear()
    assert runtimes.load_log(log) == 2
    runtimes.write_run_times(tmp_path)
    t = pd.read_csv(tmp_path / "tables" / "run_times.csv")
    assert t[["stage", "seconds", "runs"]].values.tolist() == [["baseline", 5.0, 2]]
    runtimes.clear()


def test_gate_baseline_names_a_missing_reference_and_gates_a_known_one():
    from llcpkg.references import gate_baseline

    v = at_least(0.95, 0.9, "acc")
    ungated = gate_baseline(v, [0.5, 0.5, 0.5], "nonet", "nodata")
    assert ungated.kind == HOLDS and "not gated: no adequacy reference 'nonet/nodata'" in ungated.rule
    ref = REFERENCES["smallcnn/fashion_mnist"]
    low = [ref.threshold - 0.05, ref.threshold - 0.04, ref.threshold - 0.06]
    assert gate_baseline(v, low, "smallcnn", "fashion_mnist").kind == INCONCLUSIVE
