"""Out-of-distribution detectors, their split and metrics (LLC, §4.4); the experiment that
runs them is :mod:`llcpkg.experiments.ood`.

Kusupati et al. (NeurIPS 2021) flag an image as OOD when its instance code g(x) matches no
class code exactly (exact decoding, ED): no threshold and no OOD data are needed, and they
report that a max-softmax-probability (MSP) baseline needed about 3,000 OOD samples to tune
its threshold to the same F1.

Protocol (:func:`llcpkg.experiments.ood.run_ood`): hold some classes out (Omniglot: whole alphabets), train the
baseline and LLC on the rest (``pipeline.run_llc``, cached), then score four pools:

* ``val_in``  - a held-back part of the in-distribution TRAIN split (never trained on);
* ``val_out`` - held-out classes' TRAIN images (at most as many as ``val_in``);
* ``test_in`` / ``test_out`` - the TEST split of the in-distribution / held-out classes.

Threshold tuning with n samples draws n images from each validation pool and picks the
threshold that maximises F1 (OOD positive) on those 2n *at the test prevalence*: each
in-distribution sample is weighted by (1 − π)/π, π the OOD share of the test split, so the
weighted tuning set has the test's mix (a balanced 2n set would tune for a 50 % OOD share the
test does not have). It reports on the test pools, over ``repeats`` draws (mean ± std).

Conventions
-----------
* Positive class = OOD for AUROC, FPR at 95 % TPR and ``F1 (OOD positive)``, as in OpenOOD;
  ``F1 (ID positive)`` is the same decision's F1 with in-distribution as the positive class
  (accepted = predicted positive). ``ID acceptance`` is the share of in-distribution test
  images a detector accepts (for ED: the share whose instance code equals a class code).
* Every scorer returns an OOD *score*: higher = more out-of-distribution. An image is
  flagged OOD when ``score >= threshold`` (scikit-learn's ``precision_recall_curve`` rule).
* Scorers share one signature, ``postprocess(model, x) -> (pred (B,), score (B,))``
  (OpenOOD's, with the score's sign flipped), and live in the ``SCORERS`` registry. Each
  names the model ``output`` it reads (``OUTPUTS``: real logits or LLC bit logits) and maps it
  with ``from_output``, so :func:`score_pools` runs a model once per pool for all the scorers
  that share an output (ODIN needs the images themselves, ``output = None``):
  MSP is the base class, energy and ODIN override one method each, ``llc_hamming`` scores
  the Hamming distance from g(x) to the nearest class code, and ``llc_ed`` is the same score
  with the fixed threshold 1 (no exact match = OOD).
* ``id_accuracy``: share of in-distribution test images that are accepted AND correctly
  classified (a rejected in-distribution image counts as an error); for ED it equals ED's
  accuracy.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.metrics import f1_score, precision_recall_curve, roc_auc_score, roc_curve
from torch.utils.data import Dataset

from . import decode
from .data import DataBundle, take, split_classes
from .models import Classifier
from .train import iterate_batches

__all__ = ["F1_OOD", "F1_ID", "ACCEPT", "ID_ACCURACY", "AUROC", "FPR95", "THRESHOLD", "OUTPUTS", "score_pools",
           "draw_class_sets", "Scorer", "EnergyScorer", "ODINScorer", "HammingScorer", "EDScorer", "SCORERS", "register_scorer",
           "create_scorer", "list_scorers", "score_dataset", "ood_f1", "ood_auroc", "fpr_at_tpr",
           "best_f1_threshold", "OODSplit", "ood_split", "choose_held_out", "DetectorScores",
           "evaluate_detector", "samples_to_match"]


# columns of evaluate_detector's table (the operating-point ones: mean over tuning draws, and "<name> draw std")
F1_OOD, F1_ID = "F1 (OOD positive)", "F1 (ID positive)"  # F1 of the in/out decision with either positive class
ACCEPT, ID_ACCURACY = "ID acceptance", "id_accuracy"  # share of ID test images accepted / accepted and right
AUROC, FPR95, THRESHOLD = "AUROC (OOD positive)", "FPR@95TPR", "threshold"


# ----------------------------------------------------------------------------- metrics (OOD = positive)
def ood_f1(is_ood: np.ndarray, flagged: np.ndarray) -> float:
    """F1 of the in/out decision, OOD = positive. is_ood, flagged: (N,) bool."""
    return float(f1_score(np.asarray(is_ood, bool), np.asarray(flagged, bool), zero_division=0.0))


def ood_auroc(is_ood: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve of ``score`` (higher = more OOD) for detecting OOD (positive)."""
    return float(roc_auc_score(np.asarray(is_ood, bool), score))


def fpr_at_tpr(is_ood: np.ndarray, score: np.ndarray, tpr: float = 0.95) -> float:
    """False-positive rate (in-distribution flagged OOD) at the first ROC point whose
    true-positive rate (OOD flagged OOD) reaches ``tpr`` (OpenOOD's FPR@95TPR)."""
    fpr_c, tpr_c, _ = roc_curve(np.asarray(is_ood, bool), score)
    return float(fpr_c[np.argmax(tpr_c >= tpr)])


def best_f1_threshold(is_ood: np.ndarray, score: np.ndarray, sample_weight: np.ndarray | None = None) -> float:
    """A threshold t maximising F1 of ``score >= t`` (OOD = positive) on these samples, each
    counted with its ``sample_weight`` (N,) if given (e.g. to tune at a given prevalence).

    The best observed score u (the lowest among equally good ones, F1 compared to 12
    decimals) is moved halfway down to the next lower observed score, so that the decision
    on these samples is unchanged while unseen scores just below u are not rejected by
    chance: for integer scores (Hamming distances) t = u − 0.5.
    """
    score = np.asarray(score, np.float64)
    precision, recall, thresholds = precision_recall_curve(np.asarray(is_ood, bool), score, sample_weight=sample_weight)
    p, r = precision[:-1], recall[:-1]  # the last point (recall 0) has no threshold
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.round(np.where(p + r > 0, 2 * p * r / (p + r), 0.0), 12)
    u = thresholds[int(np.argmax(f1))]
    below = score[score < u]
    return float((u + below.max()) / 2 if below.size else u)


# ----------------------------------------------------------------------------- scorers (registry)
def _bit_logits(model: Classifier, x: torch.Tensor) -> torch.Tensor:
    return model.head.bit_logits(model.features(x))


# the model outputs scorers share: name -> (model, images (B, C, H, W)) -> output (B, ·)
OUTPUTS: dict[str, Callable[[Classifier, torch.Tensor], torch.Tensor]] = {
    "logits": lambda model, x: model(x),  # (B, L) real logits of a linear-head model
    "bit_logits": _bit_logits,  # (B, k) LLC bit logits P F(x)
}

SCORERS: dict[str, type["Scorer"]] = {}


def register_scorer(name: str):
    """Class decorator adding a scorer to ``SCORERS`` under ``name``."""
    def add(cls):
        cls.name = name
        SCORERS[name] = cls
        return cls
    return add


@register_scorer("msp")
class Scorer:
    """Maximum softmax probability (Hendrycks & Gimpel, ICLR 2017): score = 1 − max_c softmax(f(x))_c.

    The base class: ``postprocess`` computes the shared model output ``OUTPUTS[output]`` and
    hands it to ``from_output``, which by default takes the argmax and ``ood_score``;
    subclasses override one of the three.
    """

    name = "msp"
    model_kind = "baseline"  # which model of an LLCRun it scores: "baseline" (real logits) | "llc" (phase 2)
    output: str | None = "logits"  # the OUTPUTS entry from_output reads; None: needs the images (postprocess)
    fixed_threshold: float | None = None  # a threshold that needs no OOD data; None = tuned

    @torch.no_grad()
    def postprocess(self, model: Classifier, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (B, C, H, W) → predicted class (B,) and OOD score (B,), higher = more OOD."""
        return self.from_output(model, OUTPUTS[self.output](model, x))

    def from_output(self, model: Classifier, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The shared output (B, ·) → predicted class (B,) and OOD score (B,)."""
        return out.argmax(1), self.ood_score(out)

    def ood_score(self, logits: torch.Tensor) -> torch.Tensor:
        return 1.0 - F.softmax(logits, dim=1).max(dim=1).values


@register_scorer("energy")
class EnergyScorer(Scorer):
    """Energy score (Liu et al., NeurIPS 2020): E(x) = −T · logsumexp(f(x) / T), higher = more OOD."""

    def __init__(self, temperature: float = 1.0):
        self.temperature = temperature

    def ood_score(self, logits: torch.Tensor) -> torch.Tensor:
        return -self.temperature * torch.logsumexp(logits / self.temperature, dim=1)


@register_scorer("odin")
class ODINScorer(Scorer):
    """ODIN (Liang et al., ICLR 2018): temperature-scaled MSP after a small input step.

    x̃ = x − ε · sign(−∇ₓ log max_c softmax(f(x)/T)_c), score = 1 − max_c softmax(f(x̃)/T)_c.
    ε is in the model's (normalised) input units: the ODIN paper's 0.0014 on [0, 1] pixels
    is ≈ 0.004 after Fashion-MNIST's normalisation (std 0.353). T and ε are fixed, not tuned.
    It needs the images (a gradient step on them), so it shares no output with other scorers.
    """

    output = None

    def __init__(self, temperature: float = 1000.0, epsilon: float = 0.004):
        self.temperature, self.epsilon = temperature, epsilon

    def postprocess(self, model: Classifier, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.enable_grad():
            x = x.detach().clone().requires_grad_(True)
            logits = model(x)
            loss = -F.log_softmax(logits / self.temperature, dim=1).max(dim=1).values.sum()
            (grad,) = torch.autograd.grad(loss, x)
        with torch.no_grad():
            pred = logits.detach().argmax(1)
            out = model(x.detach() - self.epsilon * grad.sign())
            return pred, 1.0 - F.softmax(out / self.temperature, dim=1).max(dim=1).values


@register_scorer("llc_hamming")
class HammingScorer(Scorer):
    """LLC: Hamming distance from the instance code g(x) = B(P F(x)) to the nearest class code;
    pred = MHD decision (ties → lowest class index)."""

    model_kind = "llc"
    output = "bit_logits"

    @torch.no_grad()
    def from_output(self, model: Classifier, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        codes = (model.head.class_codes() > 0).to(torch.uint8)  # (L, k) {0, 1}
        res = decode.mhd_decode(decode.signs_to_bits(z.cpu()), codes.cpu())
        return torch.from_numpy(res.pred), torch.from_numpy(res.distance).float()


@register_scorer("llc_ed")
class EDScorer(HammingScorer):
    """LLC exact decoding: OOD iff g(x) equals no class code (distance ≥ 1); no threshold to tune."""

    fixed_threshold = 1.0


def create_scorer(name: str, **kw) -> Scorer:
    """Instantiate registered scorer ``name`` with its keyword settings."""
    if name not in SCORERS:
        raise ValueError(f"unknown OOD scorer {name!r}; choose one of {list_scorers()}")
    return SCORERS[name](**kw)


def list_scorers() -> list[str]:
    return list(SCORERS)


Scored = tuple[np.ndarray, np.ndarray, np.ndarray]  # pred (N,), score (N,) float64, labels (N,)


def _on_device(model: Classifier, device: str):
    home = next(model.parameters()).device
    model.eval().to(device)
    return home


def score_dataset(scorer: Scorer, model: Classifier, ds: Dataset, batch_size: int = 512,
                  device: str = "cpu") -> Scored:
    """Run ``scorer`` over ``ds`` in eval mode: pred (N,), score (N,) and labels (N,). The
    model is left on the device it came on."""
    home = _on_device(model, device)
    preds, scores, labels = [], [], []
    for x, y in iterate_batches(ds, batch_size, shuffle=False):
        p, s = scorer.postprocess(model, x.to(device))
        preds.append(p.cpu()), scores.append(s.detach().cpu()), labels.append(torch.as_tensor(y))
    model.to(home)
    return torch.cat(preds).numpy(), torch.cat(scores).double().numpy(), torch.cat(labels).numpy()


@torch.no_grad()
def _model_output(model: Classifier, ds: Dataset, output: str, batch_size: int, device: str) -> tuple[torch.Tensor, np.ndarray]:
    """``OUTPUTS[output]`` of ``model`` over ``ds`` (N, ·) on the CPU, and the labels (N,)."""
    outs, labels = [], []
    for x, y in iterate_batches(ds, batch_size, shuffle=False):
        outs.append(OUTPUTS[output](model, x.to(device)).cpu()), labels.append(torch.as_tensor(y))
    return torch.cat(outs), torch.cat(labels).numpy()


def score_pools(scorers: dict[str, Scorer], model: Classifier, pools: dict[str, Dataset], batch_size: int = 512,
                device: str = "cpu") -> dict[str, dict[str, Scored]]:
    """Every scorer on every pool, by scorer then pool: (pred, score, labels) as in :func:`score_dataset`.

    The model runs once per pool and shared output (``Scorer.output``): MSP and energy read the
    same logits, ``llc_hamming`` and ``llc_ed`` the same bit logits; a scorer with no shared
    output (ODIN) runs its own ``postprocess``. Equal to :func:`score_dataset` per scorer (tested).
    """
    home = _on_device(model, device)
    out: dict[str, dict[str, Scored]] = {name: {} for name in scorers}
    for pool, ds in pools.items():
        shared = {o: _model_output(model, ds, o, batch_size, device) for o in {s.output for s in scorers.values()} - {None}}
        for name, sc in scorers.items():
            if sc.output is None:
                out[name][pool] = score_dataset(sc, model, ds, batch_size, device)
                continue
            z, labels = shared[sc.output]
            pred, score = sc.from_output(model, z)
            out[name][pool] = (pred.numpy(), score.double().numpy(), labels)
    model.to(home)
    return out


# ----------------------------------------------------------------------------- the split
@dataclass
class OODSplit:
    """The four pools of the protocol (module docstring) and the in-distribution bundle
    whose ``train`` is what the models are trained on (``val_in`` removed)."""

    ind: DataBundle  # in-distribution classes, labels re-indexed; train excludes val_in
    val_in: Dataset  # held-back in-distribution train images
    val_out: Dataset  # held-out classes' train images (|val_out| <= |val_in|)
    test_out: Dataset  # held-out classes' test images
    held_out: list[int]  # held-out class indices in the original bundle


def _split_off(ds: Dataset, n: int, rng: np.random.Generator) -> tuple[Dataset, Dataset]:
    """Random (rest, part) split of ``ds`` with ``len(part) == n``."""
    order = rng.permutation(len(ds))
    return take(ds, np.sort(order[n:])), take(ds, np.sort(order[:n]))


def ood_split(bundle: DataBundle, held_out: list[int], val_size: int | float = 3000, seed: int = 0) -> OODSplit:
    """Split ``bundle`` for OOD detection. ``val_size``: in-distribution train images held back
    for threshold tuning (an int; a float is a fraction of the train split), at most half of it.

    The in-distribution bundle's name records the held-out classes and the validation cut,
    so its cached models (keyed by name and sizes) never collide with another split's.
    """
    rng = np.random.default_rng(seed)
    ind, test_out = split_classes(bundle, held_out)
    keep = [c for c in range(bundle.num_classes) if c not in set(held_out)]
    out_bundle, _ = split_classes(bundle, keep)  # its train split = held-out classes' train images
    n_train = len(ind.train)
    n_val = int(round(val_size * n_train)) if isinstance(val_size, float) else int(val_size)
    n_val = max(1, min(n_val, n_train // 2))
    train, val_in = _split_off(ind.train, n_val, rng)
    val_out = out_bundle.train
    if len(val_out) > n_val:
        _, val_out = _split_off(val_out, n_val, rng)
    name = f"{ind.name}-holdout{','.join(map(str, sorted(held_out)))}-val{n_val}s{seed}"
    ind = DataBundle(name, train, ind.test, ind.class_names, ind.groups, ind.image_shape)
    return OODSplit(ind, val_in, val_out, test_out, sorted(held_out))


def choose_held_out(bundle: DataBundle, n: int, by_group: bool = False, seed: int = 0) -> list[int]:
    """``n`` classes (or, with ``by_group``, all classes of ``n`` groups) drawn with a fixed seed."""
    rng = np.random.default_rng(seed)
    if not by_group:
        return sorted(int(c) for c in rng.choice(bundle.num_classes, n, replace=False))
    if not bundle.groups:
        raise ValueError(f"{bundle.name} has no groups to hold out")
    names = list(bundle.groups)
    picked = rng.choice(len(names), n, replace=False)
    return sorted(c for g in picked for c in bundle.groups[names[g]])


def draw_class_sets(num_classes: int, size: int, count: int, seed: int = 0) -> list[tuple[int, ...]]:
    """``count`` distinct sets of ``size`` classes out of ``num_classes`` (each sorted), drawn at
    random with ``seed`` in a fixed order: the held-out splits of an experiment over splits."""
    from math import comb

    if count > comb(num_classes, size):
        raise ValueError(f"only {comb(num_classes, size)} sets of {size} among {num_classes} classes; asked for {count}")
    rng = np.random.default_rng(seed)
    sets: list[tuple[int, ...]] = []
    while len(sets) < count:
        s = tuple(sorted(int(c) for c in rng.choice(num_classes, size, replace=False)))
        if s not in sets:
            sets.append(s)
    return sets


# ----------------------------------------------------------------------------- evaluation
@dataclass
class DetectorScores:
    """One detector's scores on the four pools (higher = more OOD) and its test predictions."""

    detector: str
    fixed_threshold: float | None
    val_in: np.ndarray  # (n_val_in,)
    val_out: np.ndarray  # (n_val_out,)
    test_in: np.ndarray  # (n_test_in,)
    test_out: np.ndarray  # (n_test_out,)
    test_in_pred: np.ndarray  # (n_test_in,) predicted class (−1 = unassigned)
    test_in_labels: np.ndarray  # (n_test_in,)

    def test(self) -> tuple[np.ndarray, np.ndarray]:
        """is_ood (N,) bool and score (N,) over the whole test set (in first, then out)."""
        return (np.r_[np.zeros(len(self.test_in), bool), np.ones(len(self.test_out), bool)],
                np.r_[self.test_in, self.test_out])


def _operating_point(s: DetectorScores, threshold: float) -> dict[str, float]:
    is_ood, score = s.test()
    flagged = score >= threshold
    accepted = s.test_in < threshold
    return {THRESHOLD: threshold, F1_OOD: ood_f1(is_ood, flagged), F1_ID: ood_f1(~is_ood, ~flagged),
            ACCEPT: float(accepted.mean()),
            ID_ACCURACY: float((accepted & (s.test_in_pred == s.test_in_labels)).mean())}


def evaluate_detector(s: DetectorScores, n_tune: list[int], repeats: int = 5, seed: int = 0) -> pd.DataFrame:
    """One row per number of tuning samples n (one row with n = 0 for a fixed-threshold detector).

    Columns: detector, n_tune, repeats, ``AUROC`` and ``FPR95`` (test split, threshold-free, OOD
    positive, the same on every row), ``test OOD share`` π, then ``<m>`` (the mean) and
    ``<m> draw std`` over ``repeats`` draws of n in- and n out-of-distribution validation samples
    for m in threshold,
    ``F1_OOD``, ``F1_ID``, ``ACCEPT``, ``ID_ACCURACY``. Each threshold maximises F1 (OOD
    positive) on its 2n samples with the in-distribution ones weighted by (1 − π)/π, i.e. at the
    test prevalence. n larger than a validation pool is skipped.
    """
    is_ood, score = s.test()
    share = float(is_ood.mean())
    common = {"detector": s.detector, AUROC: ood_auroc(is_ood, score), FPR95: fpr_at_tpr(is_ood, score),
              "test OOD share": share}
    if s.fixed_threshold is not None:
        op = _operating_point(s, s.fixed_threshold)
        return pd.DataFrame([{**common, "n_tune": 0, "repeats": 1, **op, **{f"{k} draw std": 0.0 for k in op}}])
    rows = []
    for n in n_tune:
        if n > min(len(s.val_in), len(s.val_out)):
            continue
        w_in = (1 - share) / share if 0 < share < 1 else 1.0
        weight = np.r_[np.full(n, w_in), np.ones(n)]  # in-distribution samples first
        ops = []
        for r in range(repeats):
            rng = np.random.default_rng([seed, n, r])
            sin = rng.choice(s.val_in, n, replace=False)
            sout = rng.choice(s.val_out, n, replace=False)
            t = best_f1_threshold(np.r_[np.zeros(n, bool), np.ones(n, bool)], np.r_[sin, sout], weight)
            ops.append(_operating_point(s, t))
        df = pd.DataFrame(ops)
        rows.append({**common, "n_tune": n, "repeats": repeats, **{k: df[k].mean() for k in df},
                     **{f"{k} draw std": df[k].std(ddof=0) for k in df}})
    return pd.DataFrame(rows)


def samples_to_match(table: pd.DataFrame, reference: str = "llc_ed", metric: str = F1_OOD,
                     by: str = "dataset") -> pd.DataFrame:
    """Per group of ``by`` and tuned detector: the reference's value, the smallest n whose
    ``metric`` reaches it (NaN if none does) and the best value over n (``table``: one row per
    group, detector and n, e.g. a summary over runs)."""
    rows = []
    for ds, t in table.groupby(by, sort=False):
        ref = float(t.loc[t["detector"] == reference, metric].iloc[0])
        for det, d in t[t["detector"] != reference].groupby("detector", sort=False):
            ok = d.loc[d[metric] >= ref, "n_tune"]
            rows.append({by: ds, "detector": det, f"{reference} {metric}": ref,
                         "best": float(d[metric].max()), "n at best": int(d.loc[d[metric].idxmax(), "n_tune"]),
                         "n to match": float(ok.min()) if len(ok) else np.nan})
    return pd.DataFrame(rows)
