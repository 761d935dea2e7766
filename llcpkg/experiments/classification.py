"""Notebook 01: classification with learnt binary codes (the paper's Table 1) over seeds, with
train accuracy beside test accuracy, phase 2's learning rate chosen per data set on a validation
split, and the cost of a training step.

The pipeline (stage configs, cached stages) is :mod:`llcpkg.pipeline`; the decoders'
accuracies are :func:`llcpkg.metrics.classification_metrics`. The headline table
(:data:`CLASSIFICATION`) has one row per (seed, data set, k) (:func:`llcpkg.seeds.over_seeds`)
and its summary (:data:`CLASSIFICATION_SUMMARY`) the mean and 95% t-interval over seeds. The
claims (:data:`CLAIMS`) are decided on intervals over seeds (:mod:`llcpkg.verdicts`), each gated
on the baseline reaching its adequacy reference (:mod:`llcpkg.references`) where one exists.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np
import pandas as pd
import torch

from ..codebooks import code_length, default_bits
from ..data import DataBundle, labels_of, take
from ..decode import signs_to_bits
from ..metrics import classification_metrics, llc_outputs
from ..models import build_model
from ..pipeline import SPLIT_SEED, load_bundle, run_llc, stage_configs, with_phase2_lr
from ..plots import grouped_bars
from ..profiles import Profile
from ..references import gate_baseline
from ..results import made_for
from ..seeds import SEED, over_seeds, quick_look_choice, resolve_seeds, summary_table
from ..stats import Interval, paired_interval, require_columns, seed_interval
from ..timing import train_step_seconds
from ..train import LOSSES, Trained, iterate_batches
from ..verdicts import (FAILS, INCONCLUSIVE, NOT_RUN, Rule, Tables, Verdict, at_least, at_most, claim_row, collect,
                        combine, pct, reader, within)
from . import decoding_cost as D

__all__ = ["phase2_lr_of", "standard_configs", "ClassificationExperiment", "classification_table", "classification_summary", "step_time_table",
           "validation_bundle", "train_view", "exact_match", "phase2_lr_table", "chosen_phase2_lrs",
           "phase2_length_table", "plateau_index", "chosen_phase2_lengths",
           "describe_phase2_length",
           "plot_classification", "describe_classification", "describe_phase2_lr", "describe_verdicts", "run",
           "readings", "verdicts", "claim_mhd_near_baseline", "claim_ed", "claim_phase2", "CLAIMS",
           "PAPER_MHD_GAP", "CLAIM_MHD", "CLAIM_ED", "CLAIM_PHASE2", "PAPER_ED_GAP", "ED_GAP_BAND", "PAPER_EXACT_MATCH", "PHASE2_TOLERANCE", "CHOICE_SEED", "STOP_RISE", "PHASE2_LENGTH",
           "PHASE2_EPOCHS",
           "VAL_SIZE", "TRAIN_EVAL_IMAGES", "CLASSIFICATION", "CLASSIFICATION_SUMMARY", "PHASE2_LR", "STEP_TIME",
           "SUMMARY_BY", "SUMMARY_VALUES", "BITS_RULE", "PAPER_RATIO", "BACKBONE", "PHASE2_LR_USED", "BASELINE",
           "PHASE1_MIPS", "PHASE1_MHD", "PHASE2_MHD", "PHASE2_MHD_SCORE", "PHASE2_ED", "ED_UNASSIGNED", "EXACT_MATCH",
           "TIE_RATE", "TRAIN_IMAGES", "TRAIN_BASELINE", "TRAIN_PHASE1_MIPS", "TRAIN_PHASE2_MHD",
           "TRAIN_EXACT_MATCH", "CHOSEN", "VAL_MHD"]

# ----------------------------------------------------------------------------- the claims' thresholds
PAPER_MHD_GAP = 2.4  # points: "MHD near baseline" holds when baseline − MHD ≤ this (paper: 77.0 → 74.57)
PAPER_ED_GAP = 74.57 - 68.82  # points: the paper's MHD − ED gap on ImageNet (5.75)
ED_GAP_BAND = (0.0, 2 * PAPER_ED_GAP)  # "ED costs some accuracy, as in the paper": MHD − ED within [0, 2× the paper's]
PAPER_EXACT_MATCH = 0.688  # share of images exactly on their own class code (= ED accuracy) in the paper
PHASE2_TOLERANCE = 1.0  # points: phase-2 MHD "reaches" phase-1 MIPS when MHD − MIPS ≥ −this
# the claims (claims.csv "claim")
CLAIM_MHD = "LLC MHD is close to the real-valued baseline"
CLAIM_ED = "ED is less accurate than MHD, by about the paper's gap, and costs O(1) in L"
CLAIM_PHASE2 = "After phase 2, MHD matches or beats phase-1 MIPS"

# ----------------------------------------------------------------------------- protocol settings
CHOICE_SEED = 0  # the one seed of the phase-2 lr choice (the choice does not depend on the run's seeds)
VAL_SIZE = 5000  # validation images carved from the training split (at most a fifth of it), stratified by class
TRAIN_EVAL_IMAGES = 10_000  # train accuracy on a fixed subset (SPLIT_SEED) of at most this many training images
STOP_RISE = 0.01  # a longer phase 2 is chosen only while it raises the training exact-match rate by more than this

# tables (results/tables/<name>.csv)
CLASSIFICATION, CLASSIFICATION_SUMMARY = "classification", "classification_summary"
PHASE2_LR, PHASE2_LENGTH = "classification_phase2_lr", "classification_phase2_length"
STEP_TIME = "classification_step_time"
# columns of the classification table
BITS_RULE, PAPER_RATIO, BACKBONE, PHASE2_LR_USED = "bits rule", "paper ratio", "backbone", "phase2 lr"
PHASE2_EPOCHS = "phase2 epochs"
BASELINE, PHASE1_MIPS, PHASE1_MHD = "baseline", "phase1 MIPS", "phase1 MHD"
PHASE2_MHD, PHASE2_MHD_SCORE, PHASE2_ED = "phase2 MHD", "phase2 MHD (score ties)", "phase2 ED"
ED_UNASSIGNED, EXACT_MATCH, TIE_RATE = "ED unassigned", "exact match", "MHD tie rate"
TRAIN_IMAGES, TRAIN_BASELINE, TRAIN_PHASE1_MIPS = "train images", "train baseline", "train phase1 MIPS"
TRAIN_PHASE2_MHD, TRAIN_EXACT_MATCH = "train phase2 MHD", "train exact match"
# columns of the phase-2 lr table
CHOSEN, VAL_MHD = "chosen", "val MHD"

SUMMARY_BY = ["dataset", "classes", "bits", BITS_RULE, PHASE2_LR_USED, PHASE2_EPOCHS, TRAIN_IMAGES]
SUMMARY_VALUES = [BASELINE, PHASE1_MIPS, PHASE1_MHD, PHASE2_MHD, PHASE2_MHD_SCORE, PHASE2_ED, ED_UNASSIGNED,
                  EXACT_MATCH, TIE_RATE, "distinct codes", "min code distance", TRAIN_BASELINE, TRAIN_PHASE1_MIPS,
                  TRAIN_PHASE2_MHD, TRAIN_EXACT_MATCH]


@dataclass(frozen=True)
class ClassificationExperiment:
    """Notebook 01's parameters."""

    profile: Profile  # scale of the run
    datasets: tuple[str, ...] = ("fashion_mnist", "omniglot")  # names in llcpkg.data.DATASETS
    bits: int | None = None  # None: k = 2·ceil(log2 L) and ceil(log2 L) (default_bits); an int: that k only
    seeds: tuple[int, ...] = (0,)  # initialisation and data order of the per-seed runs (for_profile: resolve_seeds)
    phase2_lrs: tuple[float, ...] = (0.01, 0.05, 0.1)  # phase 2's candidates on validation (the official 0.01 among them)
    phase2_lengths: tuple[int, ...] = (1,)  # multipliers of phase 2's epochs tried on validation at the chosen lr
    val_size: int = VAL_SIZE  # validation images of the lr choice (at most a fifth of the training split)
    train_eval: int = TRAIN_EVAL_IMAGES  # training images that train accuracy is measured on
    minimum_k_every_seed: bool = False  # False: the minimum k (read by no claim) on the first seed only

    @classmethod
    def for_profile(cls, profile: Profile, seeds=None, **params) -> "ClassificationExperiment":
        """The notebook's parameters (lists become tuples) on ``profile``; ``seeds`` None: the
        profile's (or ``$LLC_SEEDS``), :func:`llcpkg.seeds.resolve_seeds`."""
        params = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
        return cls(profile, seeds=resolve_seeds(profile, seeds), **params)

    def bits_of(self, num_classes: int) -> dict[str, int]:
        """The code lengths of the table for L classes, by rule name."""
        return default_bits(num_classes) if self.bits is None else {"chosen": int(self.bits)}

    def bits_for_seed(self, num_classes: int, seed: int) -> dict[str, int]:
        """The code lengths run at ``seed``: every one on the first seed, else the headline k only
        (the paper ratio, or the chosen k) unless ``minimum_k_every_seed``."""
        bits = self.bits_of(num_classes)
        if seed == self.seeds[0] or self.minimum_k_every_seed:
            return bits
        return {rule: k for rule, k in bits.items() if rule != "minimum"}

    @property
    def profile_phase2_lr(self) -> float:
        """The profile's phase-2 peak learning rate (the default of every other notebook's stage configs)."""
        return self.profile.scaled_lr(self.profile.phase2_lr)


# ----------------------------------------------------------------------------- splits
def validation_bundle(data: DataBundle, val_size: int, split_seed: int = SPLIT_SEED) -> DataBundle:
    """Carve about ``val_size`` images out of the training split as the evaluation split, the
    same share of every class (rounded), drawn with ``split_seed`` (fixed: never the run's seed);
    the test split is left alone. Settings are chosen on it without touching the test set."""
    labels = labels_of(data.train)  # (N,)
    rng = np.random.default_rng(split_seed)
    share, picks = val_size / len(labels), []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        picks.append(rng.permutation(members)[:int(round(share * len(members)))])
    val = np.sort(np.concatenate(picks))
    rest = np.setdiff1d(np.arange(len(labels)), val)
    return DataBundle(f"{data.name}-val{len(val)}", take(data.train, rest), take(data.train, val), data.class_names,
                      data.groups, data.image_shape)


def train_view(data: DataBundle, n: int, split_seed: int = SPLIT_SEED) -> DataBundle:
    """``data`` with its test split replaced by a fixed subset (``split_seed``) of at most ``n``
    training images, to measure train accuracy with the same evaluation code."""
    idx = np.arange(len(data.train))
    if n < len(idx):
        idx = np.sort(np.random.default_rng(split_seed).permutation(len(idx))[:n])
    return DataBundle(f"{data.name}-train{len(idx)}", data.train, take(data.train, idx), data.class_names,
                      data.groups, data.image_shape)


# ----------------------------------------------------------------------------- evaluation
def exact_match(out: dict[str, np.ndarray]) -> float:
    """Share of images whose instance code B(P F(x)) (from ``bit_logits`` (N, k)) equals their own
    class's code (``class_bits`` (L, k), ``labels`` (N,)) in every bit: the paper's 68.8%."""
    return float((signs_to_bits(out["bit_logits"]) == out["class_bits"][out["labels"]]).all(axis=1).mean())


def _llc_metrics(trained: Trained, data: DataBundle, device: str) -> dict[str, float]:
    out = llc_outputs(trained, data, device=device)
    return {**classification_metrics(out), "exact_match": exact_match(out)}


def _phase2_configs(profile: Profile, n_train: int, seed: int, lr: float, length: int = 1) -> dict:
    """:func:`llcpkg.pipeline.stage_configs` with phase 2 at ``lr`` for ``length`` × the profile's epochs."""
    configs = with_phase2_lr(stage_configs(profile, n_train, seed), lr)
    if length == 1:
        return configs
    return {**configs, "phase2": replace(configs["phase2"], epochs=configs["phase2"].epochs * length)}


def _rows_of_seed(data: DataBundle, view: DataBundle, cfg: ClassificationExperiment, seed: int,
                  phase2_lr: float, phase2_length: int) -> list[dict]:
    """The rows of one data set at one seed: every code length of ``bits_for_seed``, phase 2 at
    ``phase2_lr`` for ``phase2_length`` × the profile's epochs."""
    P = cfg.profile
    configs = _phase2_configs(P, len(data.train), seed, phase2_lr, phase2_length)
    rows = []
    for rule, k in cfg.bits_for_seed(data.num_classes, seed).items():
        run = run_llc(data, P, k, seed, configs=configs)
        base = classification_metrics(llc_outputs(run.baseline, data, device=P.device))
        base_train = classification_metrics(llc_outputs(run.baseline, view, device=P.device))
        p1, p1_train = _llc_metrics(run.phase1, data, P.device), _llc_metrics(run.phase1, view, P.device)
        p2, p2_train = _llc_metrics(run.phase2, data, P.device), _llc_metrics(run.phase2, view, P.device)
        rows.append({
            "dataset": data.name, "classes": data.num_classes, "bits": k, BITS_RULE: rule, BACKBONE: P.backbone,
            PHASE2_LR_USED: phase2_lr, PHASE2_EPOCHS: configs["phase2"].epochs, BASELINE: base["accuracy"],
            PHASE1_MIPS: p1["mips"], PHASE1_MHD: p1["mhd"],
            PHASE2_MHD: p2["mhd"], PHASE2_MHD_SCORE: p2["mhd_score"], PHASE2_ED: p2["ed"],
            ED_UNASSIGNED: p2["unassigned"], EXACT_MATCH: p2["exact_match"], TIE_RATE: p2["mhd_tie_rate"],
            "distinct codes": p2["distinct_codes"], "min code distance": p2["min_code_distance"],
            TRAIN_IMAGES: len(view.test), TRAIN_BASELINE: base_train["accuracy"], TRAIN_PHASE1_MIPS: p1_train["mips"],
            TRAIN_PHASE2_MHD: p2_train["mhd"], TRAIN_EXACT_MATCH: p2_train["exact_match"],
        })
    return rows


def classification_table(cfg: ClassificationExperiment, phase2_lrs: dict[str, float],
                         phase2_lengths: dict[str, int] | None = None) -> pd.DataFrame:
    """The Table-1 analogue, per seed: one row per (seed, data set, code length).

    Phase 2 of data set ``d`` runs at ``phase2_lrs[d]`` (:func:`chosen_phase2_lrs`) for
    ``phase2_lengths[d]`` × the profile's epochs (:func:`chosen_phase2_lengths`; None: ×1). Columns:
    test accuracies of the real-valued baseline, phase-1 MIPS, phase-1 MHD (instance codes
    straight after phase 1), phase-2 MHD (ties → lowest index, the official rule), phase-2 MHD
    with ties broken by the bits' scores, phase-2 ED; the share of test images ED leaves
    unassigned, the exact-match rate (share on their own class code), the MHD tie rate, the
    class codes' distinct count and minimum pairwise Hamming distance; and on ``train images``
    training images (:func:`train_view`) the baseline's, phase-1 MIPS's and phase-2 MHD's
    accuracy and phase 2's training exact-match rate. The minimum k runs on the first seed only
    (``cfg.minimum_k_every_seed``).
    """
    bundles = {name: load_bundle(name, cfg.profile) for name in cfg.datasets}
    views = {name: train_view(data, cfg.train_eval) for name, data in bundles.items()}

    def one_seed(seed: int) -> pd.DataFrame:
        return pd.DataFrame([row for name, data in bundles.items()
                             for row in _rows_of_seed(data, views[name], cfg, seed, phase2_lrs[name],
                                                      (phase2_lengths or {}).get(name, 1))])

    return over_seeds(one_seed, cfg.seeds)


def classification_summary(per_seed: pd.DataFrame) -> pd.DataFrame:
    """Mean, std and 95% t-interval over seeds of every value column, per (data set, k)."""
    return summary_table(per_seed, SUMMARY_BY, SUMMARY_VALUES, CLASSIFICATION)


def _validation(cfg: ClassificationExperiment, name: str) -> tuple[DataBundle, DataBundle, int]:
    """Data set ``name``'s validation bundle, its train view and the headline k."""
    data = load_bundle(name, cfg.profile)
    val = validation_bundle(data, min(cfg.val_size, len(data.train) // 5))
    return val, train_view(val, cfg.train_eval), code_length(data.num_classes, cfg.bits)


def _validation_row(cfg: ClassificationExperiment, name: str, val: DataBundle, view: DataBundle, bits: int,
                    lr: float, length: int = 1) -> dict:
    """Baseline → phase 1 → phase 2 (at ``lr``, ``length`` × its epochs) on ``val``'s training part at
    :data:`CHOICE_SEED`, scored on its validation part and on ``view`` (training images)."""
    P = cfg.profile
    configs = _phase2_configs(P, len(val.train), CHOICE_SEED, lr, length)
    run = run_llc(val, P, bits, CHOICE_SEED, configs=configs)
    m, m_train = _llc_metrics(run.phase2, val, P.device), _llc_metrics(run.phase2, view, P.device)
    base = classification_metrics(llc_outputs(run.baseline, val, device=P.device))["accuracy"]
    return {"dataset": name, "bits": bits, "phase2 lr": lr,
            PHASE2_EPOCHS: configs["phase2"].epochs, "val images": len(val.test), "val baseline": base,
            VAL_MHD: m["mhd"], "val MHD (score ties)": m["mhd_score"], "val ED": m["ed"],
            "val exact match": m["exact_match"], "train exact match": m_train["exact_match"]}


def _recorded_for(cfg: ClassificationExperiment, column: str, candidates: dict[str, tuple[float, ...]],
                  at_lr: dict[str, float] | None = None) -> Callable[[pd.DataFrame], pd.DataFrame | None]:
    """A ``fit`` for :func:`llcpkg.seeds.quick_look_choice`: a recorded lr or length table restricted to
    ``cfg.datasets`` if it was made for exactly ``candidates[name]`` in ``column`` (one chosen row
    each, :func:`llcpkg.results.made_for`) on the same validation split size and k (and, for the
    length table, at the lr ``at_lr[name]``); else None."""
    def fit(table: pd.DataFrame) -> pd.DataFrame | None:
        if not made_for(table, ["dataset"], column, {(n,): c for n, c in candidates.items()}):
            return None
        for name in cfg.datasets:
            rows = table[table["dataset"] == name]
            val, _, bits = _validation(cfg, name)
            if set(rows["bits"]) != {bits} or set(rows["val images"]) != {len(val.test)}:
                return None
            if at_lr is not None and not np.allclose(rows["phase2 lr"].to_numpy(float), at_lr[name]):
                return None
        return table[table["dataset"].isin(cfg.datasets)].reset_index(drop=True)
    return fit


def phase2_lr_table(cfg: ClassificationExperiment) -> pd.DataFrame:
    """Phase 2's learning rate chosen per data set on a validation split (:func:`validation_bundle`,
    fixed split seed), on one seed (:data:`CHOICE_SEED`): baseline and phase 1 are trained on the
    rest of the training split, then one phase 2 per candidate of ``cfg.phase2_lrs`` (each scaled
    by the profile's lr scaling). Columns: validation MHD, MHD with score ties, ED and exact-match
    rate, the training exact-match rate (on at most ``cfg.train_eval`` of the training images),
    the validation baseline, and ``chosen``: the highest validation MHD (the first candidate in
    order on a tie). One row per (data set, lr); the test split is never read. The quick look reads
    the full run's table instead when it was made for the same candidates
    (:func:`llcpkg.seeds.quick_look_choice`)."""
    P, rows = cfg.profile, []
    candidates = {n: tuple(P.scaled_lr(lr) for lr in cfg.phase2_lrs) for n in cfg.datasets}
    reused = quick_look_choice(P, cfg.seeds, PHASE2_LR, _recorded_for(cfg, "phase2 lr", candidates))
    if reused is not None:
        return reused
    for name in cfg.datasets:
        val, view, bits = _validation(cfg, name)
        for lr in cfg.phase2_lrs:
            rows.append(_validation_row(cfg, name, val, view, bits, P.scaled_lr(lr)))
    df = pd.DataFrame(rows)
    best = df.groupby("dataset", sort=False)[VAL_MHD].idxmax()  # first maximum in candidate order
    df[CHOSEN] = df.index.isin(best.to_numpy())
    return df


def chosen_phase2_lrs(lr_table: pd.DataFrame) -> dict[str, float]:
    """The chosen phase-2 learning rate of every data set of a :func:`phase2_lr_table`."""
    require_columns(lr_table, ["dataset", "phase2 lr", CHOSEN], PHASE2_LR)
    chosen = lr_table[lr_table[CHOSEN]]
    if chosen["dataset"].duplicated().any() or set(chosen["dataset"]) != set(lr_table["dataset"]):
        raise ValueError(f"table {PHASE2_LR!r} must mark exactly one chosen lr per data set")
    return dict(zip(chosen["dataset"], chosen["phase2 lr"].astype(float)))


@functools.lru_cache(maxsize=None)
def phase2_lr_of(profile: Profile, dataset: str) -> float:
    """The phase-2 learning rate chosen for ``dataset`` on its validation split (:func:`phase2_lr_table`
    with the default candidates; its stages are cached, so after notebook 01 this only evaluates).
    The one home of that choice: every experiment that reuses notebook 01's runs reads it here."""
    cfg = ClassificationExperiment.for_profile(profile, datasets=[dataset])
    return chosen_phase2_lrs(phase2_lr_table(cfg))[dataset]


def standard_configs(profile: Profile, data: DataBundle, seed: int) -> dict:
    """Notebook 01's stage configs for ``data`` at ``seed``: :func:`llcpkg.pipeline.stage_configs` with
    phase 2 at :func:`phase2_lr_of` (the same cache keys as notebook 01's headline runs)."""
    return _phase2_configs(profile, len(data.train), seed, phase2_lr_of(profile, data.name))


def phase2_length_table(cfg: ClassificationExperiment, phase2_lrs: dict[str, float]) -> pd.DataFrame:
    """Phase 2's length chosen per data set on the same validation split and seed as the lr, at
    the chosen lr: one phase 2 per multiplier of ``cfg.phase2_lengths`` of the profile's phase-2
    epochs (×1 is the lr table's own stage, cached). ``chosen``: in increasing length, the first
    after which the next one raises the training exact-match rate by less than :data:`STOP_RISE`
    (phase 2 "until the training exact-match rate stops rising"), else the longest. The quick look
    reads the full run's table instead when it was made at the same lrs and multipliers."""
    fit = _recorded_for(cfg, "length", {n: tuple(cfg.phase2_lengths) for n in cfg.datasets}, phase2_lrs)
    reused = quick_look_choice(cfg.profile, cfg.seeds, PHASE2_LENGTH, fit)
    if reused is not None:
        return reused
    rows = []
    for name in cfg.datasets:
        val, view, bits = _validation(cfg, name)
        picked = [{**_validation_row(cfg, name, val, view, bits, phase2_lrs[name], m), "length": m}
                  for m in sorted(cfg.phase2_lengths)]
        stop = plateau_index([r["train exact match"] for r in picked])
        rows += [{**r, CHOSEN: i == stop} for i, r in enumerate(picked)]
    return pd.DataFrame(rows)


def plateau_index(rates: list[float], min_rise: float = STOP_RISE) -> int:
    """Index of the first of ``rates`` (in increasing training length) after which the next rises
    by less than ``min_rise``; the last index if every step rises by at least that."""
    return next((i for i, (a, b) in enumerate(zip(rates, rates[1:])) if b - a < min_rise), len(rates) - 1)


def chosen_phase2_lengths(length_table: pd.DataFrame) -> dict[str, int]:
    """The chosen multiplier of phase 2's epochs of every data set of a :func:`phase2_length_table`
    (a multiplier, not epochs: the per-seed runs scale their own epochs, which follow their
    training split's size)."""
    require_columns(length_table, ["dataset", "length", CHOSEN], PHASE2_LENGTH)
    chosen = length_table[length_table[CHOSEN]]
    if chosen["dataset"].duplicated().any() or set(chosen["dataset"]) != set(length_table["dataset"]):
        raise ValueError(f"table {PHASE2_LENGTH!r} must mark exactly one chosen length per data set")
    return dict(zip(chosen["dataset"], chosen["length"].astype(int)))


def step_time_table(cfg: ClassificationExperiment, repeats: int = 10) -> pd.DataFrame:
    """Training-step time of the baseline, phase 1 and phase 2 on one batch of the first data
    set (same process, same batch, untrained models of the profile's architecture), and each
    relative to the baseline's. Diagnostic: not seeded, one measurement."""
    P = cfg.profile
    data = load_bundle(cfg.datasets[0], P)
    bits = code_length(data.num_classes, cfg.bits)
    train_cfg = stage_configs(P, len(data.train))["baseline"]
    x, y = next(iterate_batches(data.train, P.batch_size, shuffle=True))
    fmt = torch.channels_last if P.channels_last else torch.contiguous_format
    x = x.contiguous(memory_format=fmt)
    rows = []
    for stage, head, loss in [("baseline", "linear", "ce"), ("phase1", "llc", "ce"), ("phase2", "llc", "bits")]:
        model = build_model(P.model_config(head, bits), data.image_shape[0], data.num_classes).to(memory_format=fmt)
        rows.append({"dataset": data.name, "stage": stage, "bits": bits if head == "llc" else None, "batch": len(y),
                     "seconds per step": train_step_seconds(model, LOSSES[loss], train_cfg, x, y, repeats)})
    df = pd.DataFrame(rows)
    df["relative to baseline"] = df["seconds per step"] / df["seconds per step"].iloc[0]
    return df


# ----------------------------------------------------------------------------- figure and readings
def plot_classification(summary: pd.DataFrame, profile_name: str):
    """Test accuracy of each decoder against the real-valued baseline, one group per (data set, k):
    bars at the mean over seeds with 95% intervals (a summary table, :func:`classification_summary`)."""
    n = summary["seeds"].astype(int)
    t = summary.assign(setting=summary["dataset"] + "\nk=" + summary["bits"].astype(str) + " ("
                       + n.astype(str) + np.where(n == 1, " seed)", " seeds)"))
    return grouped_bars(t, "setting", [BASELINE, PHASE1_MIPS, PHASE2_MHD, PHASE2_MHD_SCORE, PHASE2_ED],
                        ylabel="test accuracy", title=f"Classification with k-bit class codes ({profile_name} profile)",
                        ylim=(0, 1), summary=True)


def _iv(r: pd.Series, col: str) -> str:
    """``"91.1% [90.5, 91.7]"`` from a summary row's ``<col> mean|lo|hi``."""
    return f"{100 * r[f'{col} mean']:.1f}% [{100 * r[f'{col} lo']:.1f}, {100 * r[f'{col} hi']:.1f}]"


def describe_classification(summary: pd.DataFrame) -> str:
    """Plain-language reading of a :func:`classification_summary`: test and train accuracy of each
    stage (mean [95% interval] over seeds), phase 2's exact-match rates against the paper's."""
    require_columns(summary, [*SUMMARY_BY, "seeds", *(f"{v} {s}" for v in SUMMARY_VALUES for s in ("mean", "lo", "hi"))],
                    CLASSIFICATION_SUMMARY)
    lines = []
    for _, r in summary.iterrows():
        lines.append(
            f"{r['dataset']} (L={r['classes']}, k={r['bits']}, {r[BITS_RULE]}, {r['seeds']} seed(s), phase-2 lr "
            f"{r[PHASE2_LR_USED]:g}): test: baseline {_iv(r, BASELINE)}, phase-1 MIPS {_iv(r, PHASE1_MIPS)}, "
            f"phase-2 MHD {_iv(r, PHASE2_MHD)} (score ties {_iv(r, PHASE2_MHD_SCORE)}), ED {_iv(r, PHASE2_ED)} "
            f"with {_iv(r, ED_UNASSIGNED)} unassigned; exact match {_iv(r, EXACT_MATCH)} (paper "
            f"{pct(PAPER_EXACT_MATCH)}). Train ({r[TRAIN_IMAGES]} images): baseline {_iv(r, TRAIN_BASELINE)}, "
            f"phase-1 MIPS {_iv(r, TRAIN_PHASE1_MIPS)}, phase-2 MHD "
            f"{_iv(r, TRAIN_PHASE2_MHD)}, phase-2 exact match {_iv(r, TRAIN_EXACT_MATCH)}."
        )
    return "\n".join(lines)


def describe_phase2_lr(lr_table: pd.DataFrame, profile_lr: float) -> str:
    """Which candidate the validation split picks per data set (the lr every seed's phase 2 then
    uses), against the profile's default."""
    lines = []
    for name, lr in chosen_phase2_lrs(lr_table).items():
        g = lr_table[lr_table["dataset"] == name]
        vals = ", ".join(f"{r['phase2 lr']:g}: {pct(r[VAL_MHD])}" for _, r in g.iterrows())
        lines.append(f"{name}: validation MHD by phase-2 lr {vals} → phase 2 runs at {lr:g} on every seed "
                     f"(profile default {profile_lr:g}).")
    return "\n".join(lines)


def describe_phase2_length(length_table: pd.DataFrame) -> str:
    """Which phase-2 length the validation split picks per data set (used by every seed's phase 2)."""
    lines = []
    for name, m in chosen_phase2_lengths(length_table).items():
        g = length_table[length_table["dataset"] == name]
        vals = ", ".join(f"×{r['length']} ({r[PHASE2_EPOCHS]} epochs): {pct(r['train exact match'])}"
                         for _, r in g.iterrows())
        lines.append(f"{name}: training exact-match rate by phase-2 length {vals} → phase 2 runs ×{m} on every seed "
                     f"(longer only while the rate rises by ≥ {100 * STOP_RISE:.0f} point).")
    return "\n".join(lines)


def describe_verdicts(t: Tables) -> str:
    """One line per claims row of :func:`verdicts` (the same rules as the scoreboard)."""
    return "\n".join(f"- {r['claim']} ({r['dataset']}): {r['verdict']}. {r['ours']}" for r in verdicts(t))


def run(cfg: ClassificationExperiment) -> dict[str, pd.DataFrame]:
    """Every table of the notebook, by file name (``results/tables/<name>.csv``): the lr choice,
    then the length choice at that lr, both of which the per-seed table then uses."""
    lr_table = phase2_lr_table(cfg)
    lrs = chosen_phase2_lrs(lr_table)
    length_table = phase2_length_table(cfg, lrs)
    per_seed = classification_table(cfg, lrs, chosen_phase2_lengths(length_table))
    return {PHASE2_LR: lr_table, PHASE2_LENGTH: length_table, CLASSIFICATION: per_seed,
            CLASSIFICATION_SUMMARY: classification_summary(per_seed), STEP_TIME: step_time_table(cfg)}


def readings(tables: dict[str, pd.DataFrame], cfg: ClassificationExperiment) -> str:
    """The notebook's readings, from the tables of :func:`run` (the ED claim's cost part reads
    notebook 07's slopes table, absent here: "not run")."""
    return "\n".join([describe_phase2_lr(tables[PHASE2_LR], cfg.profile_phase2_lr),
                      describe_phase2_length(tables[PHASE2_LENGTH]),
                      describe_classification(tables[CLASSIFICATION_SUMMARY]),
                      describe_verdicts(reader(tables, cfg.profile.results_dir))])


# ----------------------------------------------------------------------------- claims
_HEADLINE_COLUMNS = [SEED, "dataset", "bits", BITS_RULE, BACKBONE, BASELINE, PHASE1_MIPS, PHASE2_MHD, PHASE2_ED,
                     ED_UNASSIGNED, EXACT_MATCH, TRAIN_BASELINE, TRAIN_PHASE2_MHD, TRAIN_EXACT_MATCH]


def _headline(t: Tables) -> dict[str, pd.DataFrame]:
    """The paper-ratio rows of the classification table, per data set, indexed by seed."""
    df = t(CLASSIFICATION)
    require_columns(df, _HEADLINE_COLUMNS, CLASSIFICATION)
    rows = df[df[BITS_RULE] == PAPER_RATIO]
    return {name: g.set_index(SEED) for name, g in rows.groupby("dataset", sort=False)}


def _points(a: pd.Series, b: pd.Series) -> Interval:
    """Paired interval over seeds of ``a − b`` in accuracy points (shares × 100)."""
    return paired_interval(100 * a, 100 * b)


def _share(x: pd.Series) -> Interval:
    """Interval over seeds of a share, in percent."""
    return seed_interval(100 * x.to_numpy())


def _gated(v: Verdict, g: pd.DataFrame, dataset: str, t: Tables) -> Verdict:
    """``v`` gated on the baseline over seeds by the reference ``<backbone>/<dataset>``
    (:func:`llcpkg.references.gate_baseline`: the rule says so where none exists)."""
    return gate_baseline(v, g[BASELINE], g[BACKBONE].iloc[0], dataset, t)


def _k(g: pd.DataFrame) -> str:
    return f"k={int(g['bits'].iloc[0])}, {len(g)} seed(s)"


def claim_mhd_near_baseline(t: Tables) -> list[dict]:
    """LLC MHD near the real-valued baseline, at the paper-ratio k: holds if the paired 95%
    interval over seeds of (baseline − phase-2 MHD) lies at or below :data:`PAPER_MHD_GAP`
    points (the paper's own gap, 77.0 → 74.57), does not hold if wholly above, else
    inconclusive; gated on the baseline's adequacy reference."""
    rows = []
    for name, g in _headline(t).items():
        gap = _points(g[BASELINE], g[PHASE2_MHD])
        v = at_most(gap, PAPER_MHD_GAP, "baseline − phase-2 MHD", " points", ".2f")
        rows.append(claim_row(
            CLAIM_MHD, "ImageNet, k=20: 77.0% → 74.57% (−2.4 points)", name,
            f"{_k(g)}: baseline {pct(g[BASELINE].mean())} → MHD {pct(g[PHASE2_MHD].mean())}, gap {gap:.2f} points; "
            f"train: baseline {pct(g[TRAIN_BASELINE].mean())}, MHD {pct(g[TRAIN_PHASE2_MHD].mean())}",
            _gated(v, g, name, t)))
    return rows


def _cost_part(t: Tables) -> Verdict:
    """Notebook 07's "ED cost flat in L" (:func:`llcpkg.experiments.decoding_cost.ed_flat_verdict`),
    ``not run`` when its slopes table is missing."""
    try:
        return D.ed_flat_verdict(t(D.SLOPES))
    except FileNotFoundError:
        return Verdict(NOT_RUN, f"the table {D.SLOPES!r} (notebook 07) was not produced")


def claim_ed(t: Tables) -> list[dict]:
    """ED costs some accuracy against MHD, about as in the paper, and O(1) in L; three parts,
    :func:`llcpkg.verdicts.combine` (``partly`` names the failing part):

    - *ED–MHD gap*: the paired interval over seeds of (phase-2 MHD − ED) in points lies within
      :data:`ED_GAP_BAND` ([0, 2× the paper's 5.75]) (``within``);
    - *exact-match rate*: the interval over seeds of the share of test images exactly on their
      class code (ED's accuracy) is at least the paper's :data:`PAPER_EXACT_MATCH` (``at_least``);
    - *cost flat in L*: the log-log slope test of notebook 07 over repeated timing runs
      (:func:`llcpkg.experiments.decoding_cost.ed_flat_verdict`), ``not run`` without it.

    The two accuracy parts are gated on the baseline's adequacy reference.
    """
    cost = _cost_part(t)
    rows = []
    for name, g in _headline(t).items():
        gap = _points(g[PHASE2_MHD], g[PHASE2_ED])
        exact = _share(g[EXACT_MATCH])
        parts = {"ED–MHD gap": _gated(within(gap, *ED_GAP_BAND, "phase-2 MHD − ED", " points", ".2f"), g, name, t),
                 "exact-match rate": _gated(at_least(exact, 100 * PAPER_EXACT_MATCH, "the share of test images on "
                                                     "their class code", "%", ".1f"), g, name, t),
                 "cost flat in L": cost}
        rows.append(claim_row(
            CLAIM_ED,
            f"ImageNet: MHD 74.57% → ED 68.82% (gap {PAPER_ED_GAP:.2f} points; {pct(PAPER_EXACT_MATCH)} exactly on "
            f"their class code); cost not measured", name,
            f"{_k(g)}: MHD {pct(g[PHASE2_MHD].mean())} → ED {pct(g[PHASE2_ED].mean())}, gap {gap:.2f} points; "
            f"exact match {exact.mean:.1f}% [{exact.lo:.1f}, {exact.hi:.1f}] ({pct(g[ED_UNASSIGNED].mean())} unassigned; train "
            f"{pct(g[TRAIN_EXACT_MATCH].mean())}); ED time: {cost.interval or 'not measured'}",
            replace(combine(parts), seeds=len(g))))  # seeds: of the accuracy parts (the cost part has runs)
    return rows


def claim_phase2(t: Tables) -> list[dict]:
    """Phase 2 (MHD on instance codes) reaches phase-1 MIPS, at the paper-ratio k: holds if the
    paired 95% interval over seeds of (phase-2 MHD − phase-1 MIPS) lies at or above
    −:data:`PHASE2_TOLERANCE` points, does not hold if wholly below, else inconclusive; gated on
    the baseline's adequacy reference."""
    rows = []
    for name, g in _headline(t).items():
        diff = _points(g[PHASE2_MHD], g[PHASE1_MIPS])
        v = at_least(diff, -PHASE2_TOLERANCE, "phase-2 MHD − phase-1 MIPS", " points", ".2f")
        rows.append(claim_row(
            CLAIM_PHASE2,
            "ImageNet: MIPS 72.5% (review) / 75.5% (README) → MHD 74.57%", name,
            f"{_k(g)}: MIPS {pct(g[PHASE1_MIPS].mean())} → phase-2 MHD {pct(g[PHASE2_MHD].mean())}, "
            f"difference {diff:.2f} points", _gated(v, g, name, t)))
    return rows


CLAIMS: dict[str, Rule] = {"LLC: MHD near baseline": claim_mhd_near_baseline,
                           "LLC: ED gap and O(1) cost": claim_ed,
                           "LLC: phase 2 reaches MIPS": claim_phase2}


def verdicts(tables: Tables) -> list[dict]:
    """The claims rows of notebook 01's tables (a missing table: one ``not run`` row per claim)."""
    return collect(CLAIMS, tables)
