"""The standard experiment pipeline: data for a profile, the three cached LLC stages, and
the classification evaluator (the paper's Table 1) that returns a DataFrame.

Every notebook builds on these, so a baseline or LLC model trained once is reused by all
of them (same data, profile, bits and seed → same cache key).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch

from . import decode
from .codebooks import codebook_stats
from .data import DataBundle, check_labels, load_dataset, subset
from .models import ModelConfig, check_code_length
from .profiles import Profile
from .train import TrainConfig, Trained, predict, train_baseline, train_phase1, train_phase2

__all__ = ["load_bundle", "stage_configs", "LLCRun", "run_llc", "llc_outputs", "classification_metrics",
           "default_bits"]


def default_bits(num_classes: int) -> dict[str, int]:
    """k at the paper's ratio, 2·ceil(log2 L) (20 bits for ImageNet's 1000 classes, 8 for 10,
    16 for 242), and the minimum that can give every class its own code, ceil(log2 L)."""
    lo = math.ceil(math.log2(num_classes))
    return {"paper ratio": 2 * lo, "minimum": lo}


def load_bundle(name: str, profile: Profile, seed: int = 0, **kw) -> DataBundle:
    """Load a data set and cut it to the profile's subset sizes."""
    return subset(load_dataset(name, **kw), profile.train_subset, profile.test_subset, seed=seed)


def scaled_epochs(epochs: int, n_train: int, reference: int = 60_000, cap: int = 12) -> int:
    """Stage length for a data set of ``n_train`` images: the profile's epochs for sets of at
    least ``reference`` images; small sets (the Omniglot subset) get proportionally more, at
    most ``cap`` × as many, so every set sees a comparable number of steps."""
    return epochs * min(cap, max(1, round(reference / max(n_train, 1))))


def stage_configs(profile: Profile, n_train: int, seed: int = 0) -> dict[str, TrainConfig]:
    """The TrainConfig of each stage (baseline, phase1, phase2) for a profile and data size.

    Baseline and phase 1: SGD at the profile's lr, momentum and weight decay (cpu, smoke, gpu:
    lr 0.1, momentum 0.9; imagenet: the official 0.1 per 256 images, 0.875), cosine, label
    smoothing 0.1. Phase 2: the profile's phase-2 lr, no label smoothing (BCE on bits). The
    official lr is 0.01 (after 100 ImageNet epochs; the imagenet profile); on a Fashion-MNIST
    validation split carved from the training set, 0.1 gave the best MHD and ED of
    {0.01, 0.05, 0.1} — rerun the choice with :func:`phase2_lr_table` (notebook 01).
    """
    base = TrainConfig(epochs=scaled_epochs(profile.baseline_epochs, n_train), lr=profile.scaled_lr(profile.lr),
                       batch_size=profile.batch_size, momentum=profile.momentum, weight_decay=profile.weight_decay,
                       seed=seed, device=profile.device, channels_last=profile.channels_last)
    return {
        "baseline": base,
        "phase1": replace(base, epochs=scaled_epochs(profile.phase1_epochs, n_train)),
        "phase2": replace(base, epochs=scaled_epochs(profile.phase2_epochs, n_train),
                          lr=profile.scaled_lr(profile.phase2_lr), label_smoothing=0.0),
    }


@dataclass
class LLCRun:
    """The three trained stages of one LLC run."""

    baseline: Trained
    phase1: Trained
    phase2: Trained | None
    bits: int


def run_llc(data: DataBundle, profile: Profile, bits: int, seed: int = 0, codebook: np.ndarray | None = None,
            warm_start: bool = True, phase2: bool = True, configs: dict[str, TrainConfig] | None = None) -> LLCRun:
    """Baseline → phase 1 (warm-started from the baseline's backbone) → phase 2, each cached.

    ``bits`` is checked before anything trains: an int >= 1, with a warning when it is below
    ceil(log2 L) (classes would have to share codes)."""
    check_code_length(bits, data.num_classes)
    cfgs = configs or stage_configs(profile, len(data.train), seed)
    model_cfg = ModelConfig(backbone=profile.backbone, width=profile.width, bits=bits, logit_scale=profile.logit_scale)
    base = train_baseline(data, model_cfg, cfgs["baseline"], profile.cache_dir)
    p1 = train_phase1(data, model_cfg, cfgs["phase1"], profile.cache_dir,
                      warm_start=base if warm_start else None, codebook=codebook)
    p2 = train_phase2(p1, data, cfgs["phase2"], profile.cache_dir) if phase2 else None
    return LLCRun(base, p1, p2, bits)


def llc_outputs(trained: Trained, data: DataBundle, split: str = "test", device: str = "cpu") -> dict[str, np.ndarray]:
    """Predictions of a trained model on a split, plus the class codes (L, k) in {0, 1} for LLC heads."""
    out = predict(trained.model, getattr(data, split), device=device)
    head = trained.model.head
    if hasattr(head, "class_codes"):
        out["class_bits"] = (head.class_codes().cpu().numpy() > 0).astype(np.uint8)
    return out


def classification_metrics(out: dict[str, np.ndarray], tie: str = "lowest") -> dict[str, float]:
    """Accuracy of every decoder that applies to a model's outputs.

    Linear head: ``accuracy`` (argmax). LLC head: ``mips`` (argmax of B(C)·P F(x)), ``mhd``
    (ties broken by ``tie``), ``mhd_score`` (ties broken by the bits' real-valued scores),
    ``ed`` (unassigned count as errors), ``unassigned``, ``mhd_tie_rate`` (share of
    queries with more than one nearest class code) and ``distinct_codes``. Labels outside
    [0, L) raise ValueError before anything is computed.
    """
    y = out["labels"]
    check_labels(y, len(out["class_bits"]) if "class_bits" in out else out["outputs"].shape[1], "evaluation labels")
    if "class_bits" not in out:
        return {"accuracy": float((out["outputs"].argmax(1) == y).mean())}
    codes, z = out["class_bits"], out["bit_logits"]
    q = decode.signs_to_bits(z)
    mhd = decode.mhd_decode(q, codes, tie=tie)
    mhd_s = decode.mhd_decode(q, codes, tie="score", scores=z)
    ed = decode.ed_decode(q, codes)
    return {
        "mips": float((decode.mips_decode(z, 2.0 * codes - 1.0) == y).mean()),
        "mhd": float((mhd.pred == y).mean()),
        "mhd_score": float((mhd_s.pred == y).mean()),
        "ed": float((ed == y).mean()),
        "unassigned": float((ed < 0).mean()),
        "mhd_tie_rate": float((mhd.n_tied > 1).mean()),
        "distinct_codes": int(len(np.unique(codes, axis=0))),
        "min_code_distance": int(codebook_stats(codes)["min distance"]),
    }


def classification_table(data: DataBundle, profile: Profile, bits: dict[str, int], seed: int = 0) -> pd.DataFrame:
    """The Table-1 analogue for one data set: one row per code length.

    Columns: accuracies of the real-valued baseline, phase-1 MIPS, phase-1 MHD (instance
    codes taken straight after phase 1), phase-2 MHD (ties → lowest index, the official
    rule), phase-2 MHD with ties broken by the bits' scores, phase-2 ED; the share of test
    images ED leaves unassigned, the MHD tie rate, the number of distinct class codes and
    their minimum pairwise Hamming distance.
    """
    rows = []
    for rule, k in bits.items():
        run = run_llc(data, profile, k, seed)
        base = classification_metrics(llc_outputs(run.baseline, data))
        p1 = classification_metrics(llc_outputs(run.phase1, data))
        p2 = classification_metrics(llc_outputs(run.phase2, data))
        rows.append({
            "dataset": data.name, "classes": data.num_classes, "bits": k, "bits rule": rule,
            "baseline": base["accuracy"], "phase1 MIPS": p1["mips"], "phase1 MHD": p1["mhd"],
            "phase2 MHD": p2["mhd"], "phase2 MHD (score ties)": p2["mhd_score"], "phase2 ED": p2["ed"],
            "ED unassigned": p2["unassigned"], "MHD tie rate": p2["mhd_tie_rate"],
            "distinct codes": p2["distinct_codes"], "min code distance": p2["min_code_distance"],
        })
    return pd.DataFrame(rows)


def step_time_table(data: DataBundle, profile: Profile, bits: int, repeats: int = 10) -> pd.DataFrame:
    """Training-step time of the baseline, phase 1 and phase 2 on one batch of ``data`` (same
    process, same batch, untrained models of the profile's architecture), and each relative
    to the baseline's."""
    from .models import build_model
    from .timing import train_step_seconds
    from .train import LOSSES, iterate_batches

    cfg = stage_configs(profile, len(data.train))["baseline"]
    x, y = next(iterate_batches(data.train, profile.batch_size, shuffle=True))
    fmt = torch.channels_last if profile.channels_last else torch.contiguous_format
    x = x.contiguous(memory_format=fmt)
    rows = []
    for stage, head, loss in [("baseline", "linear", "ce"), ("phase1", "llc", "ce"), ("phase2", "llc", "bits")]:
        model = build_model(ModelConfig(profile.backbone, profile.width, head, bits), data.image_shape[0],
                            data.num_classes).to(memory_format=fmt)
        rows.append({"dataset": data.name, "stage": stage, "bits": bits if head == "llc" else None,
                     "batch": len(y), "seconds per step": train_step_seconds(model, LOSSES[loss], cfg, x, y, repeats)})
    df = pd.DataFrame(rows)
    df["relative to baseline"] = df["seconds per step"] / df["seconds per step"].iloc[0]
    return df


def describe_classification(table: pd.DataFrame, mhd_target: float = 1.5, ed_target: float = 5.0) -> str:
    """Plain-language reading of a ``classification_table``: gaps to the baseline in accuracy
    points and whether the project's targets (MHD within ``mhd_target``, ED within ``ed_target``
    points of the baseline) are met."""
    lines = []
    for _, r in table.iterrows():
        gap = {c: 100 * (r["baseline"] - r[c]) for c in ("phase1 MIPS", "phase2 MHD", "phase2 MHD (score ties)", "phase2 ED")}
        lines.append(
            f"{r['dataset']} (L={r['classes']}, k={r['bits']}, {r['bits rule']}): baseline {100 * r['baseline']:.2f}%; "
            f"phase-1 MIPS {100 * r['phase1 MIPS']:.2f}% (gap {gap['phase1 MIPS']:+.2f}); "
            f"MHD {100 * r['phase2 MHD']:.2f}% (gap {gap['phase2 MHD']:+.2f}, target ≤ {mhd_target}: "
            f"{'met' if gap['phase2 MHD'] <= mhd_target else 'missed'}); with ties broken by bit scores "
            f"{100 * r['phase2 MHD (score ties)']:.2f}% (gap {gap['phase2 MHD (score ties)']:+.2f}); "
            f"ED {100 * r['phase2 ED']:.2f}% (gap {gap['phase2 ED']:+.2f}, target ≤ {ed_target}: "
            f"{'met' if gap['phase2 ED'] <= ed_target else 'missed'}), {100 * r['ED unassigned']:.1f}% unassigned; "
            f"{r['distinct codes']}/{r['classes']} distinct class codes, minimum distance {r['min code distance']}; "
            f"phase 2 {'raised' if r['phase2 MHD'] > r['phase1 MHD'] else 'did not raise'} MHD over the phase-1 codes "
            f"({100 * r['phase1 MHD']:.2f}% → {100 * r['phase2 MHD']:.2f}%)."
        )
    return "\n".join(lines)


def validation_bundle(data: DataBundle, val_size: int, seed: int = 0) -> DataBundle:
    """Carve ``val_size`` images out of the training split as the evaluation split (the test
    split is left alone), for choosing settings without touching the test set."""
    from .data import take

    order = np.random.default_rng(seed).permutation(len(data.train))
    return DataBundle(f"{data.name}-val{val_size}", take(data.train, np.sort(order[val_size:])),
                      take(data.train, np.sort(order[:val_size])), data.class_names, data.groups, data.image_shape)


def phase2_lr_table(data: DataBundle, profile: Profile, bits: int, lrs: tuple[float, ...] = (0.01, 0.05, 0.1),
                    val_size: int = 5000, seed: int = 0) -> pd.DataFrame:
    """Phase 2's learning rate chosen on a validation split: baseline and phase 1 are trained on
    the rest of the training set, then one phase 2 per lr; accuracies are on the validation split."""
    val = validation_bundle(data, min(val_size, len(data.train) // 5), seed)
    cfgs = stage_configs(profile, len(val.train), seed)
    rows = []
    for lr in lrs:
        run = run_llc(val, profile, bits, seed, configs={**cfgs, "phase2": replace(cfgs["phase2"], lr=lr)})
        m = classification_metrics(llc_outputs(run.phase2, val))
        rows.append({"dataset": data.name, "bits": bits, "phase2 lr": lr, "phase2 epochs": cfgs["phase2"].epochs,
                     "val MHD": m["mhd"], "val MHD (score ties)": m["mhd_score"], "val ED": m["ed"],
                     "val unassigned": m["unassigned"]})
    base = classification_metrics(llc_outputs(run.baseline, val))["accuracy"]
    df = pd.DataFrame(rows)
    df["val baseline"] = base
    df["chosen"] = df["val MHD"] == df["val MHD"].max()
    return df
