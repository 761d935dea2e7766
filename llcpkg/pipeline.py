"""The standard LLC pipeline of a profile: its data, its stage configs and the three cached
stages baseline → phase 1 → phase 2 (Kusupati et al. 2021, §3).

Every experiment builds on :func:`run_llc`, so a baseline or LLC model trained once is
reused by all of them (same data, profile, bits and seed → same cache key). A compressed or
otherwise custom backbone enters through ``backbone`` (a :class:`~llcpkg.train.BackboneHook`)
and reuses the same phase 1 and phase 2.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .data import DataBundle, load_dataset, subset
from .models import check_code_length
from .profiles import Profile, stage_epochs
from .train import BackboneHook, TrainConfig, Trained, train_baseline, train_phase1, train_phase2

__all__ = ["SPLIT_SEED", "load_bundle", "stage_configs", "LLCRun", "run_llc", "with_phase2_lr", "scaled_configs",
           "STAGES"]


SPLIT_SEED = 0  # the one seed of the data subsets: a run's seed never changes the data split (#16)


def load_bundle(name: str, profile: Profile, split_seed: int = SPLIT_SEED, **kw) -> DataBundle:
    """Load a data set and cut it to the profile's subset sizes. The subsets are drawn with
    ``split_seed`` (fixed): a run's seed changes initialisation and data order, not the split."""
    return subset(load_dataset(name, **kw), profile.train_subset, profile.test_subset, seed=split_seed)


def stage_configs(profile: Profile, n_train: int, seed: int = 0) -> dict[str, TrainConfig]:
    """The TrainConfig of each stage (baseline, phase1, phase2) for a profile and data size.

    Baseline and phase 1: SGD at the profile's lr, momentum and weight decay, cosine, label
    smoothing 0.1. Phase 2: ``profile.phase2_lr`` (the one home of phase 2's learning rate;
    override it with ``dataclasses.replace(profile, phase2_lr=...)`` or :func:`with_phase2_lr`),
    no label smoothing (BCE on bits). Epochs: :func:`llcpkg.profiles.stage_epochs`.
    """
    base = TrainConfig(epochs=stage_epochs(profile, "baseline", n_train), lr=profile.scaled_lr(profile.lr),
                       batch_size=profile.batch_size, momentum=profile.momentum, weight_decay=profile.weight_decay,
                       seed=seed, device=profile.device, channels_last=profile.channels_last)
    return {
        "baseline": base,
        "phase1": replace(base, epochs=stage_epochs(profile, "phase1", n_train)),
        "phase2": replace(base, epochs=stage_epochs(profile, "phase2", n_train),
                          lr=profile.scaled_lr(profile.phase2_lr), label_smoothing=0.0),
    }


def with_phase2_lr(configs: dict[str, TrainConfig], lr: float) -> dict[str, TrainConfig]:
    """``configs`` with phase 2's peak learning rate replaced by ``lr`` (e.g. one chosen on validation)."""
    return {**configs, "phase2": replace(configs["phase2"], lr=lr)}


STAGES = ("baseline", "phase1", "phase2")  # the stages of run_llc, in order


def scaled_configs(configs: dict[str, TrainConfig], factor: int,
                   stages: tuple[str, ...] = STAGES) -> dict[str, TrainConfig]:
    """``configs`` with the epochs of ``stages`` (default: all three) multiplied by ``factor``
    (an int ≥ 1); the cosine schedule stretches with them. ``factor = 1`` returns configs equal
    to ``configs``, so their stages share its cache keys (e.g. notebook 01's)."""
    if isinstance(factor, bool) or not isinstance(factor, int) or factor < 1:
        raise ValueError(f"factor must be an int >= 1, got {factor!r}")
    unknown = set(stages) - set(configs)
    if unknown:
        raise KeyError(f"scaled_configs: no stage(s) {sorted(unknown)} in {sorted(configs)}")
    return {name: replace(c, epochs=c.epochs * factor) if name in stages else c for name, c in configs.items()}


@dataclass
class LLCRun:
    """The three trained stages of one LLC run."""

    baseline: Trained
    phase1: Trained | None
    phase2: Trained | None
    bits: int


def run_llc(data: DataBundle, profile: Profile, bits: int, seed: int = 0, codebook: np.ndarray | None = None,
            warm_start: bool = True, until: str = "phase2", configs: dict[str, TrainConfig] | None = None,
            baseline: Trained | None = None, backbone: BackboneHook | None = None,
            cache_dir: Path | str | None = None, stop_after: int | None = None) -> LLCRun:
    """Baseline → phase 1 (warm-started from the baseline's backbone) → phase 2, each cached.

    ``bits`` is checked before anything trains: an int >= 1, with a warning when it is below
    ceil(log2 L) (classes would have to share codes). ``configs``: the stages' TrainConfigs
    (default :func:`stage_configs`). ``baseline`` and ``backbone``: a trained linear-head model
    on a custom backbone and the hook that builds that backbone (e.g. a compressed CNN,
    :mod:`llcpkg.experiments.compression`); phase 1 and phase 2 are then the standard ones.
    ``until``: the last stage trained (baseline | phase1 | phase2; later ones are None).
    ``cache_dir``: default the profile's; ``stop_after``: as in :func:`llcpkg.train.fit` (tests)."""
    if until not in ("baseline", "phase1", "phase2"):
        raise ValueError(f"until must be baseline, phase1 or phase2; got {until!r}")
    check_code_length(bits, data.num_classes)
    cfgs = configs or stage_configs(profile, len(data.train), seed)
    cache = profile.cache_dir if cache_dir is None else cache_dir
    model_cfg = profile.model_config("llc", bits)
    base = baseline or train_baseline(data, model_cfg, cfgs["baseline"], cache, stop_after=stop_after)
    if until == "baseline":
        return LLCRun(base, None, None, bits)
    p1 = train_phase1(data, model_cfg, cfgs["phase1"], cache, warm_start=base if warm_start else None,
                      codebook=codebook, stop_after=stop_after, backbone=backbone)
    p2 = train_phase2(p1, data, cfgs["phase2"], cache, stop_after=stop_after) if until == "phase2" else None
    return LLCRun(base, p1, p2, bits)
