"""Notebook 02: ablations of LLC (Kusupati et al., NeurIPS 2021, §4 and the reviewers' open questions):
codebook baselines, code length, phase 2 on/off, warm-started codebooks, MHD ties and
decoders between ED and MHD (Hamming balls, and grouped bits: k/2 four-class problems).
Each evaluator returns a pandas DataFrame; notebooks/02_ablations.ipynb writes them to
``results/tables/ablations_*``.

Seeds (issue #16): the tables the claims read (codebooks, length, phase 2, ties) are per-seed
(:func:`llcpkg.seeds.over_seeds`, one row per seed and setting) with a ``<name>_summary``
beside them; the ball/grouped table is a diagnostic on the first seed. A seed changes the
baseline's initialisation and data order (and so its backbone), the fits' initialisation and
the random codebooks; the data split is fixed (:data:`llcpkg.pipeline.SPLIT_SEED`).

Two protocols, both on the cached baseline of the standard pipeline (:func:`llcpkg.pipeline.run_llc`):

* **Frozen-backbone protocol** (codebooks, length sweep; issue #17 item 3): the seed's
  baseline backbone is frozen and its features computed once per seed (:func:`feature_bundle`).
  *Every* codebook — random, SVD, CCA, the error-correcting one (Hadamard where it exists) and
  LLC's learnt one — goes through the same phase 1 (projector P, and the codebook C only when it
  is learnt) then phase 2 (P alone, k bit problems), from the *same* projector initialisation
  (:func:`feature_model`: P is drawn from the seed before and independently of the codebook; no
  least-squares start for anyone). The codebook table is the length sweep's rows at the paper's
  k, computed once.
* **Retrained-backbone protocol** (phase 2 on/off, warm starts, grouped phase 2): phase 1
  warm-starts the backbone from the baseline and trains backbone, P and C; phase 2 trains
  backbone and P. Every start shares the projector's default initialisation and the codebook's
  magnitudes (:func:`warm_codebook`: a warm start keeps the random start's |C| and takes the
  SVD/CCA signs), so only the signs of the initial codes differ.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field, replace

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import TensorDataset

from .. import decode
from ..cache import stage_key
from ..codebooks import build_codebook, codebook_stats, default_bits, hadamard_exists, to_bits
from ..data import DataBundle, check_labels
from ..grouped import GroupedHead, grouped_curve, grouped_loss
from ..metrics import classification_metrics, llc_outputs
from ..models import DEFAULT_LOGIT_SCALE, Classifier, build_head, build_model
from ..pipeline import LLCRun, load_bundle, run_llc, stage_configs
from ..plots import grouped_bars
from ..profiles import Profile, scaled_epochs, stage_epochs
from ..references import gate_baseline
from ..seeds import SEED, over_seeds, resolve_seeds, summary_table
from ..stats import paired_interval, require_columns, seed_interval
from ..train import (LOSSES, TrainConfig, Trained, data_id, fit, predict, run_stage, set_seed, train_phase1,
                     train_phase2)
from ..verdicts import Rule, Tables, Verdict, at_least, at_most, claim_row, collect, combine, pct, reader
from .classification import standard_configs

__all__ = ["AblationsExperiment", "FeatureConfig", "feature_config", "feature_bundle", "feature_model",
           "fit_codes_on_features", "decoder_metrics", "sweep_bits", "ecc_name", "frozen_rows", "length_sweep_table",
           "initial_codebook", "warm_codebook", "warm_run", "phase2_ablation_table", "grouped_phase2",
           "TIE_COLUMNS", "tie_table", "ball_table", "grouped_ball_table", "plot_length_sweep", "plot_ball", "plot_ties",
           "plot_codebooks", "plot_phase2", "describe_codebooks", "describe_sweep", "describe_phase2", "describe_ties",
           "describe_ball", "CODEBOOK_TABLE", "LENGTH_TABLE", "PHASE2_TABLE", "TIE_TABLE", "BALL_TABLE",
           "CODEBOOK_SUMMARY", "LENGTH_SUMMARY", "PHASE2_SUMMARY", "TIE_SUMMARY", "PROTOCOL", "CODEBOOK", "MHD",
           "BASELINE", "FROZEN", "FULL", "LEARNT", "BITS_RULE", "PAPER_K", "HEAD", "CODE_TOLERANCE", "TIE_RATE_MAX",
           "ARCHITECTURE", "CLAIMS", "verdicts", "AblationsSetup", "SeedSetup", "setup", "phase2_lr",
           "codebooks_table", "seed_lengths", "sweep_table", "phase2_table", "ties_table", "balls_table", "summaries", "run",
           "claim_learnt_codebook", "claim_warm_starts", "claim_longer_codes", "claim_ties", "CLAIM_TIES"]

# tables (results/tables/<name>.csv): per seed (a ``seed`` column first) with their summaries, and the
# ball table (first seed only, a diagnostic)
CODEBOOK_TABLE, LENGTH_TABLE, PHASE2_TABLE = "ablations_codebooks", "ablations_length", "ablations_phase2"
TIE_TABLE, BALL_TABLE = "ablations_ties", "ablations_ball"
CODEBOOK_SUMMARY = "ablations_codebooks_summary"
LENGTH_SUMMARY = "ablations_length_summary"
PHASE2_SUMMARY = "ablations_phase2_summary"
TIE_SUMMARY = "ablations_ties_summary"
# columns and values the claims read
PROTOCOL, CODEBOOK, MHD, BASELINE, BITS_RULE, HEAD = "protocol", "codebook", "MHD", "baseline", "bits rule", "phase 2 head"
FROZEN, FULL, LEARNT = "frozen baseline backbone", "full LLC (phase 1 → phase 2)", "llc"
PAPER_K = "paper ratio"  # the default_bits rule of the paper's code length, 2·ceil(log2 L)
BINARY_HEAD, GROUPED_HEAD = "k binary problems", "k/2 four-class groups"

# claim thresholds (the one home of each; the readings use the same constants)
CODE_TOLERANCE = 0.024  # "as good as": the paper's own gap of LLC's MHD to the baseline, 77.0% − 74.57% (ImageNet, k = 20)
TIE_RATE_MAX = 0.10  # "ties are not that frequent": at most one test query in ten has several nearest class codes
CLAIM_TIES = "Ties are not that frequent"  # the claim's text (claims.csv "claim")
ARCHITECTURE = "smallcnn"  # the backbone whose adequacy reference gates the claims (llcpkg.references)


# ----------------------------------------------------------------------------- frozen-backbone protocol
@dataclass(frozen=True)
class FeatureConfig:
    """Training on frozen backbone features (projector and codebook only); built from a
    profile by :func:`feature_config`, which is where its epochs and learning rates come from."""

    phase1_epochs: int  # phase-1 epochs on a set of >= the profile's epoch_reference images (smaller sets get more)
    phase2_epochs: int  # phase-2 epochs, same scaling (0: phase 1 only)
    phase1_lr: float  # peak LR of phase 1 (cosine): the profile's lr
    phase2_lr: float  # peak LR of phase 2: the profile's phase2_lr (only the linear projector learns here)
    batch_size: int = 512  # examples per step (cheap linear steps: fewer, larger batches keep a sweep to seconds)
    seed: int = 0  # initialisation and shuffling
    device: str = "cpu"  # torch device of the fits
    logit_scale: str = DEFAULT_LOGIT_SCALE  # the LLC head's logit scale (the profile's)
    epoch_reference: int = 60_000  # scaled_epochs' reference set size (the profile's)
    epoch_cap: int = 12  # scaled_epochs' cap (the profile's)


def feature_config(profile: Profile, seed: int = 0) -> FeatureConfig:
    """The frozen-backbone config of a profile: the ``features`` epoch rule for both phases
    (:func:`llcpkg.profiles.stage_epochs`; small sets get more, as in ``stage_configs``), the
    profile's learning rates, logit scale and device: seconds per fit on 64-d features."""
    epochs = stage_epochs(profile, "features")
    return FeatureConfig(phase1_epochs=epochs, phase2_epochs=epochs, phase1_lr=profile.lr, phase2_lr=profile.phase2_lr,
                         seed=seed, device=profile.device, logit_scale=profile.logit_scale,
                         epoch_reference=profile.epoch_reference, epoch_cap=profile.epoch_cap)


def feature_bundle(trained: Trained, data: DataBundle, device: str = "cpu") -> DataBundle:
    """The frozen backbone's features of both splits as an in-memory bundle: x (N, d), same labels."""
    def feats(split: str) -> TensorDataset:
        out = predict(trained.model, getattr(data, split), device=device)
        return TensorDataset(torch.from_numpy(out["features"]), torch.from_numpy(out["labels"]))

    train = feats("train")
    return DataBundle(f"{data.name}-features", train, feats("test"), data.class_names, data.groups,
                      (train.tensors[0].shape[1],))


def feature_model(dim: int, num_classes: int, bits: int, codebook, logit_scale: str, seed: int) -> Classifier:
    """An LLC head on precomputed d-dim features (identity backbone). The projector P (d → k) is
    drawn from ``seed`` first, so every codebook of a seed and length starts from the same P;
    ``codebook`` (L, k), or None for N(0, 2/k) (drawn after P)."""
    set_seed(seed)
    cb = None if codebook is None else torch.as_tensor(np.asarray(codebook), dtype=torch.float32)
    return Classifier(nn.Identity(), build_head("llc", dim, num_classes, bits, codebook=cb, logit_scale=logit_scale))


def fit_codes_on_features(feats: DataBundle, bits: int, cfg: FeatureConfig, codebook=None,
                          learn_codebook: bool = True) -> tuple[Classifier, Classifier]:
    """Phase 1 then phase 2 of LLC on frozen features; returns (phase-1 model, phase-2 model).

    ``codebook`` (L, k): the initial (``learn_codebook``) or fixed class codes; N(0, 2/k) if
    None. Phase 1: CE on B(C)·P F (label smoothing 0.1); phase 2: BCE of the k bits with B(C)
    frozen. P starts from :func:`feature_model`'s seeded draw whatever the codebook. No progress bars.
    """
    n = len(feats.train)
    base = TrainConfig(batch_size=cfg.batch_size, seed=cfg.seed, device=cfg.device)
    c1 = replace(base, epochs=scaled_epochs(cfg.phase1_epochs, n, cfg.epoch_reference, cfg.epoch_cap), lr=cfg.phase1_lr)
    c2 = replace(base, epochs=scaled_epochs(cfg.phase2_epochs, n, cfg.epoch_reference, cfg.epoch_cap), lr=cfg.phase2_lr,
                 label_smoothing=0.0) if cfg.phase2_epochs else None  # 0 epochs: phase 1 only
    p1 = feature_model(feats.image_shape[0], feats.num_classes, bits, codebook, cfg.logit_scale, cfg.seed)
    p1.head.codebook.requires_grad_(learn_codebook)
    fit(p1, feats.train, LOSSES["ce"], c1, progress=False)
    p2 = copy.deepcopy(p1)
    p2.head.codebook.requires_grad_(False)
    if c2 is not None:
        fit(p2, feats.train, LOSSES["bits"], c2, progress=False)
    return p1, p2


# ----------------------------------------------------------------------------- metrics
def decoder_metrics(out: dict[str, np.ndarray], seed: int = 0) -> dict[str, float]:
    """:func:`llcpkg.metrics.classification_metrics` of an LLC model's outputs, plus
    ``mhd_random`` (ties broken uniformly at random, seeded), ``tie_oracle`` (share of queries
    whose true class is among the nearest class codes: the best any tie rule can do),
    ``mean_tied`` (mean number of nearest classes over tied queries) and the codebook's
    ``mean_code_distance`` and ``distinct_codes``."""
    m = classification_metrics(out)
    codes, z, y = out["class_bits"], out["bit_logits"], out["labels"]
    q = decode.signs_to_bits(z)
    m["mhd_random"] = float((decode.mhd_decode(q, codes, tie="random", seed=seed).pred == y).mean())
    d = decode.hamming_distances(q, codes)
    nearest = d == d.min(axis=1, keepdims=True)
    m["tie_oracle"] = float(nearest[np.arange(len(y)), y].mean())
    n_tied = nearest.sum(axis=1)
    m["mean_tied"] = float(n_tied[n_tied > 1].mean()) if (n_tied > 1).any() else 1.0
    m["mean_code_distance"] = codebook_stats(codes)["mean distance"]
    return m


def _feature_outputs(model: Classifier, ds: TensorDataset, device: str = "cpu") -> dict[str, np.ndarray]:
    out = predict(model, ds, device=device)
    out["class_bits"] = to_bits(model.head.class_codes().cpu().numpy())
    return out


def _row(m: dict[str, float]) -> dict[str, float]:
    """The decoder columns shared by the tables."""
    return {MHD: m["mhd"], "MHD (score ties)": m["mhd_score"], "ED": m["ed"], "unassigned": m["unassigned"],
            "MHD tie rate": m["mhd_tie_rate"], "distinct codes": m["distinct_codes"],
            "min code distance": m["min_code_distance"], "mean code distance": m["mean_code_distance"],
            "MHD (random ties)": m["mhd_random"], "tie oracle": m["tie_oracle"], "mean tied classes": m["mean_tied"]}


def sweep_bits(num_classes: int, top: int = 64, count: int = 5) -> list[int]:
    """Code lengths from ceil(log2 L) to ``top``: doublings of the minimum, ``top``, and the
    midpoints 1.5 × 2^j between them until there are at least ``count`` values."""
    lo = max(1, math.ceil(math.log2(num_classes)))
    ks = {lo, top} | {lo * 2 ** j for j in range(8) if lo * 2 ** j <= top}
    extra = sorted({int(1.5 * k) for k in ks if int(1.5 * k) < top} - ks)
    while len(ks) < count and extra:
        ks.add(extra.pop(0))
    return sorted(ks)


def ecc_name(num_classes: int, bits: int) -> str | None:
    """The error-correcting codebook used at (L, k): ``hadamard`` where one exists, else
    ``lexicode`` for k <= 20, else None."""
    if hadamard_exists(num_classes, bits):
        return "hadamard"
    return "lexicode" if bits <= 20 and num_classes <= 2 ** bits else None


# ----------------------------------------------------------------------------- frozen-backbone evaluators
def frozen_rows(feats: DataBundle, bits: int, methods: tuple[str, ...], cfg: FeatureConfig, weights: torch.Tensor,
                baseline: dict[str, float]) -> list[dict]:
    """One row per codebook ``method`` at ``bits`` under the frozen-backbone protocol.

    ``llc`` learns C in phase 1 from N(0, 2/k); every other method is a fixed
    :func:`llcpkg.codebooks.build_codebook` (seed ``cfg.seed``; SVD from the baseline's classifier
    ``weights`` (L, d), CCA from the training features). Columns: phase-1 MIPS/MHD/ED, phase 2's
    decoders (:func:`decoder_metrics`), ``train MHD`` (phase 2 on the training split) and the
    baseline's test and train accuracy (``baseline``: {"test": ·, "train": ·})."""
    x, y = (t.numpy() for t in feats.train.tensors)
    rows = []
    for method in methods:
        fixed = None if method == LEARNT else build_codebook(method, feats.num_classes, bits, seed=cfg.seed,
                                                             weights=weights, features=x, labels=y)
        p1, p2 = fit_codes_on_features(feats, bits, cfg, fixed, learn_codebook=method == LEARNT)
        m1 = decoder_metrics(_feature_outputs(p1, feats.test, cfg.device), cfg.seed)
        m2 = decoder_metrics(_feature_outputs(p2, feats.test, cfg.device), cfg.seed)
        train = classification_metrics(_feature_outputs(p2, feats.train, cfg.device))["mhd"]
        rows.append({"dataset": feats.name.removesuffix("-features"), CODEBOOK: method, "bits": bits, PROTOCOL: FROZEN,
                     "phase1 MIPS": m1["mips"], "phase1 MHD": m1["mhd"], "phase1 ED": m1["ed"], **_row(m2),
                     "train MHD": train, BASELINE: baseline["test"], "baseline train": baseline["train"]})
    return rows


def length_sweep_table(feats: DataBundle, bits: list[int], paper_k: int, cfg: FeatureConfig, weights: torch.Tensor,
                       baseline: dict[str, float], sweep_methods: tuple[str, ...] = (LEARNT, "random"),
                       paper_methods: tuple[str, ...] = ("svd", "cca")) -> pd.DataFrame:
    """:func:`frozen_rows` of ``sweep_methods`` at every length of ``bits``, and at ``paper_k`` also
    of ``paper_methods`` and the error-correcting codebook (:func:`ecc_name`): one seed's
    length sweep, whose rows at ``paper_k`` are the codebook comparison. ``bits_rule`` column:
    ``paper ratio`` at ``paper_k``, else ``sweep``."""
    rows = []
    for k in sorted(set(bits) | {paper_k}):
        methods = tuple(sweep_methods)
        if k == paper_k:
            ecc = ecc_name(feats.num_classes, k)
            methods += tuple(m for m in (*paper_methods, *([ecc] if ecc else [])) if m not in methods)
        rows += frozen_rows(feats, k, methods, cfg, weights, baseline)
    df = pd.DataFrame(rows)
    df.insert(3, BITS_RULE, np.where(df["bits"] == paper_k, PAPER_K, "sweep"))
    return df


# ----------------------------------------------------------------------------- retrained-backbone evaluators
def initial_codebook(profile: Profile, data: DataBundle, bits: int, seed: int) -> torch.Tensor:
    """The real codebook (L, k) that :func:`llcpkg.train.train_phase1` draws for a random start
    (N(0, 2/k)) with ``seed``: the same seeded model construction."""
    set_seed(stage_configs(profile, len(data.train), seed)["phase1"].seed)
    return build_model(profile.model_config("llc", bits), data.image_shape[0], data.num_classes).head.codebook.detach()


def warm_codebook(codes: np.ndarray, like: torch.Tensor) -> np.ndarray:
    """A warm-start codebook (L, k): the signs of ``codes`` (±1, e.g. SVD or CCA) with the
    magnitudes of ``like`` (the random start's real codebook), so a warm start differs from the
    random one only in which way each code bit starts."""
    mag = like.abs().cpu().numpy().astype(np.float32)
    return np.where(np.asarray(codes) >= 0, mag, -mag).astype(np.float32)


def warm_run(data: DataBundle, profile: Profile, bits: int, seed: int, codes: np.ndarray, baseline: Trained) -> LLCRun:
    """Phase 1 from the baseline's backbone and the warm codebook ``codes`` (L, k) (magnitudes of
    the random start, :func:`warm_codebook`), the projector at its default initialisation (no
    least-squares start), then phase 2; each stage cached, with the standard runs' stage configs
    (:func:`llcpkg.experiments.classification.standard_configs`), so only the codebook differs."""
    cfgs = standard_configs(profile, data, seed)
    warm = warm_codebook(codes, initial_codebook(profile, data, bits, seed))
    p1 = train_phase1(data, profile.model_config("llc", bits), cfgs["phase1"], profile.cache_dir,
                      warm_start=baseline, codebook=warm, ls_projector=False)
    return LLCRun(baseline, p1, train_phase2(p1, data, cfgs["phase2"], profile.cache_dir), bits)


def phase2_ablation_table(data: DataBundle, profile: Profile, bits: int, seed: int, run: LLCRun,
                          warm: tuple[str, ...], feats: DataBundle, baseline: float) -> pd.DataFrame:
    """Phase 2 off/on for phase 1 from a random codebook (the standard ``run``) and from each
    ``warm`` codebook (SVD of the baseline's weights, CCA of its training features ``feats``;
    :func:`warm_run`). "phase 2 off" decodes the phase-1 model's own instance codes B(P F(x))."""
    starts = {"random": run}
    x, y = (t.numpy() for t in feats.train.tensors)
    for name in warm:
        codes = build_codebook(name, data.num_classes, bits, seed=seed, weights=run.baseline.model.head.fc.weight,
                               features=x, labels=y)
        starts[name] = warm_run(data, profile, bits, seed, codes, run.baseline)
    rows = []
    for name, r in starts.items():
        for phase2, trained in (("off", r.phase1), ("on", r.phase2)):
            m = decoder_metrics(llc_outputs(trained, data, device=profile.device), seed)
            rows.append({"dataset": data.name, "bits": bits, "codebook init": name, "phase 2": phase2,
                         "MIPS": m["mips"], **_row(m), BASELINE: baseline})
    return pd.DataFrame(rows)


def grouped_phase2(phase1: Trained, data: DataBundle, cfg: TrainConfig, cache_dir) -> Trained:
    """Phase 2 as k/2 four-class problems (:mod:`llcpkg.grouped`): phase 1's B(C) frozen, the head
    :meth:`GroupedHead.from_llc` of phase 1's (so training starts from the phase-1 model's
    sigmoids exactly), backbone and group projector trained with :func:`grouped_loss` and the
    same config as the standard phase 2; cached."""
    key = stage_key(stage="phase2-grouped", data=data_id(data), train=cfg, parent=phase1.key)
    model = copy.deepcopy(phase1.model)
    model.head = GroupedHead.from_llc(model.head)
    set_seed(cfg.seed)
    return run_stage("phase2grouped", key, model, data.train, grouped_loss, cfg, cache_dir)


TIE_COLUMNS = ("MHD tie rate", "mean tied classes", "MHD", "MHD (random ties)", "MHD (score ties)", "tie oracle")


def tie_table(outputs: dict[str, dict[str, np.ndarray]], seed: int = 0) -> pd.DataFrame:
    """MHD ties of each named LLC output (``llc_outputs``): the ``TIE_COLUMNS`` — tie rate,
    mean tie size, and the accuracy of breaking ties by lowest index (``MHD``), uniformly at
    random (seeded) and by the bits' real-valued scores, against the tie oracle (true class
    among the nearest)."""
    cols = list(TIE_COLUMNS)
    return pd.DataFrame([{"setting": name, "bits": out["class_bits"].shape[1],
                          **{c: v for c, v in _row(decoder_metrics(out, seed)).items() if c in cols}}
                         for name, out in outputs.items()])


def ball_table(out: dict[str, np.ndarray], r_max: int | None = None, seed: int = 0) -> pd.DataFrame:
    """ED (radius 0), Hamming-ball decoding at radius 1 … ``r_max`` and MHD on one LLC output.

    ``lookups per query``: hash-table lookups for ED and ball (mean over queries, each query
    stopping at its first hit; ``max lookups`` = sum_{r <= radius} C(k, r), the worst case),
    and the L code comparisons of MHD's linear scan. Misses (no code within r_max) count as
    errors. Ties by lowest index in every decoder. ``r_max`` defaults to min(k, 4).
    """
    codes, y = out["class_bits"], out["labels"]
    check_labels(y, len(codes), "evaluation labels")
    q = decode.signs_to_bits(out["bit_logits"])
    k, L = codes.shape[1], len(codes)
    table = decode.CodeTable(codes)
    rows = []
    r_max = min(k, 4) if r_max is None else r_max
    for r in range(r_max + 1):
        res = decode.ball_decode(q, table, r)
        rows.append({"decoder": "ED" if r == 0 else f"ball-{r}", "radius": r, "accuracy": float((res.pred == y).mean()),
                     "unassigned": float((res.pred < 0).mean()), "lookups per query": float(res.lookups.mean()),
                     "max lookups": decode.ball_lookups(k, r)})
    mhd = decode.mhd_decode(q, codes)
    rows.append({"decoder": "MHD", "radius": k, "accuracy": float((mhd.pred == y).mean()), "unassigned": 0.0,
                 "lookups per query": float(L), "max lookups": L})
    df = pd.DataFrame(rows)
    df.insert(0, "classes", L)
    df.insert(0, "bits", k)
    return df


@torch.no_grad()
def grouped_ball_table(trained: Trained, data: DataBundle, device: str = "cpu", largest: int = 4096) -> pd.DataFrame:
    """ED, ball-r and MHD (:func:`ball_table`) on a phase-2 model's sign (or, for a grouped head,
    marginal) codes, then list decoding of its top-m codes (:func:`llcpkg.grouped.grouped_curve`,
    m = 1, 2, 4, … up to min(2^k, ``largest``)): a :class:`GroupedHead` decodes its own group
    softmax, an LLC head its k sigmoids through :meth:`GroupedHead.from_llc` (the same
    distribution). Column ``phase 2 head``: which phase 2 trained it; ``m`` NaN for ball rows."""
    out = llc_outputs(trained, data, device=device)
    head = trained.model.head.cpu()
    grouped = head if isinstance(head, GroupedHead) else GroupedHead.from_llc(head)
    u = grouped.group_logits(torch.from_numpy(out["features"]))
    sizes = [2 ** i for i in range(min(out["class_bits"].shape[1], int(math.log2(largest))) + 1)]
    df = pd.concat([ball_table(out), grouped_curve(u, out["class_bits"], out["labels"], sizes)], ignore_index=True)
    df.insert(0, HEAD, GROUPED_HEAD if isinstance(head, GroupedHead) else BINARY_HEAD)
    return df


# ----------------------------------------------------------------------------- figures
def plot_length_sweep(summary: pd.DataFrame, title: str):
    """Accuracy (MHD solid, ED dashed, seed means with 95% bands) against code length, one colour
    per sweep codebook, one panel per data set; the real-valued baseline as a horizontal line.
    ``summary``: :func:`summaries`' length summary."""
    sets = list(dict.fromkeys(summary["dataset"]))
    fig, axes = plt.subplots(1, len(sets), figsize=(5.5 * len(sets), 4), squeeze=False)
    for ax, name in zip(axes[0], sets):
        d = summary[summary["dataset"] == name]
        swept = [c for c, g in d.groupby(CODEBOOK, sort=False) if g["bits"].nunique() > 1]
        for i, cb in enumerate(swept):
            g = d[d[CODEBOOK] == cb].sort_values("bits")
            for col, style in (("MHD", "o-"), ("ED", "s--")):
                ax.plot(g["bits"], g[f"{col} mean"], style, color=f"C{i}", label=f"{cb} {col}")
                ax.fill_between(g["bits"], g[f"{col} lo"], g[f"{col} hi"], color=f"C{i}", alpha=0.15)
        ax.axhline(d[f"{BASELINE} mean"].iloc[0], color="k", lw=1, label="real-valued baseline")
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(d["bits"].unique()), [str(b) for b in sorted(d["bits"].unique())])
        ax.set_xlabel("code length k (bits)")
        ax.set_ylabel("test accuracy")
        ax.set_ylim(0, 1)
        ax.set_title(name)
        ax.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_ball(df: pd.DataFrame, title: str):
    """Accuracy against mean lookups per query (log scale), one panel per setting (data set, k):
    one colour per phase-2 head, solid ED → ball-r → MHD, dotted list-m (grouped decoding)."""
    settings = list(dict.fromkeys(df["setting"]))
    fig, axes = plt.subplots(1, len(settings), figsize=(4.2 * len(settings), 3.8), squeeze=False)
    family = np.where(df["decoder"].str.startswith("list-"), "list-m", "ED/ball/MHD")
    heads = list(dict.fromkeys(df[HEAD]))
    for ax, setting in zip(axes[0], settings):
        d = df.assign(family=family)[df["setting"] == setting]
        for (head, fam), g in d.groupby([HEAD, "family"], sort=False):
            ax.plot(g["lookups per query"], g["accuracy"], "o-" if fam == "ED/ball/MHD" else "^:",
                    color=f"C{heads.index(head)}", label=f"{head}: {fam}")
        ax.set_xscale("log")
        ax.set_xlabel("mean lookups / comparisons per query")
        ax.set_title(setting, fontsize=9)
        ax.legend(fontsize=6)
    axes[0][0].set_ylabel("test accuracy (misses count as errors)")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_ties(summary: pd.DataFrame, title: str):
    """Tie rate (bars: seed mean, 95% error bars, left axis) and the mean accuracy gain over
    lowest-index tie breaking of score, random and oracle tie breaking (lines, right axis, points),
    one bar per row of the ties summary (``setting``)."""
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(summary)), 4))
    x = np.arange(len(summary))
    rate = summary["MHD tie rate mean"]
    ax.bar(x, rate, color="C0", label="MHD tie rate",
           yerr=np.vstack([rate - summary["MHD tie rate lo"], summary["MHD tie rate hi"] - rate]), capsize=2)
    ax.axhline(TIE_RATE_MAX, color="C0", ls=":", lw=1, label=f"claim threshold {TIE_RATE_MAX:.0%}")
    ax.set_ylabel("share of test queries with a tie")
    ax.set_xticks(x, summary["setting"], rotation=45, ha="right", fontsize=7)
    ax2 = ax.twinx()
    for col, style, color, label in (("MHD (score ties)", "o-", "C3", "score − lowest"),
                                     ("MHD (random ties)", "s--", "C2", "random − lowest"),
                                     ("tie oracle", "^:", "C1", "oracle − lowest")):
        ax2.plot(x, 100 * (summary[f"{col} mean"] - summary["MHD mean"]), style, color=color, label=label)
    ax2.axhline(0, color="grey", lw=0.5)
    ax2.set_ylabel("accuracy gain over lowest-index ties (points)")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=8, loc="upper left")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_codebooks(summary: pd.DataFrame, title: str):
    """MHD and ED of each codebook (seed means, 95% error bars) with the real-valued baseline:
    the codebook summary (frozen protocol rows, then the full LLC pipeline for reference)."""
    setting = summary["dataset"] + "\n" + summary[CODEBOOK] + summary[PROTOCOL].map(lambda p: "" if p == FROZEN else "\n(full LLC)")
    return grouped_bars(summary.assign(setting=setting), "setting", [BASELINE, "MHD", "MHD (score ties)", "ED"],
                        ylabel="test accuracy", title=title, ylim=(0, 1), summary=True)


def plot_phase2(summary: pd.DataFrame, title: str):
    """MIPS, MHD and ED with phase 2 off and on, per codebook initialisation (seed means, 95% error bars)."""
    setting = summary["dataset"] + "\n" + summary["codebook init"] + " init\nphase 2 " + summary["phase 2"]
    return grouped_bars(summary.assign(setting=setting), "setting", ["MIPS", "MHD", "ED"], ylabel="test accuracy",
                        title=title, ylim=(0, 1), summary=True)


# ----------------------------------------------------------------------------- claims
def _by_seed(df: pd.DataFrame, column: str) -> pd.Series:
    """One value per seed of ``column`` (constant within a seed, e.g. the baseline), indexed by seed."""
    return df.groupby(SEED, sort=True)[column].first()


def _gated(verdict: Verdict, df: pd.DataFrame, dataset: str, t: Tables) -> Verdict:
    """``verdict`` gated on the seeds' baseline accuracy (``baseline`` column) by the adequacy reference
    ``<ARCHITECTURE>/<dataset>`` (:func:`llcpkg.references.gate_baseline`). Every claim of this notebook
    rests on the baseline's backbone, so every claim is gated."""
    return gate_baseline(verdict, _by_seed(df, BASELINE), ARCHITECTURE, dataset, t)


def _points(s: pd.Series) -> pd.Series:
    return 100 * s


def _mean_pm(values: pd.Series) -> str:
    return pct(float(values.mean()))


def claim_learnt_codebook(t: Tables) -> list[dict]:
    """The learnt codebook beats random, SVD, CCA and the error-correcting (Hadamard / lexicode)
    codebooks under the same frozen-backbone protocol at the paper's k. One part per fixed
    codebook: the paired interval over seeds of MHD(learnt) − MHD(fixed), in points, at or above 0
    (:func:`llcpkg.verdicts.at_least`); :func:`combine` names the failing parts; gated."""
    df = t(CODEBOOK_TABLE)
    require_columns(df, [SEED, "dataset", "bits", CODEBOOK, PROTOCOL, MHD, BASELINE], CODEBOOK_TABLE)
    rows = []
    for name, g in df[df[PROTOCOL] == FROZEN].groupby("dataset", sort=False):
        acc = g.pivot(index=SEED, columns=CODEBOOK, values=MHD)
        fixed = [c for c in acc.columns if c != LEARNT]
        parts = {f"vs {c}": at_least(paired_interval(_points(acc[LEARNT]), _points(acc[c])), 0.0,
                                     f"MHD(learnt) − MHD({c})", " points", ".2f") for c in fixed}
        k = int(g["bits"].iloc[0])
        rows.append(claim_row("The learnt codebook beats random / SVD / CCA / Hadamard codebooks",
                              "ImageNet: learnt codes ahead of the baselines (Table 2)", name,
                              f"k={k}, frozen backbone, MHD: learnt {_mean_pm(acc[LEARNT])}; "
                              + ", ".join(f"{c} {_mean_pm(acc[c])}" for c in fixed),
                              _gated(combine(parts), g, name, t)))
    return rows


def claim_warm_starts(t: Tables) -> list[dict]:
    """SVD/CCA warm starts reach a good codebook: after phase 1 from a warm codebook and phase 2,
    MHD is at most ``CODE_TOLERANCE`` below the random start's (paired interval over seeds of
    MHD(warm) − MHD(random), at or above −CODE_TOLERANCE); one part per warm start; gated."""
    df = t(PHASE2_TABLE)
    require_columns(df, [SEED, "dataset", "bits", "codebook init", "phase 2", MHD, BASELINE], PHASE2_TABLE)
    rows = []
    for name, g in df[df["phase 2"] == "on"].groupby("dataset", sort=False):
        acc = g.pivot(index=SEED, columns="codebook init", values=MHD)
        warm = [c for c in acc.columns if c != "random"]
        parts = {c: at_least(paired_interval(_points(acc[c]), _points(acc["random"])), -100 * CODE_TOLERANCE,
                             f"MHD({c} start) − MHD(random start)", " points", ".2f") for c in warm}
        rows.append(claim_row("SVD/CCA warm starts reach a good codebook",
                              "the paper allows phase 1 from SVD/CCA codes; no number recorded", name,
                              f"k={int(g['bits'].iloc[0])}, MHD after phase 2: random start {_mean_pm(acc['random'])}; "
                              + ", ".join(f"{c} start {_mean_pm(acc[c])}" for c in warm),
                              _gated(combine(parts), g, name, t)))
    return rows


def claim_longer_codes(t: Tables) -> list[dict]:
    """Longer codes fix bad codes (frozen-backbone sweep): random codes, bad at the shortest k,
    (1) gain MHD from the shortest to the longest k (paired interval of MHD(random, k_max) −
    MHD(random, k_min) at or above 0) and (2) at the longest k come within ``CODE_TOLERANCE`` of
    the learnt codes (paired interval of MHD(learnt) − MHD(random) at k_max at or below it); gated."""
    df = t(LENGTH_TABLE)
    require_columns(df, [SEED, "dataset", "bits", CODEBOOK, MHD, BASELINE], LENGTH_TABLE)
    rows = []
    for name, g in df.groupby("dataset", sort=False):
        acc = g[g[CODEBOOK].isin([LEARNT, "random"])].pivot_table(index=SEED, columns=[CODEBOOK, "bits"], values=MHD)
        lo, hi = int(g["bits"].min()), int(g["bits"].max())
        parts = {"random codes gain with k": at_least(paired_interval(_points(acc["random", hi]), _points(acc["random", lo])),
                                                      0.0, f"MHD(random, k={hi}) − MHD(random, k={lo})", " points", ".2f"),
                 f"random within {100 * CODE_TOLERANCE:.1f} points of learnt at k={hi}": at_most(
                     paired_interval(_points(acc[LEARNT, hi]), _points(acc["random", hi])), 100 * CODE_TOLERANCE,
                     f"MHD(learnt, k={hi}) − MHD(random, k={hi})", " points", ".2f")}
        rows.append(claim_row("Longer codes fix bad codes", "our reading of the paper's code-length remarks", name,
                              f"MHD random: k={lo} {_mean_pm(acc['random', lo])} → k={hi} {_mean_pm(acc['random', hi])}; "
                              f"learnt at k={hi} {_mean_pm(acc[LEARNT, hi])}", _gated(combine(parts), g, name, t)))
    return rows


def claim_ties(t: Tables) -> list[dict]:
    """Ties are not that frequent: the MHD tie rate of the full LLC run at the paper's k, its
    interval over seeds at or below ``TIE_RATE_MAX`` (:func:`llcpkg.verdicts.at_most`); gated."""
    df = t(TIE_TABLE)
    require_columns(df, [SEED, "dataset", "bits", PROTOCOL, BITS_RULE, "MHD tie rate", BASELINE], TIE_TABLE)
    rows = []
    for name, g in df[(df[PROTOCOL] == FULL) & (df[BITS_RULE] == PAPER_K)].groupby("dataset", sort=False):
        rate = g.set_index(SEED)["MHD tie rate"]
        v = at_most(seed_interval(_points(rate).to_numpy()), 100 * TIE_RATE_MAX, "the MHD tie rate", "%", ".1f")
        rows.append(claim_row(CLAIM_TIES, "the paper's remark on MHD ties (no number)", name,
                              f"k={int(g['bits'].iloc[0])}, full LLC: {_mean_pm(rate)} of test queries tied",
                              _gated(v, g, name, t)))
    return rows


CLAIMS: dict[str, Rule] = {"LLC: learnt codebook best": claim_learnt_codebook,
                           "SVD/CCA warm starts reach a good codebook": claim_warm_starts,
                           "Longer codes fix bad codes": claim_longer_codes,
                           "Ties are not that frequent": claim_ties}


def verdicts(tables: Tables) -> list[dict]:
    """The claims rows of notebook 02's tables (a missing table: one ``not run`` row per claim)."""
    return collect(CLAIMS, tables)


# ----------------------------------------------------------------------------- readings
def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def _claim_lines(rule: Rule, name: str, df: pd.DataFrame) -> list[str]:
    """The claim rows of ``rule`` on the in-memory per-seed table ``df`` (named ``name``), as text."""
    return [f"  verdict [{r['dataset']}]: {r['verdict']} — {r['ours']} (interval: {r['interval']})"
            for r in rule(reader({name: df}))]


def describe_codebooks(per_seed: pd.DataFrame) -> str:
    """Reading of the codebook table: each codebook's MHD/ED (seed means) under the frozen protocol,
    then the claim's verdict (:func:`claim_learnt_codebook`, the same rule as the scoreboard)."""
    lines = []
    mean = per_seed.groupby(["dataset", "bits", CODEBOOK, PROTOCOL], sort=False)[[MHD, "ED", BASELINE]].mean().reset_index()
    for name, d in mean.groupby("dataset", sort=False):
        parts = ", ".join(f"{r[CODEBOOK]}{'' if r[PROTOCOL] == FROZEN else ' (full LLC)'} {_pct(r[MHD])}/{_pct(r['ED'])}"
                          for _, r in d.iterrows())
        lines.append(f"{name} (k = {d['bits'].iloc[0]}, baseline {_pct(d[BASELINE].iloc[0])}; seed means): MHD/ED — {parts}.")
    return "\n".join(lines + _claim_lines(claim_learnt_codebook, CODEBOOK_TABLE, per_seed))


def describe_sweep(per_seed: pd.DataFrame) -> str:
    """Reading of the length sweep: learnt vs random MHD at each k (seed means), then the verdict
    of :func:`claim_longer_codes`."""
    lines = []
    sweep = per_seed[per_seed[CODEBOOK].isin([LEARNT, "random"])]
    for name, d in sweep.groupby("dataset", sort=False):
        p = d.pivot_table(index="bits", columns=CODEBOOK, values=[MHD, "ED"])
        lines.append(f"{name}: " + "; ".join(f"k={k} MHD learnt {_pct(r[MHD, LEARNT])} vs random {_pct(r[MHD, 'random'])}"
                                             for k, r in p.iterrows()))
    return "\n".join(lines + _claim_lines(claim_longer_codes, LENGTH_TABLE, per_seed))


def describe_phase2(per_seed: pd.DataFrame) -> str:
    """Reading of the phase-2 table: what phase 2 changes per start (seed means), then the verdict
    of :func:`claim_warm_starts`."""
    lines = []
    mean = per_seed.groupby(["dataset", "bits", "codebook init", "phase 2"], sort=False)[["MIPS", MHD, "ED"]].mean()
    for (name, k, init), d in mean.groupby(level=[0, 1, 2], sort=False):
        off, on = d.xs("off", level=3).iloc[0], d.xs("on", level=3).iloc[0]
        lines.append(f"{name} k = {k}, {init} start: phase 2 moves MHD {_pct(off[MHD])} → {_pct(on[MHD])}, "
                     f"ED {_pct(off['ED'])} → {_pct(on['ED'])}; phase-1 MIPS {_pct(off['MIPS'])}.")
    return "\n".join(lines + _claim_lines(claim_warm_starts, PHASE2_TABLE, per_seed))


def describe_ties(per_seed: pd.DataFrame) -> str:
    """Reading of the ties table: tie rates and what each tie rule gains (seed means), then the
    verdict of :func:`claim_ties`."""
    mean = per_seed.groupby("setting", sort=False)[list(TIE_COLUMNS)].mean()
    gain = 100 * (mean["MHD (score ties)"] - mean[MHD])
    lines = [f"{s}: {_pct(r['MHD tie rate'])} tied (mean {r['mean tied classes']:.2f} classes); lowest {_pct(r[MHD])}, "
             f"score {_pct(r['MHD (score ties)'])}, oracle {_pct(r['tie oracle'])}" for s, r in mean.iterrows()]
    lines.append(f"Score tie-breaking beat the lowest index in {int((gain > 0).sum())} of {len(mean)} settings "
                 f"(mean {gain.mean():+.2f} points).")
    return "\n".join(lines + _claim_lines(claim_ties, TIE_TABLE, per_seed))


def describe_ball(df: pd.DataFrame, tol: float = 0.001) -> str:
    """Reading of the ball table (first seed): per setting and phase-2 head, ED and MHD, the
    cheapest ball radius and the cheapest list size m within ``tol`` of MHD's accuracy, and
    their mean lookups against MHD's L comparisons."""
    lines = []
    for (name, head), d in df.groupby(["setting", HEAD], sort=False):
        mhd, ed = d[d["decoder"] == "MHD"].iloc[0], d[d["decoder"] == "ED"].iloc[0]
        s = (f"{name}, {head}: ED {_pct(ed['accuracy'])} ({_pct(ed['unassigned'])} unassigned), "
             f"MHD {_pct(mhd['accuracy'])} with {int(mhd['lookups per query'])} comparisons")
        for fam, rows in (("ball", d[d["decoder"].str.startswith("ball-")]), ("list", d[d["decoder"].str.startswith("list-")])):
            close = rows[rows["accuracy"] >= mhd["accuracy"] - tol]
            s += (f"; {fam}: {close.iloc[0]['decoder']} matches MHD with {close.iloc[0]['lookups per query']:.1f} lookups"
                  if len(close) else f"; {fam}: best {_pct(rows['accuracy'].max())}, below MHD")
        lines.append(s)
    return "\n".join(lines)


# ----------------------------------------------------------------------------- the experiment (notebook 02)
@dataclass(frozen=True)
class AblationsExperiment:
    """Notebook 02's parameters."""

    profile: Profile  # scale of the run
    seeds: tuple[int, ...] = (0,)  # initialisation, random codebooks and shuffling (for_profile: resolve_seeds)
    datasets: tuple[str, ...] = ("fashion_mnist", "omniglot")  # names in llcpkg.data.DATASETS
    # sets of the retrained-backbone warm starts (section 3), kept to those in ``datasets``; None: all (smoke: the
    # first). Default Omniglot only: warm starts cost ~4 fashion epochs-equivalent each per seed, and on Fashion-MNIST
    # they would add ~13 min to the three-seed cpu run (issue #16's budget)
    backbone_datasets: tuple[str, ...] | None = ("omniglot",)
    sweep_top: int = 64  # longest code of the length sweep (from ceil(log2 L) up)
    warm_codebooks: tuple[str, ...] = ("svd", "cca")  # codebooks that warm-start phase 1 in section 3

    @classmethod
    def for_profile(cls, profile: Profile, seeds=None, **params) -> "AblationsExperiment":
        """The notebook's parameters (lists become tuples) on ``profile``; ``seeds`` resolved by
        :func:`llcpkg.seeds.resolve_seeds` (None: ``$LLC_SEEDS``, else the profile's)."""
        return cls(profile, resolve_seeds(profile, seeds),
                   **{k: tuple(v) if isinstance(v, list) else v for k, v in params.items()})

    @property
    def retrained(self) -> tuple[str, ...]:
        """The data sets of the retrained-backbone warm starts (section 3)."""
        if self.backbone_datasets is not None:
            return tuple(n for n in self.backbone_datasets if n in self.datasets)
        return tuple(self.datasets[:1]) if self.profile.name == "smoke" else tuple(self.datasets)

    def features(self, seed: int) -> FeatureConfig:
        """The frozen-backbone protocol's config of ``seed`` (:func:`feature_config`)."""
        return feature_config(self.profile, seed)


@dataclass
class SeedSetup:
    """What the sections share for one seed: the standard LLC runs of notebook 01 (both default
    code lengths on the first seed, the paper's k on the others: only the paper's k feeds a claim),
    the paper-k baseline's frozen features and its accuracy."""

    runs: dict[tuple[str, int], LLCRun]  # (data set, k) -> the standard run
    feats: dict[str, DataBundle]  # data set name -> baseline features
    baseline_acc: dict[str, dict[str, float]]  # data set name -> {"test": ·, "train": ·} of the real-valued baseline


@dataclass
class AblationsSetup:
    """The data and, per seed, the :class:`SeedSetup`."""

    bundles: dict[str, DataBundle]  # data set name -> its bundle (the fixed split)
    ks: dict[str, dict[str, int]]  # data set name -> default_bits (rule name -> k)
    by_seed: dict[int, SeedSetup] = field(default_factory=dict)

    def paper_k(self, name: str) -> int:
        """The paper's code length for data set ``name``."""
        return self.ks[name][PAPER_K]


def _head_accuracy(head: nn.Module, ds: TensorDataset) -> float:
    """Accuracy of a linear head on precomputed features."""
    x, y = ds.tensors
    with torch.no_grad():
        return float((head.cpu()(x).argmax(1) == y).float().mean())


def setup(cfg: AblationsExperiment) -> AblationsSetup:
    """Load the data once; per seed, reuse (or train) the standard runs and extract the baseline features."""
    P = cfg.profile
    bundles = {name: load_bundle(name, P) for name in cfg.datasets}
    s = AblationsSetup(bundles, {name: default_bits(d.num_classes) for name, d in bundles.items()})
    for seed in cfg.seeds:  # the first seed: both default lengths (ball table, ties); later ones: the paper's k only
        ks = {n: list(s.ks[n].values()) if seed == cfg.seeds[0] else [s.paper_k(n)] for n in bundles}
        runs = {(n, k): run_llc(d, P, k, seed, configs=standard_configs(P, d, seed)) for n, d in bundles.items()
                for k in ks[n]}
        base = {n: runs[n, s.paper_k(n)].baseline for n in bundles}
        feats = {n: feature_bundle(base[n], d, P.device) for n, d in bundles.items()}
        acc = {n: {"test": _head_accuracy(base[n].model.head, feats[n].test),
                   "train": _head_accuracy(base[n].model.head, feats[n].train)} for n in bundles}
        s.by_seed[seed] = SeedSetup(runs, feats, acc)
    return s


def phase2_lr(cfg: AblationsExperiment, s: AblationsSetup) -> float:
    """Phase 2's peak learning rate of the standard runs of the first data set (chosen on validation,
    :func:`llcpkg.experiments.classification.phase2_lr_of`)."""
    return standard_configs(cfg.profile, s.bundles[cfg.datasets[0]], cfg.seeds[0])["phase2"].lr


def seed_lengths(cfg: AblationsExperiment, num_classes: int, seed: int) -> list[int]:
    """The sweep's code lengths on ``seed``: all of :func:`sweep_bits` on the first seed; the shortest
    and the longest on the others (what :func:`claim_longer_codes` reads; the paper's k is added by
    :func:`length_sweep_table`), so the intermediate lengths are a first-seed diagnostic."""
    ks = sweep_bits(num_classes, cfg.sweep_top)
    return ks if seed == cfg.seeds[0] else [ks[0], ks[-1]]


def sweep_table(cfg: AblationsExperiment, s: AblationsSetup) -> pd.DataFrame:
    """Sections 1–2 (per seed): :func:`length_sweep_table` on every data set up to ``cfg.sweep_top``
    bits (:func:`seed_lengths`), every fixed codebook at the paper's k."""
    def one(seed: int) -> pd.DataFrame:
        ss = s.by_seed[seed]
        return pd.concat([length_sweep_table(ss.feats[n], seed_lengths(cfg, d.num_classes, seed), s.paper_k(n),
                                             cfg.features(seed), ss.runs[n, s.paper_k(n)].baseline.model.head.fc.weight,
                                             ss.baseline_acc[n]) for n, d in s.bundles.items()], ignore_index=True)
    return over_seeds(one, cfg.seeds)


def codebooks_table(cfg: AblationsExperiment, s: AblationsSetup, sweep: pd.DataFrame) -> pd.DataFrame:
    """Section 1 (per seed): the sweep's rows at the paper's k (every codebook, frozen protocol),
    then the full LLC pipeline of notebook 01 (phase 1 → phase 2, backbone trained) for reference."""
    def full(seed: int) -> pd.DataFrame:
        ss = s.by_seed[seed]
        return pd.DataFrame([{"dataset": n, CODEBOOK: LEARNT, "bits": s.paper_k(n), BITS_RULE: PAPER_K, PROTOCOL: FULL,
                              **_row(decoder_metrics(llc_outputs(ss.runs[n, s.paper_k(n)].phase2, d,
                                                                 device=cfg.profile.device), seed)),
                              BASELINE: ss.baseline_acc[n]["test"], "baseline train": ss.baseline_acc[n]["train"]}
                             for n, d in s.bundles.items()])
    paper = sweep[sweep[BITS_RULE] == PAPER_K]
    df = pd.concat([paper, over_seeds(full, cfg.seeds)], ignore_index=True)
    order = {n: i for i, n in enumerate(s.bundles)}
    return df.sort_values([SEED, "dataset"], key=lambda c: c.map(order) if c.name == "dataset" else c,
                          kind="stable").reset_index(drop=True)


def phase2_table(cfg: AblationsExperiment, s: AblationsSetup) -> pd.DataFrame:
    """Section 3 (per seed): :func:`phase2_ablation_table` with the warm-start codebooks on every retrained set."""
    def one(seed: int) -> pd.DataFrame:
        ss = s.by_seed[seed]
        return pd.concat([phase2_ablation_table(s.bundles[n], cfg.profile, s.paper_k(n), seed, ss.runs[n, s.paper_k(n)],
                                                tuple(cfg.warm_codebooks), ss.feats[n], ss.baseline_acc[n]["test"])
                          for n in cfg.retrained], ignore_index=True)
    return over_seeds(one, cfg.seeds)


def ties_table(cfg: AblationsExperiment, s: AblationsSetup, sweep: pd.DataFrame) -> pd.DataFrame:
    """Section 4 (per seed): :func:`tie_table` of the standard runs (the paper's k on every seed, the
    minimum k on the first, :class:`SeedSetup`), then the
    learnt rows of the frozen-backbone sweep; columns ``dataset``, ``protocol``, ``bits rule`` and
    ``baseline`` beside the ``TIE_COLUMNS``."""
    rule = {(n, k): r for n, ks in s.ks.items() for r, k in ks.items()}

    def full(seed: int) -> pd.DataFrame:
        ss = s.by_seed[seed]
        outs = {f"{n} k={k} full": llc_outputs(r.phase2, s.bundles[n], device=cfg.profile.device) for (n, k), r in ss.runs.items()}
        meta = pd.DataFrame([{"dataset": n, PROTOCOL: FULL, BITS_RULE: rule[n, k], BASELINE: ss.baseline_acc[n]["test"]}
                             for n, k in ss.runs])
        return pd.concat([tie_table(outs, seed), meta], axis=1)

    frozen = sweep[sweep[CODEBOOK] == LEARNT].assign(setting=lambda d: d["dataset"] + " k=" + d["bits"].astype(str) + " frozen")
    cols = [SEED, "setting", "dataset", "bits", PROTOCOL, BITS_RULE, *TIE_COLUMNS, BASELINE]
    return pd.concat([over_seeds(full, cfg.seeds)[cols], frozen[cols]], ignore_index=True)


def balls_table(cfg: AblationsExperiment, s: AblationsSetup) -> pd.DataFrame:
    """Section 5 (the first seed, a diagnostic): :func:`grouped_ball_table` of every standard run's
    phase 2 and, at the paper's k, of the grouped phase 2 (:func:`grouped_phase2`) from the same phase 1."""
    seed = cfg.seeds[0]
    ss, P, frames = s.by_seed[seed], cfg.profile, []
    for (n, k), r in ss.runs.items():
        data = s.bundles[n]
        models = [r.phase2]
        if k == s.paper_k(n):
            models.append(grouped_phase2(r.phase1, data, standard_configs(P, data, seed)["phase2"], P.cache_dir))
        frames += [grouped_ball_table(m, data, P.device).assign(setting=f"{n} k={k}") for m in models]
    return pd.concat(frames, ignore_index=True)


def summaries(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The ``<name>_summary`` of each per-seed table in ``tables`` (mean, std, 95% t-interval over seeds)."""
    spec = {CODEBOOK_TABLE: (CODEBOOK_SUMMARY, ["dataset", "bits", CODEBOOK, PROTOCOL]),
            LENGTH_TABLE: (LENGTH_SUMMARY, ["dataset", CODEBOOK, "bits", BITS_RULE]),
            PHASE2_TABLE: (PHASE2_SUMMARY, ["dataset", "bits", "codebook init", "phase 2"]),
            TIE_TABLE: (TIE_SUMMARY, ["setting", "dataset", "bits", PROTOCOL, BITS_RULE])}
    out = {}
    for name, (summary, by) in spec.items():
        if name in tables:
            df = tables[name]
            values = [c for c in df.columns if c not in (SEED, *by) and pd.api.types.is_numeric_dtype(df[c])]
            out[summary] = summary_table(df, by, values, name)
    return out


def run(cfg: AblationsExperiment) -> dict[str, pd.DataFrame]:
    """Every table of notebook 02, by file name (``results/tables/<name>.csv``), summaries included."""
    s = setup(cfg)
    sweep = sweep_table(cfg, s)
    tables = {CODEBOOK_TABLE: codebooks_table(cfg, s, sweep), LENGTH_TABLE: sweep, PHASE2_TABLE: phase2_table(cfg, s),
              TIE_TABLE: ties_table(cfg, s, sweep), BALL_TABLE: balls_table(cfg, s)}
    return {**tables, **summaries(tables)}
