"""Run profiles: how big an experiment is, chosen by name.

``smoke`` is for CI (tiny subsets, one epoch, results to an ignored folder so committed
results are never overwritten); ``cpu`` is the default of ``make reproduce`` (real
results on a 2-core laptop CPU, written to ``results/``); ``gpu`` is the same recipe
with more epochs for a machine with an accelerator; ``imagenet`` is the official LLC recipe
(ResNet-50 on ImageNet-1K, ``../shared/README.md`` §1) for ``llcpkg.distributed`` on GPUs.
A notebook's papermill parameter
``profile`` defaults to ``$LLC_PROFILE``, else ``cpu``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from . import checks
from .models import BACKBONES
from .results import project_root

__all__ = ["Profile", "PROFILES", "get_profile", "default_profile_name"]


@dataclass(frozen=True)
class Profile:
    """Scale of a run."""

    name: str
    train_subset: int | None  # training images per data set (None = all)
    test_subset: int | None  # test images per data set (None = all)
    baseline_epochs: int  # epochs of the real-valued baseline
    phase1_epochs: int  # epochs of LLC phase 1 (warm-started from the baseline backbone)
    phase2_epochs: int  # epochs of LLC phase 2
    batch_size: int  # training batch size
    width: int  # channels of the small CNN backbone
    device: str = "cpu"  # torch device for training and inference
    backbone: str = "smallcnn"  # smallcnn for 28×28 sets; resnet18/resnet50 for larger images
    channels_last: bool = False  # NHWC layout for convolutions
    lr: float = 0.1  # peak learning rate of the baseline and phase 1 (cosine decay to 0)
    phase2_lr: float = 0.1  # peak learning rate of phase 2
    lr_batch: int | None = None  # linear scaling: both rates × batch_size / lr_batch (None: as given)
    momentum: float = 0.9  # SGD momentum
    weight_decay: float = 5e-4  # L2 penalty (the codebook is exempt)
    logit_scale: str = "sqrt"  # LLC head: "sqrt" (logits / sqrt(k)) or "none" (the official code)

    def scaled_lr(self, lr: float) -> float:
        """``lr`` for this profile's batch size: lr × batch_size / lr_batch (linear scaling rule)."""
        return lr * self.batch_size / self.lr_batch if self.lr_batch else lr

    def __post_init__(self):
        checks.require_str(self, "name")
        checks.require_int(self, "train_subset", minimum=1, optional=True)
        checks.require_int(self, "test_subset", minimum=1, optional=True)
        for field in ("baseline_epochs", "phase1_epochs", "phase2_epochs", "batch_size", "width"):
            checks.require_int(self, field, minimum=1)
        checks.require_str(self, "device")
        checks.require_choice(self, "backbone", BACKBONES)
        checks.require_bool(self, "channels_last")

    @property
    def results_dir(self) -> Path:
        """``$LLC_RESULTS``, else ``results/`` for real profiles and an ignored scratch folder for smoke runs."""
        if os.environ.get("LLC_RESULTS"):
            return Path(os.environ["LLC_RESULTS"])
        root = project_root()
        return root / "results" if self.name != "smoke" else root / ".cache" / "smoke-results"

    @property
    def cache_dir(self) -> Path:
        """Where trained checkpoints are cached (``$LLC_CACHE`` or ``.cache/checkpoints``)."""
        return Path(os.environ.get("LLC_CACHE", project_root() / ".cache" / "checkpoints"))


PROFILES: dict[str, Profile] = {
    "smoke": Profile("smoke", train_subset=1024, test_subset=512, baseline_epochs=1,
                     phase1_epochs=1, phase2_epochs=1, batch_size=128, width=8),
    "cpu": Profile("cpu", train_subset=None, test_subset=None, baseline_epochs=5,
                   phase1_epochs=4, phase2_epochs=3, batch_size=256, width=16, channels_last=True),
    "gpu": Profile("gpu", train_subset=None, test_subset=None, baseline_epochs=30,
                   phase1_epochs=30, phase2_epochs=15, batch_size=256, width=64, device="cuda",
                   channels_last=True),
    # the official recipe: SGD momentum 0.875, weight decay 2^-15 ≈ 3.05e-5, label smoothing 0.1
    # (TrainConfig's default), cosine lr 0.1 per 256 images for 100 epochs, then phase 2 at 0.01
    # for 25; the baseline is trained with the phase-1 recipe
    "imagenet": Profile("imagenet", train_subset=None, test_subset=None, baseline_epochs=100,
                        phase1_epochs=100, phase2_epochs=25, batch_size=256, width=64, device="cuda",
                        backbone="resnet50", channels_last=True, lr=0.1, phase2_lr=0.01, lr_batch=256,
                        momentum=0.875, weight_decay=2 ** -15, logit_scale="none"),
}


def default_profile_name() -> str:
    """``$LLC_PROFILE`` if set, else ``cpu``."""
    return os.environ.get("LLC_PROFILE", "cpu")


def get_profile(name: str | None = None, **overrides) -> Profile:
    """Look up a profile by name (default: :func:`default_profile_name`), with field overrides."""
    name = name or default_profile_name()
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose one of {sorted(PROFILES)}")
    return replace(PROFILES[name], **overrides) if overrides else PROFILES[name]
