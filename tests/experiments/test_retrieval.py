"""The retrieval experiment (llcpkg.experiments.retrieval): end to end on the toy data set, and
each claim's rule on hand-made per-seed tables with known answers."""
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from llcpkg.experiments import retrieval as RT
from llcpkg.profiles import get_profile
from llcpkg.verdicts import FAILS, HOLDS, INCONCLUSIVE, NOT_RUN

SEEDS = (0, 1, 2)


def test_run_trains_every_registered_method_on_toy(quick_llc):
    P = replace(quick_llc, train_subset=128, test_subset=32)
    cfg = RT.RetrievalExperiment.for_profile(P, datasets=["toy"], bits=[16], max_queries=16, seeds=[0, 1])
    out = RT.run(cfg)
    table = out[RT.RETRIEVAL]
    assert set(out) == {RT.RETRIEVAL, RT.RETRIEVAL_SUMMARY, RT.CURVES, RT.QUERY_TIME}
    assert set(table[RT.METHOD]) == {RT.METHOD_NAMES[m] for m in RT.RETRIEVAL_METHODS}
    assert sorted(table["seed"].unique()) == [0, 1] and (table["queries"] == 16).all()
    assert table[RT.MAP_AT_R].between(0, 1).all() and table[RT.BASE_TEST].between(0, 1).all()
    trained = table[table["epochs"] > 0]  # equal budgets: every method after the baseline gets the same steps
    assert trained["steps"].nunique() == 1
    few = RT.few_bits(4)
    assert set(table.loc[table[RT.METHOD] == RT.METHOD_NAMES["llc"], RT.BITS]) == {16, few}
    assert set(table.loc[table[RT.METHOD] == RT.METHOD_NAMES["real"], RT.DIMS]) == {few}
    summary = out[RT.RETRIEVAL_SUMMARY]
    assert len(summary) == len(table) // 2 and (summary["seeds"] == 2).all()
    rows = RT.verdicts(out.__getitem__)
    assert [r["claim"] for r in rows] == list(RT.CLAIMS) and all(r["seeds"] == 2 for r in rows)


def test_length_scales_every_methods_budget_and_keeps_the_rest(toy_bundle):
    P = get_profile("cpu")
    one = RT.RetrievalSetup(epochs=3)
    budget = {f: RT._budget(toy_bundle, P, replace(one, length=f), 0) for f in (1, 2)}
    assert budget[2].epochs == 2 * budget[1].epochs and replace(budget[2], epochs=1) == replace(budget[1], epochs=1)


def test_seed_tables_trains_only_the_methods_asked_for(quick_llc):
    P = replace(quick_llc, train_subset=128, test_subset=32)
    from llcpkg.pipeline import load_bundle

    toy = load_bundle("toy", P)
    setup = RT.RetrievalSetup.for_profile(P, max_queries=16)
    table = RT.seed_tables([toy], P, setup, 0, methods=[("llc", 8), ("real", 2)])[0]
    assert table[RT.METHOD].tolist() == [RT.METHOD_NAMES["llc"], RT.METHOD_NAMES["real"]]
    longer = RT.seed_tables([toy], P, replace(setup, length=2), 0, methods=[("llc", 8)])[0]
    assert longer["epochs"].iloc[0] == 2 * table["epochs"].iloc[0]


def test_the_shared_baseline_is_predicted_once_per_split_and_gives_the_same_table(quick_llc, monkeypatch):
    P = replace(quick_llc, train_subset=128, test_subset=32)
    from llcpkg.pipeline import load_bundle

    toy = load_bundle("toy", P)
    setup = RT.RetrievalSetup.for_profile(P, max_queries=16)
    monkeypatch.setattr(RT, "_BASELINE_OUTPUTS", {})
    calls = []
    real_predict = RT.predict
    monkeypatch.setattr(RT, "predict", lambda m, ds, **kw: calls.append(len(ds)) or real_predict(m, ds, **kw))
    plan = [("baseline", None), ("llc", 8)]
    first = RT.seed_tables([toy], P, setup, 0, methods=plan)[0]
    n_first = len(calls)  # baseline on train and test, LLC on train and the queries
    again = RT.seed_tables([toy], P, replace(setup, length=2), 0, methods=plan)[0]
    assert n_first == 4 and len(calls) == n_first + 2  # the longer LLC only: the baseline's outputs are kept
    pd.testing.assert_frame_equal(first[first[RT.METHOD] == RT.METHOD_NAMES["baseline"]].drop(columns="steps"),
                                  again[again[RT.METHOD] == RT.METHOD_NAMES["baseline"]].drop(columns="steps"))
    monkeypatch.setattr(RT, "_BASELINE_OUTPUTS", {})  # recomputed from scratch: the same numbers
    fresh = RT.seed_tables([toy], P, replace(setup, length=2), 0, methods=plan)[0]
    pd.testing.assert_frame_equal(again, fresh)
    n_fresh = len(calls)
    RT.seed_tables([toy], P, setup, 1, methods=[("baseline", None)])  # another seed: another baseline, predicted
    assert len(calls) == n_fresh + 2


def test_an_unknown_method_names_the_registry(quick_llc, toy_bundle):
    with pytest.raises(ValueError, match="greedyhash"):
        RT.train_method("nope", toy_bundle, quick_llc, 8, RT.RetrievalSetup(epochs=1))


def test_the_summary_is_named_by_the_seeds_contract():
    from llcpkg.seeds import summary_name

    assert RT.RETRIEVAL_SUMMARY == summary_name(RT.RETRIEVAL)


def test_few_bits_and_the_cutoff_rule():
    assert RT.few_bits(100) == 10 and RT.few_bits(10) == 5 and RT.few_bits(242) == 12
    assert RT.cutoff_for(np.repeat(np.arange(10), 6000)) == 1000  # Fashion-MNIST: the paper's R
    assert RT.cutoff_for(np.repeat(np.arange(242), 15)) == 15  # Omniglot: every relevant item, not full mAP
    assert RT.cutoff_for(np.r_[np.zeros(50, int), np.ones(7, int)]) == 7  # the smallest class decides
    assert RT.cutoff_for(np.r_[np.zeros(50, int), np.full(9, 2)]) == 9  # a class absent from the database does not


def test_setup_resolves_seeds_and_presets(monkeypatch):
    monkeypatch.delenv("LLC_SEEDS", raising=False)
    cpu = RT.RetrievalSetup.for_profile(get_profile("cpu"))
    assert cpu.seeds == (0, 1, 2) and cpu.bits == (16,) and cpu.diagnostic_bits == () and cpu.epochs == 3
    assert RT.RetrievalSetup.for_profile(get_profile("smoke")).seeds == (0,)
    assert RT.RetrievalSetup.for_profile(get_profile("cpu"), seeds=[4]).seeds == (4,)
    assert RT.RetrievalSetup.for_profile(get_profile("gpu")).diagnostic_bits == (32, 64)


# ----------------------------------------------------------------------------- rules on hand-made tables
def _rows(method, bits, dims, values, dataset, base):
    return [{"dataset": dataset, "seed": s, RT.CLASSES: 10, RT.METHOD: RT.METHOD_NAMES[method], RT.BITS: bits,
             RT.DIMS: dims, RT.R_COL: 1000, RT.MAP_AT_R: v, RT.BASE_TEST: b} for s, v, b in zip(SEEDS, values, base)]


def _tables(llc_few, llc16, hashnet=(0.50, 0.52, 0.51), greedy=(0.50, 0.52, 0.51), real=(0.50, 0.52, 0.51),
            dataset="fashion_mnist", base=(0.92, 0.93, 0.92)):
    """A per-seed retrieval table: LLC's values are given as differences to HashNet (llc16, llc_few)."""
    few = RT.few_bits(10)
    rows = (_rows("baseline", None, 64, [0.8] * 3, dataset, base) + _rows("hashnet", 16, 16, hashnet, dataset, base)
            + _rows("greedyhash", 16, 16, greedy, dataset, base)
            + _rows("llc", 16, 16, np.add(hashnet, llc16), dataset, base)
            + _rows("llc", few, few, np.add(hashnet, llc_few), dataset, base)
            + _rows("real", None, few, real, dataset, base))
    df = pd.DataFrame(rows).astype({RT.BITS: "Int64"})
    return lambda name: df if name == RT.RETRIEVAL else _missing(name)


def _missing(name):
    raise FileNotFoundError(name)


def _verdict(rule, t) -> str:
    (row,) = rule(t)
    return row["verdict"]


UP, DOWN, MIXED = (0.03, 0.04, 0.035), (-0.03, -0.04, -0.035), (0.05, -0.05, 0.01)


def test_hashnet_rule_holds_fails_partly_and_straddles():
    assert _verdict(RT.claim_hashnet, _tables(UP, UP)) == HOLDS
    assert _verdict(RT.claim_hashnet, _tables(DOWN, DOWN)) == FAILS
    assert _verdict(RT.claim_hashnet, _tables(MIXED, MIXED)) == INCONCLUSIVE
    assert _verdict(RT.claim_hashnet, _tables(DOWN, UP)) == "partly (fails: LLC 5 bits vs HashNet 16)"


def test_greedyhash_rule_uses_its_tolerance():
    hn = np.array([0.50, 0.52, 0.51])
    # LLC 16 = HashNet + llc16; GreedyHash = LLC − d, so LLC − GreedyHash = d
    for d, want in (((-0.005, 0.0, 0.005), HOLDS), ((-0.05, -0.06, -0.055), FAILS), ((-0.02, -0.03, -0.01), INCONCLUSIVE)):
        t = _tables(UP, UP, greedy=hn + np.array(UP) - np.array(d))
        assert _verdict(RT.claim_greedyhash, t) == want, d


def test_real_embedding_rule_uses_its_tolerance():
    hn = np.array([0.50, 0.52, 0.51])
    for d, want in (((-0.005, 0.0, 0.005), HOLDS), ((-0.05, -0.06, -0.055), FAILS), ((-0.02, -0.03, -0.01), INCONCLUSIVE)):
        t = _tables(UP, UP, real=hn + np.array(UP) - np.array(d))
        assert _verdict(RT.claim_real, t) == want, d


def test_an_under_trained_baseline_makes_every_rule_inconclusive():
    t = _tables(UP, UP, base=(0.80, 0.81, 0.80))  # smallcnn/fashion_mnist asks for 89.8%
    for rule in RT.CLAIMS.values():
        v = _verdict(rule, t)
        assert v.startswith(INCONCLUSIVE + " (baseline under-trained: 80.3% < 89.8%"), v
    assert _verdict(RT.claim_hashnet, _tables(UP, UP, dataset="omniglot", base=(0.5, 0.5, 0.5))) == HOLDS  # no reference


def test_a_missing_column_fails_loudly_and_a_missing_table_is_not_run():
    df = _tables(UP, UP)(RT.RETRIEVAL).drop(columns=[RT.BASE_TEST])
    with pytest.raises(KeyError, match=RT.BASE_TEST):
        RT.verdicts(lambda name: df)
    missing = RT.verdicts(_missing)
    assert [r["verdict"] for r in missing] == [NOT_RUN] * len(RT.CLAIMS)


def test_a_method_missing_from_the_table_is_not_run_never_dropped():
    full = _tables(UP, UP)(RT.RETRIEVAL)

    def without(method):
        kept = full[full[RT.METHOD] != RT.METHOD_NAMES[method]]
        return lambda name: kept if name == RT.RETRIEVAL else _missing(name)

    assert _verdict(RT.claim_greedyhash, without("greedyhash")) == NOT_RUN
    assert _verdict(RT.claim_real, without("real")) == NOT_RUN
    assert _verdict(RT.claim_hashnet, without("hashnet")) == NOT_RUN
