"""Out-of-distribution detectors, split and metrics (llcpkg.detectors) on hand-computed cases."""
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import f1_score
from torch import nn

from llcpkg.data import split_classes, toy_bundle
from llcpkg.models import Classifier, LinearHead, LLCHead
from llcpkg.detectors import (
    ACCEPT, AUROC, F1_ID, F1_OOD, FPR95, ID_ACCURACY, SCORERS, DetectorScores, best_f1_threshold, choose_held_out,
    create_scorer, draw_class_sets, evaluate_detector, fpr_at_tpr, ood_auroc, ood_f1, ood_split, samples_to_match,
    score_dataset, score_pools,
)
from llcpkg.profiles import get_profile

# 6 test images: 3 in-distribution (False), 3 OOD (True); scores higher = more OOD.
IS_OOD = np.array([False, False, False, True, True, True])
SCORE = np.array([0.1, 0.4, 0.35, 0.8, 0.3, 0.9])


# ----------------------------------------------------------------------------- metrics, by hand
def test_f1_hand_computed():
    # flag score >= 0.35: flags 0.4, 0.35 (ID: 2 FP), 0.8, 0.9 (2 TP), misses 0.3 (1 FN): F1 = 4 / (4 + 2 + 1)
    assert ood_f1(IS_OOD, SCORE >= 0.35) == pytest.approx(4 / 7)


def test_auroc_hand_computed():
    # OOD-above-ID pairs: 0.8 and 0.9 beat all 3 ID scores (6), 0.3 beats only 0.1 (1): 7 / 9
    assert ood_auroc(IS_OOD, SCORE) == pytest.approx(7 / 9)


def test_fpr_at_tpr_hand_computed():
    # all 3 OOD flagged (TPR 1 >= 0.95) needs t <= 0.3, which also flags 0.4 and 0.35: FPR 2/3
    assert fpr_at_tpr(IS_OOD, SCORE) == pytest.approx(2 / 3)
    # TPR >= 0.6 needs only 0.9 and 0.8: no ID above 0.8, FPR 0
    assert fpr_at_tpr(IS_OOD, SCORE, tpr=0.6) == 0.0
    assert fpr_at_tpr(IS_OOD, SCORE, tpr=2 / 3) == 0.0  # reached exactly by 0.9 and 0.8: "at least" tpr


def test_best_threshold_hand_computed():
    # flag >= 0.8 gives TP 2, FP 0, FN 1: F1 = 0.8, better than >= 0.3 (TP 3, FP 2: F1 = 0.75);
    # the next lower score is 0.4, so t = (0.8 + 0.4) / 2
    assert best_f1_threshold(IS_OOD, SCORE) == pytest.approx(0.6)
    assert best_f1_threshold([False, True, True], [0.0, 1.0, 2.0]) == pytest.approx(0.5)  # integer scores: u − 0.5


def test_best_threshold_equals_brute_force():
    rng = np.random.default_rng(3)
    for _ in range(10):
        y = rng.random(30) < 0.4
        s = np.round(rng.normal(size=30) + y, 1)  # rounded: ties in the scores
        u = np.unique(s)
        f1 = np.array([f1_score(y, s >= t, zero_division=0) for t in u])
        t = best_f1_threshold(y, s)
        lowest_best = u[np.flatnonzero(np.isclose(f1, f1.max()))[0]]
        assert np.array_equal(s >= t, s >= lowest_best)  # the same decisions as the lowest best score
        assert t not in u or t == u[0]


# ----------------------------------------------------------------------------- scorers
def _linear_model(weight: torch.Tensor) -> Classifier:
    """Backbone = flatten; head = x @ weight.T (no bias): logits are known exactly."""
    head = LinearHead(weight.shape[1], weight.shape[0])
    with torch.no_grad():
        head.fc.weight.copy_(weight), head.fc.bias.zero_()
    return Classifier(nn.Flatten(), head).eval()


def _llc_model(codes_pm: torch.Tensor) -> Classifier:
    """Projector = identity, so bit logits = the input's k values; class codes = ``codes_pm``."""
    L, k = codes_pm.shape
    head = LLCHead(k, L, k, codebook=codes_pm)
    with torch.no_grad():
        head.projector.weight.copy_(torch.eye(k)), head.projector.bias.zero_()
    return Classifier(nn.Flatten(), head).eval()


def test_msp_and_energy_hand_computed():
    model = _linear_model(torch.eye(2))
    x = torch.tensor([[[[0.0, float(np.log(3.0))]]]])  # logits (0, log 3): softmax (1/4, 3/4)
    pred, s = create_scorer("msp").postprocess(model, x)
    assert pred.tolist() == [1] and s.item() == pytest.approx(0.25)
    _, e = create_scorer("energy").postprocess(model, x)
    assert e.item() == pytest.approx(-np.log(1 + 3))  # −logsumexp(0, log 3)
    _, e2 = create_scorer("energy", temperature=2.0).postprocess(model, x)
    assert e2.item() == pytest.approx(-2 * np.log(1 + np.sqrt(3)))


def test_odin_without_perturbation_is_tempered_msp_and_step_raises_confidence():
    model = _linear_model(torch.tensor([[1.0, -1.0], [-1.0, 1.0]]))
    x = torch.tensor([[[[0.3, 0.1]]]])  # logits (0.2, −0.2)
    _, s0 = create_scorer("odin", temperature=1.0, epsilon=0.0).postprocess(model, x)
    assert s0.item() == pytest.approx(1 - 1 / (1 + np.exp(-0.4)), rel=1e-5)
    # ε = 0.1 moves x by (+0.1, −0.1) toward class 0: logits (0.4, −0.4)
    _, s1 = create_scorer("odin", temperature=1.0, epsilon=0.1).postprocess(model, x)
    assert s1.item() == pytest.approx(1 - 1 / (1 + np.exp(-0.8)), rel=1e-5)


CODES = torch.tensor([[-1.0, -1, -1], [-1, 1, 1], [1, -1, 1]])  # class codes 000, 011, 101


def test_ed_detector_on_hand_made_codes():
    model = _llc_model(CODES)
    # instance outputs with codes 011 (= class 1), 111 (no match: distance 1 to classes 1, 2), 000 (= class 0), 110 (d 2)
    z = torch.tensor([[-0.5, 0.2, 0.9], [0.1, 0.2, 0.3], [-1.0, -0.1, -2.0], [0.5, 0.5, -0.5]])
    pred, dist = create_scorer("llc_ed").postprocess(model, z[:, None, None, :])
    assert dist.tolist() == [0, 1, 0, 2]
    assert pred.tolist() == [1, 1, 0, 0]  # MHD decision, ties → lowest class index
    s = DetectorScores("llc_ed", SCORERS["llc_ed"].fixed_threshold, np.zeros(1), np.zeros(1),
                       test_in=dist[:3].numpy().astype(float), test_out=dist[3:].numpy().astype(float),
                       test_in_pred=pred[:3].numpy(), test_in_labels=np.array([1, 1, 0]))
    row = evaluate_detector(s, [10]).iloc[0]
    # flagged: the 111 image (ID, FP) and the 110 image (OOD, TP): F1 = 2/(2 + 1); accepted and right: 2 of 3
    # (the 111 image's MHD guess is right, but ED rejected it)
    assert row["n_tune"] == 0 and row[F1_OOD] == pytest.approx(2 / 3)
    assert row[ID_ACCURACY] == pytest.approx(2 / 3)
    # ID positive: accepted = predicted ID: 2 ID accepted (TP), 1 ID rejected (FN), 0 OOD accepted: 4 / (4 + 1)
    assert row[F1_ID] == pytest.approx(4 / 5) and row[ACCEPT] == pytest.approx(2 / 3)


@pytest.mark.parametrize("name", list(SCORERS))
def test_every_scorer_shapes_and_finite(name):
    torch.manual_seed(0)
    data = toy_bundle(n_train=8, n_test=16, num_classes=3, seed=1)
    k = 4
    backbone = nn.Sequential(nn.Flatten(), nn.Linear(64, 8))
    head = LLCHead(8, 3, k) if SCORERS[name].model_kind == "llc" else LinearHead(8, 3)
    pred, score, labels = score_dataset(create_scorer(name), Classifier(backbone, head), data.test, batch_size=5)
    assert pred.shape == score.shape == labels.shape == (16,)
    assert np.isfinite(score).all() and ((pred >= 0) & (pred < 3)).all()


def test_unknown_scorer():
    with pytest.raises(ValueError, match="unknown OOD scorer"):
        create_scorer("nope")


# ----------------------------------------------------------------------------- evaluation
def test_tuned_detector_on_separable_scores_is_perfect():
    rng = np.random.default_rng(0)
    s = DetectorScores("msp", None, rng.random(50), 2 + rng.random(50), rng.random(30), 2 + rng.random(20),
                       np.zeros(30, int), np.zeros(30, int))
    t = evaluate_detector(s, [10, 30, 100], repeats=3)
    assert t["n_tune"].tolist() == [10, 30]  # 100 > the validation pools: skipped
    assert (t[F1_OOD] == 1).all() and (t[F1_ID] == 1).all() and (t[AUROC] == 1).all() and (t[FPR95] == 0).all()
    assert (t[ID_ACCURACY] == 1).all() and (t[ACCEPT] == 1).all()
    table = t.assign(dataset="d")
    ref = table.iloc[:1].assign(detector="llc_ed", n_tune=0, **{F1_OOD: 0.9})
    m = samples_to_match(pd.concat([ref, table]))
    assert m["n to match"].tolist() == [10]


def test_ood_split_pools_are_disjoint_and_named():
    b = toy_bundle(n_train=200, n_test=100, num_classes=4, seed=0)
    sp = ood_split(b, [1, 3], val_size=0.25, seed=0)
    ind, _ = split_classes(b, [1, 3])
    assert len(sp.ind.train) + len(sp.val_in) == len(ind.train)
    assert len(sp.val_in) == round(0.25 * len(ind.train)) and len(sp.val_out) <= len(sp.val_in)
    xs = [tuple(x.flatten()[:5].tolist()) for x in sp.ind.train.tensors[0]]
    assert not set(xs) & {tuple(x.flatten()[:5].tolist()) for x in sp.val_in.tensors[0]}
    out, _ = split_classes(b, [0, 2])  # the held-out classes' train images, relabelled 0, 1
    assert len(sp.val_out) == min(len(out.train), len(sp.val_in))
    assert set(sp.test_out.tensors[1].tolist()) <= {1, 3}
    assert "holdout1,3" in sp.ind.name and sp.ind.num_classes == 2
    assert choose_held_out(b, 2, seed=0) == choose_held_out(b, 2, seed=0)


def test_weighted_threshold_tunes_for_the_prevalence():
    # ID scores 0.1, 0.5; OOD 0.4, 0.9. Unweighted: flag >= 0.4 (TP 2, FP 1: F1 0.8) beats >= 0.9 (F1 2/3).
    y, sc = np.array([False, False, True, True]), np.array([0.1, 0.5, 0.4, 0.9])
    assert best_f1_threshold(y, sc) == pytest.approx(0.25)
    # ID weighted 4 (an OOD share of 1/5): >= 0.4 has FP weight 4: F1 = 4 / (4 + 4) = 0.5 < >= 0.9's 2/3
    assert best_f1_threshold(y, sc, np.array([4.0, 4.0, 1.0, 1.0])) == pytest.approx(0.7)


def test_evaluate_detector_weights_in_distribution_by_the_test_prevalence():
    # val: ID 0.1 and 0.5, OOD 0.4 and 0.9 (as above); test OOD share 1/5 -> ID weight 4 -> threshold 0.7
    s = DetectorScores("msp", None, np.array([0.1, 0.5]), np.array([0.4, 0.9]), np.array([0.1, 0.2, 0.6, 0.8]),
                       np.array([0.95]), np.zeros(4, int), np.zeros(4, int))
    row = evaluate_detector(s, [2], repeats=1).iloc[0]
    assert row["threshold"] == pytest.approx(0.7) and row["test OOD share"] == pytest.approx(0.2)
    assert row[ACCEPT] == pytest.approx(3 / 4)  # 0.8 rejected


def test_score_pools_equals_score_dataset_for_every_scorer():
    torch.manual_seed(0)
    data = toy_bundle(n_train=8, n_test=12, num_classes=3, seed=1)
    pools = {"a": data.test, "b": data.train}
    for kind, head in (("baseline", LinearHead(8, 3)), ("llc", LLCHead(8, 3, 4))):
        model = Classifier(nn.Sequential(nn.Flatten(), nn.Linear(64, 8)), head)
        scorers = {n: create_scorer(n) for n, c in SCORERS.items() if c.model_kind == kind}
        got = score_pools(scorers, model, pools, batch_size=5)
        for name, sc in scorers.items():
            for pool, ds in pools.items():
                for a, b in zip(got[name][pool], score_dataset(sc, model, ds, batch_size=5)):
                    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_draw_class_sets_distinct_sorted_and_fixed():
    sets = draw_class_sets(10, 3, 5, seed=0)
    assert len(set(sets)) == 5 and all(list(s) == sorted(s) and len(s) == 3 for s in sets)
    assert sets == draw_class_sets(10, 3, 5, seed=0) and sets != draw_class_sets(10, 3, 5, seed=1)
    assert len(draw_class_sets(4, 2, 6)) == 6  # every pair of 4
    with pytest.raises(ValueError, match="only 6 sets"):
        draw_class_sets(4, 2, 7)
