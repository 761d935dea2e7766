"""Notebook 01's family (llcpkg.experiments.classification): the claim rules on hand-made per-seed
tables with known intervals, the validation and train splits, the exact-match rate, the phase-2
lr choice, and the whole run end to end on the toy data set."""
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import TensorDataset

from llcpkg.data import DataBundle, labels_of
from llcpkg.experiments import classification as C
from llcpkg.experiments import decoding_cost as D
from llcpkg.profiles import get_profile
from llcpkg.references import REFERENCES
from llcpkg.verdicts import FAILS, HOLDS, INCONCLUSIVE, NOT_RUN, PARTLY, Verdict

SEEDS = (0, 1, 2)
BASE = (0.91, 0.92, 0.93)  # mean 92%, 95% t-interval [89.5, 94.5]: clears the fashion_mnist gate (89.8%)


def _table(dataset="fashion_mnist", base=BASE, mhd_gap=(1.0, 1.2, 1.4), mips_minus_mhd=(0.0, 0.0, 0.0),
           ed_gap=(5.0, 6.0, 7.0), exact=(0.86, 0.87, 0.88), backbone="smallcnn") -> pd.DataFrame:
    """A per-seed classification table: per seed the baseline, MHD = baseline − mhd_gap points,
    MIPS = MHD + mips_minus_mhd points, ED = MHD − ed_gap points, and the exact-match rate; a
    minimum-k row on seed 0 that no claim reads."""
    rows = []
    for s, b, g, m, e, x in zip(SEEDS, base, mhd_gap, mips_minus_mhd, ed_gap, exact):
        mhd = b - g / 100
        rows.append({"seed": s, "dataset": dataset, "classes": 10, "bits": 8, C.BITS_RULE: C.PAPER_RATIO,
                     C.BACKBONE: backbone, C.PHASE2_LR_USED: 0.1, C.BASELINE: b, C.PHASE1_MIPS: mhd + m / 100,
                     C.PHASE1_MHD: mhd - 0.05, C.PHASE2_MHD: mhd, C.PHASE2_MHD_SCORE: mhd, C.PHASE2_ED: mhd - e / 100,
                     C.ED_UNASSIGNED: 0.1, C.EXACT_MATCH: x, C.TIE_RATE: 0.05, "distinct codes": 10,
                     "min code distance": 2, C.TRAIN_IMAGES: 100, C.TRAIN_BASELINE: 0.99, C.TRAIN_PHASE1_MIPS: 0.98,
                     C.TRAIN_PHASE2_MHD: 0.97, C.TRAIN_EXACT_MATCH: 0.9})
    minimum = dict(rows[0], **{"bits": 4, C.BITS_RULE: "minimum", C.PHASE2_MHD: 0.0, C.BASELINE: 0.0})
    return pd.DataFrame(rows + [minimum])


def _slopes(slopes=(0.0, 0.01, -0.01)) -> pd.DataFrame:
    """A slopes table (decoding_cost.slope_table) with one k and batch, one slope per run."""
    return pd.DataFrame([{"run": r, "k": 16, "batch": 1, "L min": 1000, "L max": 1_000_000, "points": 4, "slope": s}
                         for r, s in enumerate(slopes)])


def _reader(**tables):
    def t(name):
        if name not in tables:
            raise FileNotFoundError(name)
        return tables[name]
    return t


def _one(rule, **tables) -> dict:
    rows = rule(_reader(**tables))
    assert len(rows) == 1
    return rows[0]


# ----------------------------------------------------------------------------- MHD near baseline
@pytest.mark.parametrize("gaps, kind", [
    ((1.0, 1.2, 1.4), HOLDS),  # [0.70, 1.70] ≤ 2.4
    ((5.0, 5.2, 5.4), FAILS),  # [4.70, 5.70] > 2.4
    ((1.0, 2.4, 3.8), INCONCLUSIVE),  # [-1.08, 5.88] straddles 2.4
])
def test_mhd_near_baseline_on_the_paired_interval(gaps, kind):
    row = _one(C.claim_mhd_near_baseline, classification=_table(mhd_gap=gaps))
    assert row["verdict"] == kind and row["seeds"] == 3 and row["dataset"] == "fashion_mnist"
    assert "2.40 points" in row["rule"] and "; gated: " in row["rule"]


def test_an_under_trained_baseline_makes_every_claim_inconclusive():
    low = _table(base=(0.80, 0.81, 0.82))  # [78.5, 83.5]: wholly below 91.8 − 2 = 89.8
    for rule in (C.claim_mhd_near_baseline, C.claim_phase2):
        row = _one(rule, classification=low)
        assert row["verdict"] == "inconclusive (baseline under-trained: 81.0% < 89.8%)", rule
    ed = _one(C.claim_ed, classification=low, decoding_cost_ed_slopes=_slopes())
    assert ed["verdict"] == "partly (inconclusive: ED–MHD gap, exact-match rate)"  # the cost part is not gated


def test_a_data_set_without_a_reference_is_ungated_and_says_so():
    assert "smallcnn/toy" not in REFERENCES
    row = _one(C.claim_mhd_near_baseline, classification=_table(dataset="toy", base=(0.50, 0.51, 0.52)))
    assert row["verdict"] == HOLDS and "not gated: no adequacy reference 'smallcnn/toy'" in row["rule"]


def test_a_missing_column_raises_instead_of_reading_as_not_run():
    t = _table().drop(columns=[C.EXACT_MATCH])
    for rule in C.CLAIMS.values():
        with pytest.raises(KeyError, match="exact match"):
            rule(_reader(classification=t))
    with pytest.raises(KeyError, match="seed"):
        C.verdicts(_reader(classification=_table().drop(columns=["seed"])))


def test_a_missing_table_is_not_run():
    assert [r["verdict"] for r in C.verdicts(_reader())] == [NOT_RUN] * len(C.CLAIMS)


# ----------------------------------------------------------------------------- ED
def test_ed_holds_when_gap_exact_match_and_cost_all_hold():
    row = _one(C.claim_ed, classification=_table(), decoding_cost_ed_slopes=_slopes())
    assert row["verdict"] == HOLDS, row
    assert "ED–MHD gap" in row["rule"] and "exact-match rate" in row["rule"] and "cost flat in L" in row["rule"]


@pytest.mark.parametrize("kw, slopes, verdict", [
    ({}, (0.50, 0.52, 0.48), "partly (fails: cost flat in L)"),  # ED grows like sqrt(L)
    ({"ed_gap": (20.0, 21.0, 22.0)}, (0.0, 0.01, -0.01), "partly (fails: ED–MHD gap)"),  # [19.5, 22.5] > 11.5
    ({"ed_gap": (-3.0, -2.8, -2.6)}, (0.0, 0.01, -0.01), "partly (fails: ED–MHD gap)"),  # ED above MHD: not the paper's
    ({"exact": (0.40, 0.41, 0.42)}, (0.0, 0.01, -0.01), "partly (fails: exact-match rate)"),  # [38.5, 43.5] < 68.8
    ({"ed_gap": (8.0, 11.5, 15.0)}, (0.0, 0.01, -0.01), "partly (inconclusive: ED–MHD gap)"),  # straddles 11.5
])
def test_ed_names_the_part_that_fails(kw, slopes, verdict):
    assert _one(C.claim_ed, classification=_table(**kw), decoding_cost_ed_slopes=_slopes(slopes))["verdict"] == verdict


def test_ed_without_the_timing_table_marks_the_cost_part_not_run():
    assert _one(C.claim_ed, classification=_table())["verdict"] == "partly (not run: cost flat in L)"
    # straddling accuracy parts and no timing: inconclusive, never "does not hold"
    row = _one(C.claim_ed, classification=_table(ed_gap=(8.0, 11.5, 15.0), exact=(0.60, 0.69, 0.78)))
    assert row["verdict"] == "inconclusive (not run: cost flat in L)"
    # a slopes table without slopes (the smoke profile measures two L) leaves the cost part not run too
    empty = _slopes(()).reindex(columns=["run", "k", "batch", "L min", "L max", "points", "slope"])
    assert _one(C.claim_ed, classification=_table(), decoding_cost_ed_slopes=empty)["verdict"] == \
        "partly (not run: cost flat in L)"


# ----------------------------------------------------------------------------- phase 2 reaches MIPS
@pytest.mark.parametrize("mips_minus_mhd, kind", [
    ((0.0, 0.2, 0.4), HOLDS),  # MHD − MIPS in [-0.70, 0.30] ≥ -1.0
    ((3.0, 3.2, 3.4), FAILS),  # [-3.70, -2.70] < -1.0
    ((0.0, 1.0, 2.0), INCONCLUSIVE),  # [-3.48, 1.48] straddles -1.0
])
def test_phase2_reaches_mips_with_a_tolerance(mips_minus_mhd, kind):
    row = _one(C.claim_phase2, classification=_table(mips_minus_mhd=mips_minus_mhd))
    assert row["verdict"] == kind and "-1.00 points" in row["rule"]


def test_one_seed_decides_on_the_point_value_and_says_so():
    one = _table().iloc[[0]]
    assert _one(C.claim_mhd_near_baseline, classification=one)["verdict"] == "holds (1 seed)"


# ----------------------------------------------------------------------------- splits and metrics
def _bundle(n_per_class=(10, 20, 30)) -> DataBundle:
    y = torch.cat([torch.full((n,), c) for c, n in enumerate(n_per_class)])
    x = torch.arange(len(y), dtype=torch.float32).view(-1, 1, 1, 1).expand(-1, 1, 2, 2).contiguous()
    ds = TensorDataset(x, y)
    return DataBundle("toyset", ds, TensorDataset(x[:6], y[:6]), ["a", "b", "c"], None, (1, 2, 2))


def test_validation_split_is_stratified_disjoint_and_fixed():
    data = _bundle()
    val = C.validation_bundle(data, 12)  # a fifth of 60: 2, 4 and 6 images of the three classes
    assert np.bincount(labels_of(val.test)).tolist() == [2, 4, 6]
    assert np.bincount(labels_of(val.train)).tolist() == [8, 16, 24]
    ids_val, ids_train = (set(d.tensors[0][:, 0, 0, 0].int().tolist()) for d in (val.test, val.train))
    assert not ids_val & ids_train and len(ids_val | ids_train) == 60
    again = C.validation_bundle(data, 12)
    assert torch.equal(again.test.tensors[0], val.test.tensors[0])  # the split seed is fixed
    assert torch.equal(C.validation_bundle(data, 12, split_seed=1).test.tensors[0], val.test.tensors[0]) is False


def test_train_view_evaluates_on_a_fixed_subset_of_the_training_split():
    data = _bundle()
    view = C.train_view(data, 25)
    assert len(view.test) == 25 and view.train is data.train
    train_ids = set(data.train.tensors[0][:, 0, 0, 0].int().tolist())
    assert set(view.test.tensors[0][:, 0, 0, 0].int().tolist()) <= train_ids
    assert len(C.train_view(data, 1000).test) == 60  # capped at the training split


def test_exact_match_counts_images_on_their_own_class_code():
    class_bits = np.array([[0, 0], [1, 1]], dtype=np.uint8)
    z = np.array([[-1.0, -2.0], [1.0, -1.0], [3.0, 0.5], [-1.0, -1.0]])  # codes 00, 10, 11, 00
    out = {"bit_logits": z, "class_bits": class_bits, "labels": np.array([0, 1, 1, 1])}
    assert C.exact_match(out) == 0.5  # images 0 and 2 match; 1 is off by a bit; 3 is on the other class's code


def test_the_chosen_lr_is_the_best_validation_mhd_per_data_set():
    lr = pd.DataFrame({"dataset": ["a", "a", "b", "b"], "phase2 lr": [0.01, 0.1, 0.01, 0.1],
                       C.VAL_MHD: [0.8, 0.9, 0.7, 0.6], C.CHOSEN: [False, True, True, False]})
    assert C.chosen_phase2_lrs(lr) == {"a": 0.1, "b": 0.01}
    with pytest.raises(ValueError, match="exactly one"):
        C.chosen_phase2_lrs(lr.assign(**{C.CHOSEN: True}))


def test_phase2_grows_longer_only_while_the_training_exact_match_rate_rises():
    assert C.plateau_index([0.50, 0.60, 0.605]) == 1  # ×2 still gained 10 points, ×4 only 0.5
    assert C.plateau_index([0.50, 0.505]) == 0
    assert C.plateau_index([0.50, 0.60, 0.70]) == 2  # still rising at the longest tried
    assert C.plateau_index([0.62]) == 0
    lengths = pd.DataFrame({"dataset": ["a", "a"], "length": [1, 2], C.CHOSEN: [False, True]})
    assert C.chosen_phase2_lengths(lengths) == {"a": 2}


def test_for_profile_resolves_seeds(monkeypatch):
    monkeypatch.delenv("LLC_SEEDS", raising=False)
    assert C.ClassificationExperiment.for_profile(get_profile("cpu")).seeds == (0, 1, 2)
    assert C.ClassificationExperiment.for_profile(get_profile("smoke")).seeds == (0,)
    monkeypatch.setenv("LLC_SEEDS", "3 4")
    cfg = C.ClassificationExperiment.for_profile(get_profile("cpu"), datasets=["toy"])
    assert cfg.seeds == (3, 4) and cfg.datasets == ("toy",)
    assert cfg.bits_for_seed(10, 3) == {"paper ratio": 8, "minimum": 4} and cfg.bits_for_seed(10, 4) == {"paper ratio": 8}


# ----------------------------------------------------------------------------- end to end
def test_run_chooses_phase2_lr_on_validation_and_uses_it_on_every_seed(quick_llc):
    P = replace(quick_llc, train_subset=160, test_subset=64)
    cfg = C.ClassificationExperiment.for_profile(P, datasets=["toy"], seeds=[0, 1], phase2_lrs=[0.02, 0.2],
                                                 phase2_lengths=[1, 2], val_size=40)
    tables = C.run(cfg)
    lr = tables[C.PHASE2_LR]
    assert lr["phase2 lr"].tolist() == [0.02, 0.2] and lr[C.CHOSEN].sum() == 1
    assert lr["val images"].iloc[0] == 32  # a fifth of the 160 training images, 8 of each of the 4 classes
    per_seed = tables[C.CLASSIFICATION]
    assert per_seed.columns[0] == "seed"
    assert set(per_seed[C.PHASE2_LR_USED]) == {C.chosen_phase2_lrs(lr)["toy"]}
    length = tables[C.PHASE2_LENGTH]
    assert length["length"].tolist() == [1, 2] and length[C.PHASE2_EPOCHS].tolist() == [1, 2]
    assert set(length["phase2 lr"]) == set(per_seed[C.PHASE2_LR_USED])  # lengths are tried at the chosen lr
    assert set(per_seed[C.PHASE2_EPOCHS]) == {C.chosen_phase2_lengths(length)["toy"]}  # the toy profile: 1 epoch × m
    assert sorted(zip(per_seed["seed"], per_seed[C.BITS_RULE])) == [(0, "minimum"), (0, C.PAPER_RATIO),
                                                                     (1, C.PAPER_RATIO)]
    assert (per_seed[C.TRAIN_IMAGES] == 160).all()
    summary = tables[C.CLASSIFICATION_SUMMARY]
    assert summary.set_index(C.BITS_RULE)["seeds"].to_dict() == {C.PAPER_RATIO: 2, "minimum": 1}
    rows = C.verdicts(_reader(**tables))
    assert [r["dataset"] for r in rows] == ["toy"] * 3 and all(r["seeds"] == 2 for r in rows)
    text = C.readings(tables, cfg)
    assert "phase 2 runs at" in text and "phase 2 runs ×" in text and "Train (160 images)" in text


def test_the_quick_look_reuses_the_full_runs_phase2_choice_and_trains_none_of_it(quick_llc, tmp_path, monkeypatch,
                                                                                  capsys):
    from llcpkg import train
    from llcpkg.results import write_table

    monkeypatch.setenv("LLC_RESULTS", str(tmp_path / "results"))
    P = replace(quick_llc, name="laptop", train_subset=160, test_subset=64)  # a real profile's name: not smoke
    kw = dict(datasets=["toy"], phase2_lrs=[0.02, 0.2], phase2_lengths=[1, 2], val_size=40)
    full = C.ClassificationExperiment.for_profile(P, seeds=[0, 1], **kw)
    lr = C.phase2_lr_table(full)
    length = C.phase2_length_table(full, C.chosen_phase2_lrs(lr))
    write_table(lr, C.PHASE2_LR, P.results_dir)
    write_table(length, C.PHASE2_LENGTH, P.results_dir)
    monkeypatch.setenv("LLC_CACHE", str(tmp_path / "empty-cache"))  # nothing cached: a choice made again would train
    class Trains(Exception):
        """Raised by the stub: a stage would train."""

    def stub(*args, **kwargs):
        raise Trains

    monkeypatch.setattr(train, "_train_stage", stub)
    quick = C.ClassificationExperiment.for_profile(P, seeds=[0], **kw)
    again = C.phase2_lr_table(quick)  # nothing trains: the stub would raise
    assert C.chosen_phase2_lrs(again) == C.chosen_phase2_lrs(lr) and again["phase2 lr"].tolist() == [0.02, 0.2]
    assert C.phase2_length_table(quick, C.chosen_phase2_lrs(again))["length"].tolist() == [1, 2]
    assert "reused from" in capsys.readouterr().out
    other = {"toy": 0.2 if C.chosen_phase2_lrs(lr)["toy"] != 0.2 else 0.02}
    with pytest.raises(Trains):  # lengths recorded at another lr: chosen again
        C.phase2_length_table(quick, other)
    assert "other candidates" in capsys.readouterr().out
    with pytest.raises(Trains):  # other candidates: chosen again
        C.phase2_lr_table(replace(quick, phase2_lrs=(0.05, 0.2)))
    assert "other candidates" in capsys.readouterr().out
    with pytest.raises(Trains):  # two seeds: the full run always makes its own choice
        C.phase2_lr_table(full)
