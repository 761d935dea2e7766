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

from . import decode
from .data import DataBundle, load_dataset, subset
from .models import ModelConfig
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


def _epochs(epochs: int, n_train: int, reference: int = 20_000, cap: int = 12) -> int:
    """Stage length for a data set of ``n_train`` images: the profile's epochs for sets of at
    least ``reference`` images; small sets (the Omniglot subset) get proportionally more, at
    most ``cap`` × as many, so every set sees a comparable number of steps."""
    return epochs * min(cap, max(1, round(reference / max(n_train, 1))))


def stage_configs(profile: Profile, n_train: int, seed: int = 0) -> dict[str, TrainConfig]:
    """The TrainConfig of each stage (baseline, phase1, phase2) for a profile and data size.

    Baseline and phase 1: SGD lr 0.1, momentum 0.9, cosine, label smoothing 0.1.
    Phase 2: lr 0.01 (the official value), no label smoothing (BCE on bits).
    """
    base = TrainConfig(epochs=_epochs(profile.baseline_epochs, n_train), lr=0.1, batch_size=profile.batch_size,
                       seed=seed, device=profile.device, channels_last=profile.channels_last)
    return {
        "baseline": base,
        "phase1": replace(base, epochs=_epochs(profile.phase1_epochs, n_train)),
        "phase2": replace(base, epochs=_epochs(profile.phase2_epochs, n_train), lr=0.01, label_smoothing=0.0),
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
    """Baseline → phase 1 (warm-started from the baseline's backbone) → phase 2, each cached."""
    cfgs = configs or stage_configs(profile, len(data.train), seed)
    model_cfg = ModelConfig(backbone=profile.backbone, width=profile.width, bits=bits)
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
        out["class_bits"] = (head.class_codes().numpy() > 0).astype(np.uint8)
    return out


def classification_metrics(out: dict[str, np.ndarray], tie: str = "lowest") -> dict[str, float]:
    """Accuracy of every decoder that applies to a model's outputs.

    Linear head: ``accuracy`` (argmax). LLC head: ``mips`` (argmax of B(C)·P F(x)), ``mhd``
    (ties broken by ``tie``), ``mhd_score`` (ties broken by the bits' real-valued scores),
    ``ed`` (unassigned count as errors), ``unassigned``, ``mhd_tie_rate`` (share of
    queries with more than one nearest class code) and ``distinct_codes``.
    """
    y = out["labels"]
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
        "min_code_distance": int(_min_pairwise_distance(codes)),
    }


def _min_pairwise_distance(codes: np.ndarray) -> int:
    d = decode.hamming_distances(codes, codes).astype(np.int64)
    np.fill_diagonal(d, codes.shape[1] + 1)
    return int(d.min())
