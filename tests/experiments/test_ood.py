"""The OOD experiment (llcpkg.experiments.ood) end to end on a toy problem, and its config."""
from dataclasses import replace

from llcpkg.detectors import SCORERS
from llcpkg.experiments.ood import OODConfig, OODExperiment, describe_ood, run_ood, samples_to_match
from llcpkg.profiles import get_profile


def test_run_ood_end_to_end_on_toy(quick_llc):
    P = replace(quick_llc, train_subset=160, test_subset=64)  # the "toy" data set of llcpkg.data, cut by the profile
    res = run_ood(OODConfig("toy", n_held_out=1, val_size=30, n_tune=(10, 20), repeats=2), P)
    t = res.table
    assert set(t["detector"]) == set(SCORERS) and (t["positive"] == "OOD").all()
    assert t.loc[t["detector"] == "llc_ed", "n_tune"].tolist() == [0]
    assert t[["F1 mean", "AUROC", "FPR@95TPR", "id_accuracy mean"]].notna().all().all()
    text = describe_ood(t, samples_to_match(t))
    assert text.startswith("toy: LLC-ED F1") and text.count("\n") == len(set(SCORERS)) - 1  # one line per tuned detector


def test_ood_experiment_configs_carry_the_notebook_parameters():
    cfg = OODExperiment.for_profile(get_profile("smoke"), seed=3, fmnist_held_out=2, n_tune=[10, 20], repeats=1,
                                    odin={"temperature": 10.0, "epsilon": 0.0})
    fm, om = cfg.configs()
    assert (fm.dataset, fm.n_held_out, fm.by_group, fm.seed, fm.n_tune) == ("fashion_mnist", 2, False, 3, (10, 20))
    assert (om.dataset, om.by_group, om.val_size) == ("omniglot", True, 0.2)
    assert fm.scorer_kw == {"odin": {"temperature": 10.0, "epsilon": 0.0}}


def test_run_gives_the_tables_the_claims_read(quick_llc):
    from llcpkg.experiments import ood

    P = replace(quick_llc, train_subset=160, test_subset=64)
    cfg = ood.OODExperiment(P, n_tune=(10,), repeats=1, fmnist_val=30)
    toy = replace(cfg.configs()[0], dataset="toy", n_held_out=1)
    out = ood.tables({"toy": run_ood(toy, P)})
    assert set(out) == {ood.OOD, ood.MATCH}
    rows = ood.verdicts(out.__getitem__)
    assert [r["dataset"] for r in rows] == ["toy"] and rows[0]["verdict"] in {"holds", "partly", "does not hold here"}
