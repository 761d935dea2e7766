"""The OOD experiment (llcpkg.experiments.ood): end to end on a toy problem, its config, and its
claim rule on hand-made per-run tables."""
from dataclasses import replace
from types import SimpleNamespace

import pandas as pd
import pytest

from llcpkg.detectors import ACCEPT, F1_OOD, SCORERS
from llcpkg.experiments import ood
from llcpkg.profiles import get_profile
from llcpkg.verdicts import FAILS, HOLDS, INCONCLUSIVE


def test_run_end_to_end_on_toy(quick_llc):
    P = replace(quick_llc, train_subset=160, test_subset=64)  # the "toy" data set of llcpkg.data, cut by the profile
    cfg = ood.OODExperiment(P, seeds=(0, 1), dataset="toy", n_splits=2, held_out=1, k_sweep=(4, 5), far="toy",
                            n_tune=(10, 20), repeats=2, val_size=30)
    out = ood.run(cfg)
    assert set(out) == {ood.OOD, ood.OOD_SUMMARY, ood.MATCH, ood.K_SWEEP}
    t = out[ood.OOD]
    assert t.columns[0] == "seed" and set(t["detector"]) == set(SCORERS)
    assert t.groupby(ood.SPLIT)["seed"].first().tolist() == [0, 1]  # split i trains with seeds[i mod 2]
    assert set(t[ood.OOD_SET]) == {ood.NEAR, ood.FAR} and t[ood.HELD_OUT].nunique() == 2
    assert t.loc[t["detector"] == "llc_ed", "n_tune"].unique().tolist() == [0]
    assert t[[F1_OOD, ACCEPT, "AUROC (OOD positive)", ood.BASELINE_ACC]].notna().all().all()
    s = out[ood.OOD_SUMMARY]
    assert (s["seeds"] == 2).all() and {f"{F1_OOD} lo", f"{F1_OOD} hi"} <= set(s.columns)
    assert sorted(out[ood.K_SWEEP]["bits"].unique()) == [4, 5]
    rows = ood.verdicts(out.__getitem__)
    assert [r["dataset"] for r in rows] == [f"toy, {ood.NEAR}", f"toy, {ood.FAR}"]
    assert all(r["seeds"] == 2 for r in rows)
    text = ood.describe_ood(t, out[ood.MATCH])
    assert text.startswith(ood.NEAR) and "LLC-ED" in text
    assert "k=4" in ood.describe_k_sweep(out[ood.K_SWEEP])


def test_experiment_resolves_seeds_and_draws_fixed_splits():
    cpu = ood.OODExperiment.for_profile(get_profile("cpu"), n_tune=[10, 20], odin={"temperature": 10.0, "epsilon": 0.0})
    assert cpu.seeds == (0, 1, 2) and [cpu.seed_of(i) for i in range(5)] == [0, 1, 2, 0, 1]
    assert cpu.n_tune == (10, 20) and cpu.k_sweep == (6, 8, 12, 16)
    sets = cpu.splits(10)
    assert len(set(sets)) == 5 and all(len(s) == 3 for s in sets)
    assert ood.OODExperiment.for_profile(get_profile("cpu"), seeds=[4, 5], n_splits=5).splits(10) == sets  # not the run seed
    smoke = ood.OODExperiment.for_profile(get_profile("smoke"))
    assert (smoke.seeds, smoke.n_splits, smoke.k_sweep) == ((0,), 2, (6, 8))
    none = ood.OODExperiment.for_profile(get_profile("smoke"), n_splits=None, k_sweep=None, far=None)
    assert (none.n_splits, none.k_sweep, none.far) == (2, (6, 8), None)  # None: the preset, but far=None is "no far set"


def test_one_seed_quick_look_holds_out_one_split_the_first_of_the_full_run(monkeypatch):
    monkeypatch.delenv("LLC_SEEDS", raising=False)
    full = ood.OODExperiment.for_profile(get_profile("cpu"))
    quick = ood.OODExperiment.for_profile(get_profile("cpu"), seeds=[0])
    assert full.n_splits == 5 and quick.n_splits == ood.QUICK_SPLITS == 1
    assert quick.splits(10) == full.splits(10)[:1] and quick.config(0) == full.config(0)  # the same run, one cache entry
    monkeypatch.setenv("LLC_SEEDS", "0")  # make reproduce SEEDS=0
    assert ood.OODExperiment.for_profile(get_profile("cpu"), n_splits=None).n_splits == 1
    assert ood.OODExperiment.for_profile(get_profile("cpu"), n_splits=3).n_splits == 3  # asked for: kept
    assert ood.OODExperiment.for_profile(get_profile("smoke")).n_splits == 2  # a profile's preset: kept


def test_the_quick_look_sweeps_no_extra_code_length_and_scores_the_splits_own_run(monkeypatch):
    monkeypatch.delenv("LLC_SEEDS", raising=False)
    P = get_profile("cpu")
    assert ood.OODExperiment.for_profile(P, k_sweep=None).k_sweep == (6, 8, 12, 16)  # three seeds: the whole sweep
    quick = ood.OODExperiment.for_profile(P, seeds=[0], k_sweep=None)
    assert quick.k_sweep == () and ood.OODExperiment.for_profile(P, seeds=[0], k_sweep=[6, 8]).k_sweep == (6, 8)
    calls = []

    def fake_run(cfg, profile):  # what k_sweep asks run_ood for: the split's config, or one per k
        calls.append(cfg)
        return SimpleNamespace(table=pd.DataFrame({"bits": [cfg.bits]}))

    monkeypatch.setattr(ood, "run_ood", fake_run)
    sweep = ood.k_sweep(quick)
    assert len(calls) == 1 and calls[0].bits == quick.config(0).bits  # the split's own k: the cached run's stages
    assert replace(calls[0], detectors=quick.config(0).detectors) == quick.config(0)  # only the scorers differ
    assert sweep["seed"].tolist() == [0] and sweep[ood.SPLIT].tolist() == [0]
    calls.clear()
    ood.k_sweep(replace(quick, k_sweep=(6, 8)))
    assert [c.bits for c in calls] == [6, 8]


def test_split_configs_take_the_full_sets_epochs_or_the_splits():
    from llcpkg.data import toy_bundle
    from llcpkg.detectors import ood_split

    P = replace(get_profile("cpu"), epoch_reference=200)
    b = toy_bundle(n_train=160, n_test=40, num_classes=4)
    sp = ood_split(b, [3], val_size=30)  # 120 − 30 = 90 training images: round(200 / 90) = 2× the epochs
    full = ood.split_configs(ood.OODConfig("toy", (3,), full_set_epochs=True), b, sp, P)
    own = ood.split_configs(ood.OODConfig("toy", (3,)), b, sp, P)  # the default: the profile's rule for the split
    assert full["baseline"].epochs == P.baseline_epochs and own["baseline"].epochs == 2 * P.baseline_epochs
    assert own["phase2"].epochs == 2 * P.phase2_epochs
    longer = ood.split_configs(ood.OODConfig("toy", (3,), epochs_factor=3), b, sp, P)  # notebook 08's trend
    assert {n: c.epochs for n, c in longer.items()} == {n: 3 * c.epochs for n, c in own.items()}
    assert {n: replace(c, epochs=1) for n, c in longer.items()} == {n: replace(c, epochs=1) for n, c in own.items()}


# ----------------------------------------------------------------------------- the claim rule
def _per_run(ed, msp, baseline=(0.92,) * 5, oset=ood.NEAR, dataset="fashion_mnist"):
    """A per-run table: LLC-ED (n = 0) and MSP tuned at n = 10 and 3000, one run per value."""
    rows = []
    for i, (e, m, b) in enumerate(zip(ed, msp, baseline)):
        common = {"seed": i % 3, ood.SPLIT: i, ood.OOD_SET: oset, "dataset": dataset, ood.BASELINE_ACC: b,
                  ood.F1_FLAG_ALL: 0.46}
        rows.append({**common, "detector": "llc_ed", "n_tune": 0, F1_OOD: e, ACCEPT: 0.9})
        rows.append({**common, "detector": "msp", "n_tune": 10, F1_OOD: 0.0, ACCEPT: 0.5})
        rows.append({**common, "detector": "msp", "n_tune": 3000, F1_OOD: m, ACCEPT: 0.6})
    return pd.DataFrame(rows)


def _verdict(df):
    (row,) = ood.claim_ood({ood.OOD: df}.__getitem__)
    return row


MSP = [0.60, 0.62, 0.58, 0.61, 0.63]


def test_claim_holds_when_the_paired_interval_clears_the_tolerance():
    row = _verdict(_per_run([m + d for m, d in zip(MSP, [0.02, 0.03, 0.01, 0.02, 0.03])], MSP))
    assert row["verdict"] == HOLDS and row["seeds"] == 5 and "n = 3000" in row["rule"]
    assert "over 5 runs (held-out splits)" in row["rule"] and "seeds lies" not in row["rule"]  # not "5 seeds"


def test_claim_fails_when_the_whole_interval_is_below():
    row = _verdict(_per_run([m - d for m, d in zip(MSP, [0.30, 0.32, 0.28, 0.31, 0.29])], MSP))
    assert row["verdict"] == FAILS


def test_claim_is_inconclusive_when_the_interval_straddles():
    row = _verdict(_per_run([m + d for m, d in zip(MSP, [-0.05, 0.03, 0.0, -0.02, 0.02])], MSP))
    assert row["verdict"] == INCONCLUSIVE


def test_claim_is_inconclusive_with_an_under_trained_baseline():
    ed = [m + 0.05 for m in MSP]
    row = _verdict(_per_run(ed, MSP, baseline=(0.80, 0.81, 0.79, 0.80, 0.82)))
    assert row["verdict"].startswith("inconclusive (baseline under-trained")
    assert _verdict(_per_run(ed, MSP, baseline=(0.80,) * 5, dataset="toy"))["verdict"] == HOLDS  # no reference: ungated


def test_claim_gives_one_row_per_ood_set():
    ed = [m + 0.05 for m in MSP]
    df = pd.concat([_per_run(ed, MSP), _per_run([0.1] * 5, MSP, oset=ood.FAR)])
    rows = ood.claim_ood({ood.OOD: df}.__getitem__)
    assert [(r["dataset"], r["verdict"]) for r in rows] == [(f"fashion_mnist, {ood.NEAR}", HOLDS),
                                                            (f"fashion_mnist, {ood.FAR}", FAILS)]


def test_claim_missing_column_raises():
    df = _per_run(MSP, MSP).rename(columns={F1_OOD: "F1"})
    with pytest.raises(KeyError, match="F1 \\(OOD positive\\)"):
        ood.verdicts({ood.OOD: df}.__getitem__)
