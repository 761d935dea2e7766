"""Notebook 02: ablations of LLC (Kusupati et al., NeurIPS 2021, §4 and the reviewers' open questions):
codebook baselines, code length, phase 2 on/off, warm-started codebooks, MHD ties and
decoders between ED and MHD. Each evaluator returns a pandas DataFrame (one row per
setting); notebooks/02_ablations.ipynb writes them to ``results/tables/ablations_*``.

Two training protocols, both reusing the cached baseline of the standard pipeline
(:func:`llcpkg.pipeline.run_llc`):

* **Backbone protocol** (:func:`phase2_with_codebook`, codebook baselines): a fixed
  codebook replaces phase 1. The LLC model gets the baseline's backbone, a projector fitted
  for a few seconds on the frozen baseline features (CE on B(C)·P F(x) with the codebook
  frozen — a short "phase 1" that trains only P), then the standard phase 2 (backbone and
  projector, the profile's phase-2 ``TrainConfig``), cached like every stage.
* **Frozen-backbone protocol** (:func:`fit_codes_on_features`, length sweep and ties): the
  baseline backbone is frozen and its features precomputed once (:func:`feature_bundle`);
  phase 1 (projector, and codebook unless it is fixed) and phase 2 (projector only) are
  trained on the features with the same loop and losses — seconds per code length.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, replace

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import TensorDataset

from .. import decode
from ..codebooks import build_codebook, codebook_stats, default_bits, hadamard_exists, to_bits
from ..data import DataBundle, check_labels
from ..metrics import classification_metrics, llc_outputs
from ..models import DEFAULT_LOGIT_SCALE, Classifier, build_head, build_model
from ..pipeline import LLCRun, load_bundle, run_llc, stage_configs
from ..plots import grouped_bars
from ..profiles import Profile, scaled_epochs, stage_epochs
from ..train import LOSSES, TrainConfig, Trained, data_id, fit, predict, run_stage, set_seed, stage_cached, stage_key
from ..verdicts import FAILS, HOLDS, PARTLY, Rule, Tables, collect, pct

__all__ = ["AblationsExperiment", "FeatureConfig", "feature_config", "feature_bundle", "fit_codes_on_features", "phase2_with_codebook", "decoder_metrics",
           "sweep_bits", "ecc_name", "codebook_baselines_table", "length_sweep_table", "phase2_ablation_table",
           "TIE_COLUMNS", "tie_table", "ball_table", "plot_length_sweep", "plot_ball", "plot_ties", "describe_codebooks",
           "describe_sweep", "describe_phase2", "describe_ties", "describe_ball", "CODEBOOK_TABLE", "LENGTH_TABLE",
           "PHASE2_TABLE", "TIE_TABLE", "BALL_TABLE", "PROTOCOL", "CODEBOOK", "MHD", "CLAIMS", "verdicts", "AblationsSetup",
           "setup", "phase2_lr", "codebooks_table", "sweep_table", "phase2_table", "ties_table", "balls_table", "run", "plot_codebooks",
           "plot_phase2"]

# tables (results/tables/<name>.csv) and the columns the claims read
CODEBOOK_TABLE, LENGTH_TABLE, PHASE2_TABLE = "ablations_codebooks", "ablations_length", "ablations_phase2"
TIE_TABLE, BALL_TABLE = "ablations_ties", "ablations_ball"
PROTOCOL, CODEBOOK, MHD = "protocol", "codebook", "MHD"


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


def _feature_model(dim: int, num_classes: int, bits: int, codebook, logit_scale: str) -> Classifier:
    cb = None if codebook is None else torch.as_tensor(np.asarray(codebook), dtype=torch.float32)
    return Classifier(nn.Identity(), build_head("llc", dim, num_classes, bits, codebook=cb, logit_scale=logit_scale))


def fit_codes_on_features(feats: DataBundle, bits: int, cfg: FeatureConfig, codebook=None,
                          learn_codebook: bool = True) -> tuple[Classifier, Classifier]:
    """Phase 1 then phase 2 of LLC on frozen features; returns (phase-1 model, phase-2 model).

    ``codebook`` (L, k): the initial (``learn_codebook``) or fixed class codes; random normal
    if None. Phase 1: CE on B(C)·P F (label smoothing 0.1); phase 2: BCE of the k bits with
    B(C) frozen. Backbone = identity on the precomputed features. No progress bars.
    """
    n = len(feats.train)
    base = TrainConfig(batch_size=cfg.batch_size, seed=cfg.seed, device=cfg.device)
    c1 = replace(base, epochs=scaled_epochs(cfg.phase1_epochs, n, cfg.epoch_reference, cfg.epoch_cap), lr=cfg.phase1_lr)
    c2 = replace(base, epochs=scaled_epochs(cfg.phase2_epochs, n, cfg.epoch_reference, cfg.epoch_cap), lr=cfg.phase2_lr,
                 label_smoothing=0.0) if cfg.phase2_epochs else None  # 0 epochs: phase 1 only
    set_seed(cfg.seed)
    p1 = _feature_model(feats.image_shape[0], feats.num_classes, bits, codebook, cfg.logit_scale)
    p1.head.codebook.requires_grad_(learn_codebook)
    fit(p1, feats.train, LOSSES["ce"], c1, progress=False)
    p2 = copy.deepcopy(p1)
    p2.head.codebook.requires_grad_(False)
    if c2 is not None:
        fit(p2, feats.train, LOSSES["bits"], c2, progress=False)
    return p1, p2


# ----------------------------------------------------------------------------- backbone protocol
def phase2_with_codebook(data: DataBundle, profile: Profile, base: Trained, codes: np.ndarray, seed: int = 0,
                         feats: DataBundle | None = None, proj_cfg: FeatureConfig | None = None,
                         cfg: TrainConfig | None = None) -> Trained:
    """A fixed codebook (L, k) in {−1, +1} followed by LLC's phase 2, from the baseline's backbone.

    The projector is first fitted on the frozen baseline features (``feats``, computed if
    None) with the codebook frozen (``proj_cfg``'s phase 1); then backbone and projector are
    trained on the k bit problems with ``cfg`` (default: the profile's phase-2 config). Cached
    under a key of (data, config, baseline, codebook, projector config).
    """
    codes = np.asarray(codes, dtype=np.float32)
    cfg = cfg or stage_configs(profile, len(data.train), seed)["phase2"]
    proj_cfg = proj_cfg or feature_config(profile, seed)
    key = stage_key(stage="phase2-codebook", data=data_id(data), train=cfg, parent=base.key, codebook=codes,
                    projector=proj_cfg)
    model = build_model(profile.model_config("llc", codes.shape[1]), data.image_shape[0], data.num_classes,
                        codebook=torch.from_numpy(codes))
    model.backbone.load_state_dict(base.model.backbone.state_dict())
    model.head.codebook.requires_grad_(False)
    if not stage_cached("phase2cb", key, profile.cache_dir):  # only needed to train
        feats = feats or feature_bundle(base, data, profile.device)
        p1, _ = fit_codes_on_features(feats, codes.shape[1], replace(proj_cfg, phase2_epochs=0, seed=seed), codes,
                                      learn_codebook=False)
        model.head.projector.load_state_dict(p1.head.projector.state_dict())
    set_seed(seed)
    return run_stage("phase2cb", key, model, data.train, "bits", cfg, profile.cache_dir)


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


def _feature_outputs(model: Classifier, feats: DataBundle, device: str = "cpu") -> dict[str, np.ndarray]:
    out = predict(model, feats.test, device=device)
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


# ----------------------------------------------------------------------------- evaluators
def codebook_baselines_table(data: DataBundle, profile: Profile, bits: int, seed: int = 0,
                             feats: DataBundle | None = None, proj_cfg: FeatureConfig | None = None) -> pd.DataFrame:
    """Random, SVD, CCA, error-correcting and LLC-learnt codebooks, each followed by the same
    phase 2 (:func:`phase2_with_codebook`), plus LLC's full pipeline (phase 1 → phase 2) and
    the real-valued baseline's accuracy. SVD uses the baseline's classifier weights, CCA the
    baseline's training features; LLC's codebook is the cached phase-1 model's B(C)."""
    run = run_llc(data, profile, bits, seed)
    feats = feats or feature_bundle(run.baseline, data, profile.device)
    x, y = (t.numpy() for t in feats.train.tensors)
    baseline = classification_metrics(llc_outputs(run.baseline, data, device=profile.device))["accuracy"]
    books = {name: build_codebook(name, data.num_classes, bits, seed=seed, weights=run.baseline.model.head.fc.weight,
                                  features=x, labels=y) for name in ("random", "svd", "cca")}
    ecc = ecc_name(data.num_classes, bits)
    if ecc:
        books[ecc] = build_codebook(ecc, data.num_classes, bits)
    books["llc"] = run.phase1.model.head.class_codes().cpu().numpy()
    rows = []
    for name, codes in books.items():
        trained = phase2_with_codebook(data, profile, run.baseline, codes, seed, feats, proj_cfg)
        rows.append({CODEBOOK: name, PROTOCOL: "baseline backbone + phase 2",
                     **_row(decoder_metrics(llc_outputs(trained, data, device=profile.device), seed))})
    rows.append({CODEBOOK: "llc", PROTOCOL: "full LLC (phase 1 → phase 2)",
                 **_row(decoder_metrics(llc_outputs(run.phase2, data, device=profile.device), seed))})
    df = pd.DataFrame(rows)
    df.insert(0, "bits", bits)
    df.insert(0, "dataset", data.name)
    df["baseline"] = baseline
    return df


def length_sweep_table(feats: DataBundle, bits: list[int], baseline: float, cfg: FeatureConfig,
                       methods: tuple[str, ...] = ("llc", "random")) -> pd.DataFrame:
    """Frozen-backbone protocol at each code length: ``llc`` learns the codebook in phase 1
    (random normal start), ``random`` keeps a fixed random codebook (seed ``cfg.seed``).
    Columns: phase-1 MIPS and MHD, phase-2 decoders (:func:`decoder_metrics`), ties, and the
    real-valued ``baseline`` accuracy for reference."""
    rows = []
    for k in bits:
        for method in methods:
            fixed = None if method == "llc" else build_codebook(method, feats.num_classes, k, seed=cfg.seed)
            p1, p2 = fit_codes_on_features(feats, k, cfg, fixed, learn_codebook=method == "llc")
            m1 = decoder_metrics(_feature_outputs(p1, feats, cfg.device), cfg.seed)
            m2 = decoder_metrics(_feature_outputs(p2, feats, cfg.device), cfg.seed)
            rows.append({"dataset": feats.name.removesuffix("-features"), "codebook": method, "bits": k,
                         "phase1 MIPS": m1["mips"], "phase1 MHD": m1["mhd"], "phase1 ED": m1["ed"], **_row(m2),
                         "baseline": baseline})
    return pd.DataFrame(rows)


def phase2_ablation_table(data: DataBundle, profile: Profile, bits: int, seed: int = 0,
                          warm: tuple[str, ...] = ("svd", "cca"), feats: DataBundle | None = None) -> pd.DataFrame:
    """Phase 2 off/on for phase 1 started from a random codebook (the cached standard run) and
    from each ``warm`` codebook (SVD of the baseline's weights, CCA of its features), all with
    the backbone warm-started from the baseline. "phase 2 off" decodes the phase-1 model's
    own instance codes B(P F(x))."""
    run = run_llc(data, profile, bits, seed)
    starts = {"random": None}
    if warm:
        feats = feats or feature_bundle(run.baseline, data, profile.device)
        x, y = (t.numpy() for t in feats.train.tensors)
        for name in warm:
            starts[name] = build_codebook(name, data.num_classes, bits, seed=seed,
                                          weights=run.baseline.model.head.fc.weight, features=x, labels=y)
    rows = []
    for name, cb in starts.items():
        r = run if cb is None else run_llc(data, profile, bits, seed, codebook=cb)
        for phase2, trained in (("off", r.phase1), ("on", r.phase2)):
            m = decoder_metrics(llc_outputs(trained, data, device=profile.device), seed)
            rows.append({"dataset": data.name, "bits": bits, "codebook init": name, "phase 2": phase2,
                         "MIPS": m["mips"], **_row(m)})
    return pd.DataFrame(rows)


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


# ----------------------------------------------------------------------------- figures
def plot_length_sweep(df: pd.DataFrame, title: str):
    """Accuracy (MHD solid, ED dashed) against code length, one colour per codebook, one panel
    per data set, with each set's real-valued baseline as a horizontal line."""
    sets = list(dict.fromkeys(df["dataset"]))
    fig, axes = plt.subplots(1, len(sets), figsize=(5.5 * len(sets), 4), squeeze=False)
    for ax, name in zip(axes[0], sets):
        d = df[df["dataset"] == name]
        for i, (cb, g) in enumerate(d.groupby("codebook", sort=False)):
            ax.plot(g["bits"], g["MHD"], "o-", color=f"C{i}", label=f"{cb} MHD")
            ax.plot(g["bits"], g["ED"], "s--", color=f"C{i}", label=f"{cb} ED")
        ax.axhline(d["baseline"].iloc[0], color="k", lw=1, label="real-valued baseline")
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
    """Accuracy against mean lookups per query (log scale): ED, ball-r and MHD, one line per
    (data set, k) setting given by the ``setting`` column."""
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for i, (name, g) in enumerate(df.groupby("setting", sort=False)):
        ax.plot(g["lookups per query"], g["accuracy"], "o-", color=f"C{i}", label=name)
        seen = set()
        for _, r in g.iterrows():  # one label per distinct point (larger radii often add nothing)
            xy = (round(r["lookups per query"], 3), round(r["accuracy"], 4))
            if xy not in seen:
                seen.add(xy)
                ax.annotate(r["decoder"], xy, fontsize=7, textcoords="offset points", xytext=(3, -9))
    ax.set_xscale("log")
    ax.set_xlabel("mean hash lookups / code comparisons per query (log scale)")
    ax.set_ylabel("test accuracy (misses count as errors)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_ties(df: pd.DataFrame, title: str):
    """Tie rate (bars, left axis) and the accuracy gain over lowest-index tie breaking of
    score, random and oracle tie breaking (lines, right axis, points), one bar per row of a
    frame with a ``setting`` column and the ``TIE_COLUMNS`` (a :func:`tie_table`)."""
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(df)), 4))
    x = np.arange(len(df))
    ax.bar(x, df["MHD tie rate"], color="C0", label="MHD tie rate")
    ax.set_ylabel("share of test queries with a tie")
    ax.set_xticks(x, df["setting"], rotation=45, ha="right", fontsize=7)
    ax2 = ax.twinx()
    ax2.plot(x, 100 * (df["MHD (score ties)"] - df["MHD"]), "o-", color="C3", label="score − lowest")
    ax2.plot(x, 100 * (df["MHD (random ties)"] - df["MHD"]), "s--", color="C2", label="random − lowest")
    ax2.plot(x, 100 * (df["tie oracle"] - df["MHD"]), "^:", color="C1", label="oracle − lowest")
    ax2.axhline(0, color="grey", lw=0.5)
    ax2.set_ylabel("accuracy gain over lowest-index ties (points)")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=8, loc="upper left")
    ax.set_title(title)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- readings
def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def describe_codebooks(df: pd.DataFrame) -> str:
    """Plain-language reading of :func:`codebook_baselines_table`: LLC's learnt codebook against
    the best fixed codebook under the same protocol, and how the minimum code distance orders MHD."""
    lines = []
    for name, d in df.groupby("dataset", sort=False):
        same = d[d["protocol"] == "baseline backbone + phase 2"].set_index("codebook")
        fixed = same.drop(index="llc")
        llc, full = same.loc["llc"], d[d["protocol"] != "baseline backbone + phase 2"].iloc[0]
        parts = ", ".join(f"{c} {_pct(r['MHD'])}/{_pct(r['ED'])}" for c, r in same.iterrows())
        lines.append(f"{name} (k = {d['bits'].iloc[0]}, real-valued baseline {_pct(d['baseline'].iloc[0])}): "
                     f"MHD/ED after the same phase 2 — {parts}.")
        for col in ("MHD", "ED"):
            best = fixed[col].idxmax()
            gap = 100 * (llc[col] - fixed[col].max())
            lines.append(f"  {col}: LLC's learnt codebook is {gap:+.2f} points against the best fixed codebook "
                         f"({best}, {_pct(fixed[col].max())}): {'better' if gap > 0 else 'not better'}.")
        rho = same["min code distance"].rank().corr(same["MHD"].rank())
        lines.append(f"  Rank correlation of minimum code distance with MHD over the {len(same)} codebooks: {rho:+.2f}; "
                     f"full LLC pipeline (phase 1 → phase 2): MHD {_pct(full['MHD'])}, ED {_pct(full['ED'])}.")
    return "\n".join(lines)


def describe_sweep(df: pd.DataFrame, target: float = 1.5) -> str:
    """Reading of :func:`length_sweep_table`: LLC vs random codes at each k, and the shortest k at
    which LLC's MHD is within ``target`` points of the real-valued baseline."""
    lines = []
    for name, d in df.groupby("dataset", sort=False):
        p = d.pivot(index="bits", columns="codebook", values=["MHD", "ED", "unassigned"])
        base = d["baseline"].iloc[0]
        lines.append(f"{name} (baseline {_pct(base)}):")
        for k, r in p.iterrows():
            lines.append(f"  k = {k}: MHD llc {_pct(r['MHD', 'llc'])} vs random {_pct(r['MHD', 'random'])} "
                         f"({100 * (r['MHD', 'llc'] - r['MHD', 'random']):+.2f}); ED llc {_pct(r['ED', 'llc'])} vs random "
                         f"{_pct(r['ED', 'random'])}; ED unassigned llc {_pct(r['unassigned', 'llc'])}.")
        ok = [k for k, r in p.iterrows() if 100 * (base - r["MHD", "llc"]) <= target]
        wins = int((p["MHD", "llc"] > p["MHD", "random"]).sum())
        lines.append(f"  LLC's MHD first comes within {target} points of the baseline at k = {ok[0]}" if ok else
                     f"  LLC's MHD never comes within {target} points of the baseline up to k = {p.index.max()}")
        lines[-1] += f"; learnt codes beat random codes by MHD at {wins} of {len(p)} lengths."
    return "\n".join(lines)


def describe_phase2(df: pd.DataFrame) -> str:
    """Reading of :func:`phase2_ablation_table`: what phase 2 changes, and warm starts vs random."""
    lines = []
    for (name, k), d in df.groupby(["dataset", "bits"], sort=False):
        t = d.set_index(["codebook init", "phase 2"])
        for init in dict.fromkeys(d["codebook init"]):
            off, on = t.loc[(init, "off")], t.loc[(init, "on")]
            lines.append(f"{name} k = {k}, phase 1 from a {init} codebook: phase 2 moves MHD {_pct(off['MHD'])} → "
                         f"{_pct(on['MHD'])} ({100 * (on['MHD'] - off['MHD']):+.2f}), ED {_pct(off['ED'])} → "
                         f"{_pct(on['ED'])} ({100 * (on['ED'] - off['ED']):+.2f}); phase-1 MIPS {_pct(off['MIPS'])}.")
        ref = t.loc[("random", "on"), "MHD"]
        for init in [i for i in dict.fromkeys(d["codebook init"]) if i != "random"]:
            gap = 100 * (t.loc[(init, "on"), "MHD"] - ref)
            lines.append(f"  warm start from {init}: final MHD {gap:+.2f} points against the random start.")
    return "\n".join(lines)


def describe_ties(df: pd.DataFrame) -> str:
    """Reading of a frame with ``setting`` and the ``TIE_COLUMNS``: tie rates and what each rule gains."""
    lines = [f"{r['setting']}: {_pct(r['MHD tie rate'])} of queries tied (mean {r['mean tied classes']:.2f} classes); "
             f"lowest {_pct(r['MHD'])}, random {_pct(r['MHD (random ties)'])}, score {_pct(r['MHD (score ties)'])} "
             f"({100 * (r['MHD (score ties)'] - r['MHD']):+.2f}), oracle {_pct(r['tie oracle'])}"
             for _, r in df.iterrows()]
    gain = 100 * (df["MHD (score ties)"] - df["MHD"])
    lines.append(f"Breaking ties by the bits' scores beat the lowest index in {int((gain > 0).sum())} of {len(df)} "
                 f"settings (mean {gain.mean():+.2f} points, range {gain.min():+.2f} to {gain.max():+.2f}); the oracle "
                 f"bounds any tie rule at {100 * (df['tie oracle'] - df['MHD']).mean():+.2f} points on average.")
    return "\n".join(lines)


def describe_ball(df: pd.DataFrame, tol: float = 0.001) -> str:
    """Reading of :func:`ball_table` rows (with a ``setting`` column): the smallest radius whose
    accuracy is within ``tol`` of MHD's, and its lookups against MHD's L comparisons."""
    lines = []
    for name, d in df.groupby("setting", sort=False):
        mhd = d[d["decoder"] == "MHD"].iloc[0]
        balls = d[d["decoder"] != "MHD"]
        ed = balls.iloc[0]
        close = balls[balls["accuracy"] >= mhd["accuracy"] - tol]
        s = (f"{name}: ED {_pct(ed['accuracy'])} with 1 lookup ({_pct(ed['unassigned'])} unassigned); "
             f"MHD {_pct(mhd['accuracy'])} with {int(mhd['lookups per query'])} comparisons")
        if len(close):
            c = close.iloc[0]
            cheaper = c["lookups per query"] < mhd["lookups per query"]
            s += (f"; {c['decoder']} matches MHD with {c['lookups per query']:.1f} lookups per query on average "
                  f"(worst case {int(c['max lookups'])}): {'cheaper' if cheaper else 'not cheaper'} than the scan.")
        else:
            s += f"; no radius up to {int(balls['radius'].max())} reaches MHD's accuracy."
        lines.append(s)
    return "\n".join(lines)


# ----------------------------------------------------------------------------- the experiment (notebook 02)
@dataclass(frozen=True)
class AblationsExperiment:
    """Notebook 02's parameters."""

    profile: Profile  # scale of the run
    seed: int = 0  # data subsets, initialisation, random codebooks and shuffling
    datasets: tuple[str, ...] = ("fashion_mnist", "omniglot")  # names in llcpkg.data.DATASETS
    backbone_datasets: tuple[str, ...] | None = None  # sets of the retrained-backbone ablations; None: all (smoke: the first)
    sweep_top: int = 64  # longest code of the length sweep (from ceil(log2 L) up)
    warm_codebooks: tuple[str, ...] = ("svd", "cca")  # codebooks that warm-start phase 1 in section 3

    @classmethod
    def for_profile(cls, profile: Profile, **params) -> "AblationsExperiment":
        """The notebook's parameters (lists become tuples) on ``profile``."""
        return cls(profile, **{k: tuple(v) if isinstance(v, list) else v for k, v in params.items()})

    @property
    def retrained(self) -> tuple[str, ...]:
        """The data sets of the retrained-backbone ablations (sections 1 and 3)."""
        if self.backbone_datasets:
            return tuple(self.backbone_datasets)
        return tuple(self.datasets[:1]) if self.profile.name == "smoke" else tuple(self.datasets)

    @property
    def features(self) -> FeatureConfig:
        """The frozen-backbone protocol's config (:func:`feature_config`)."""
        return feature_config(self.profile, self.seed)


@dataclass
class AblationsSetup:
    """What every section of notebook 02 shares: the data, the cached standard LLC runs of
    notebook 01 (at both default code lengths) and the frozen baseline features."""

    bundles: dict[str, DataBundle]  # data set name -> its bundle
    ks: dict[str, dict[str, int]]  # data set name -> default_bits (rule name -> k)
    runs: dict[tuple[str, int], LLCRun]  # (data set, k) -> the standard run
    feats: dict[str, DataBundle]  # data set name -> baseline features (paper-ratio run)
    baseline_acc: dict[str, float]  # data set name -> the real-valued baseline's test accuracy

    def paper_k(self, name: str) -> int:
        """The paper's code length for data set ``name``."""
        return self.ks[name]["paper ratio"]


def setup(cfg: AblationsExperiment) -> AblationsSetup:
    """Load the data, reuse (or train) the standard runs, extract the baseline features."""
    P = cfg.profile
    bundles = {name: load_bundle(name, P) for name in cfg.datasets}
    ks = {name: default_bits(d.num_classes) for name, d in bundles.items()}
    runs = {(name, k): run_llc(d, P, k, cfg.seed) for name, d in bundles.items() for k in ks[name].values()}
    paper = {name: runs[name, ks[name]["paper ratio"]].baseline for name in cfg.datasets}
    feats = {name: feature_bundle(paper[name], d, P.device) for name, d in bundles.items()}
    baseline_acc = {name: classification_metrics(llc_outputs(paper[name], d, device=P.device))["accuracy"]
                    for name, d in bundles.items()}
    return AblationsSetup(bundles, ks, runs, feats, baseline_acc)


def phase2_lr(cfg: AblationsExperiment, s: AblationsSetup) -> float:
    """Phase 2's peak learning rate in the stage configs of the first data set (profile.phase2_lr)."""
    return stage_configs(cfg.profile, len(s.bundles[cfg.datasets[0]].train), cfg.seed)["phase2"].lr


def codebooks_table(cfg: AblationsExperiment, s: AblationsSetup) -> pd.DataFrame:
    """Section 1: :func:`codebook_baselines_table` at the paper's k on every retrained set."""
    return pd.concat([codebook_baselines_table(s.bundles[n], cfg.profile, s.paper_k(n), cfg.seed, s.feats[n], cfg.features)
                      for n in cfg.retrained], ignore_index=True)


def sweep_table(cfg: AblationsExperiment, s: AblationsSetup) -> pd.DataFrame:
    """Section 2: :func:`length_sweep_table` on every data set, up to ``cfg.sweep_top`` bits."""
    return pd.concat([length_sweep_table(s.feats[n], sweep_bits(s.bundles[n].num_classes, cfg.sweep_top),
                                         s.baseline_acc[n], cfg.features) for n in cfg.datasets], ignore_index=True)


def phase2_table(cfg: AblationsExperiment, s: AblationsSetup) -> pd.DataFrame:
    """Section 3: :func:`phase2_ablation_table` with the warm-start codebooks on every retrained set."""
    return pd.concat([phase2_ablation_table(s.bundles[n], cfg.profile, s.paper_k(n), cfg.seed, tuple(cfg.warm_codebooks),
                                            s.feats[n]) for n in cfg.retrained], ignore_index=True)


def ties_table(cfg: AblationsExperiment, s: AblationsSetup, sweep: pd.DataFrame) -> pd.DataFrame:
    """Section 4: :func:`tie_table` of the standard runs, then the learnt rows of the length sweep."""
    full = tie_table({f"{n} k={k} full": llc_outputs(r.phase2, s.bundles[n], device=cfg.profile.device)
                      for (n, k), r in s.runs.items()}, cfg.seed)
    frozen = sweep[sweep["codebook"] == "llc"].assign(setting=lambda d: d["dataset"] + " k=" + d["bits"].astype(str) + " frozen")
    return pd.concat([full, frozen[["setting", "bits", *TIE_COLUMNS]]], ignore_index=True)


def balls_table(cfg: AblationsExperiment, s: AblationsSetup) -> pd.DataFrame:
    """Section 5: :func:`ball_table` of every standard run, with its ``setting``."""
    return pd.concat([ball_table(llc_outputs(r.phase2, s.bundles[n], device=cfg.profile.device)).assign(setting=f"{n} k={k}")
                      for (n, k), r in s.runs.items()], ignore_index=True)


def run(cfg: AblationsExperiment) -> dict[str, pd.DataFrame]:
    """Every table of notebook 02, by file name (``results/tables/<name>.csv``)."""
    s = setup(cfg)
    sweep = sweep_table(cfg, s)
    return {CODEBOOK_TABLE: codebooks_table(cfg, s), LENGTH_TABLE: sweep, PHASE2_TABLE: phase2_table(cfg, s),
            TIE_TABLE: ties_table(cfg, s, sweep), BALL_TABLE: balls_table(cfg, s)}


def plot_codebooks(df: pd.DataFrame, title: str):
    """MHD and ED accuracy of each codebook of :func:`codebooks_table`, with the real-valued baseline."""
    setting = df["dataset"] + "\n" + df["codebook"] + df["protocol"].map(lambda p: "" if p.startswith("baseline") else "\n(full LLC)")
    return grouped_bars(df.assign(setting=setting), "setting", ["baseline", "MHD", "MHD (score ties)", "ED"],
                        ylabel="test accuracy", title=title, ylim=(0, 1))


def plot_phase2(df: pd.DataFrame, title: str):
    """MIPS, MHD and ED with phase 2 off and on, per codebook initialisation (:func:`phase2_table`)."""
    setting = df["dataset"] + "\n" + df["codebook init"] + " init\nphase 2 " + df["phase 2"]
    return grouped_bars(df.assign(setting=setting), "setting", ["MIPS", "MHD", "ED"], ylabel="test accuracy",
                        title=title, ylim=(0, 1))


# ----------------------------------------------------------------------------- claims
def claim_learnt_codebook(t: Tables) -> list[dict]:
    """The learnt codebook beats random, SVD and CCA codebooks (same backbone protocol, MHD).
    Holds: beats all three; partly: beats at least one."""
    df = t(CODEBOOK_TABLE)
    proto = df[PROTOCOL].iloc[0]
    df = df[df[PROTOCOL] == proto]
    rows = []
    for (name, k), g in df.groupby(["dataset", "bits"]):
        acc = dict(zip(g[CODEBOOK], g[MHD]))
        if "llc" not in acc:
            continue
        others = {c: acc[c] for c in ("random", "svd", "cca") if c in acc}
        wins = [c for c, v in others.items() if acc["llc"] > v]
        rows.append({"claim": "The learnt codebook beats random / SVD / CCA codebooks",
                     "paper": "ImageNet: learnt codes ahead of the baselines (Table 2)", "dataset": name,
                     "ours": f"k={k}, MHD: learnt {pct(acc['llc'])}; " + ", ".join(f"{c} {pct(v)}" for c, v in others.items()),
                     "verdict": HOLDS if len(wins) == len(others) else PARTLY if wins else FAILS})
    return rows


CLAIMS: dict[str, Rule] = {"LLC: learnt codebook best": claim_learnt_codebook}


def verdicts(tables: Tables) -> list[dict]:
    """The claims rows of notebook 02's tables (a missing table: one ``not run`` row per claim)."""
    return collect(CLAIMS, tables)
