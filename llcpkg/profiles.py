"""Run profiles: how big an experiment is, chosen by name.

``smoke`` is for CI (tiny subsets, one epoch, results to an ignored folder so committed
results are never overwritten); ``cpu`` is the default of ``make reproduce`` (real
results on a 2-core laptop CPU, written to ``results/``); ``gpu`` is the same recipe
with more epochs for a machine with an accelerator; ``imagenet`` is the official LLC recipe
(ResNet-50 on ImageNet-1K, ``../shared/README.md`` §1) for ``llcpkg.distributed`` on GPUs.
A notebook's papermill parameter
``profile`` defaults to :func:`default_profile_name` (``$LLC_PROFILE``, else ``cpu``).

Every setting that depends on the profile has its home here: the stages' epochs
(:func:`stage_epochs`, the one rule that turns a profile and a data size into epochs), the
learning rates, ``logit_scale`` and the network (:meth:`Profile.model_config`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from . import checks
from .models import BACKBONES, DEFAULT_LOGIT_SCALE, ModelConfig
from .results import project_root

__all__ = ["Profile", "PROFILES", "get_profile", "default_profile_name", "scaled_epochs", "stage_epochs",
           "EPOCH_RULES", "llc_epoch_split"]


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
    logit_scale: str = DEFAULT_LOGIT_SCALE  # LLC head: "sqrt" (logits / sqrt(k)) or "none" (the official code)
    retrieval_epochs: int = 3  # epochs after the baseline of every retrieval model (notebook 03)
    epoch_reference: int = 60_000  # training-set size at which a stage gets its profile's epochs (scaled_epochs)
    epoch_cap: int = 12  # smaller sets get proportionally more epochs, at most this many times as many
    seeds: tuple[int, ...] = (0,)  # the seeds every verdict is made over (llcpkg.seeds.resolve_seeds; $LLC_SEEDS overrides)
    feature_dim: int | None = None  # the small CNN's feature dimension d (None: 4 · width; ModelConfig.feature_dim)

    def model_config(self, head: str = "linear", bits: int = 0) -> ModelConfig:
        """The network of this profile (backbone, width, logit scale) with ``head`` and ``bits``."""
        return ModelConfig(self.backbone, self.width, head, bits, self.logit_scale, self.feature_dim)

    def scaled_lr(self, lr: float) -> float:
        """``lr`` for this profile's batch size: lr × batch_size / lr_batch (linear scaling rule)."""
        return lr * self.batch_size / self.lr_batch if self.lr_batch else lr

    def __post_init__(self):
        checks.require_str(self, "name")
        checks.require_int(self, "train_subset", minimum=1, optional=True)
        checks.require_int(self, "test_subset", minimum=1, optional=True)
        checks.require_int(self, "feature_dim", minimum=1, optional=True)
        for field in ("baseline_epochs", "phase1_epochs", "phase2_epochs", "retrieval_epochs", "batch_size", "width",
                      "epoch_reference", "epoch_cap"):
            checks.require_int(self, field, minimum=1)
        checks.require_str(self, "device")
        checks.require_choice(self, "backbone", BACKBONES)
        checks.require_bool(self, "channels_last")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds) or any(
                isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in self.seeds):
            raise ValueError(f"Profile.seeds must be distinct non-negative ints, got {self.seeds!r}")

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
    # smoke: one pass per stage (epoch_cap 1 turns off the small-set rule, which gave 12 passes
    # here): it checks that the code runs, its numbers are meaningless, and CI's nbval takes half the time
    "smoke": Profile("smoke", train_subset=1024, test_subset=512, baseline_epochs=1,
                     phase1_epochs=1, phase2_epochs=1, batch_size=128, width=8, retrieval_epochs=1, epoch_cap=1),
    "cpu": Profile("cpu", train_subset=None, test_subset=None, baseline_epochs=5,
                   phase1_epochs=4, phase2_epochs=3, batch_size=256, width=16, channels_last=True, seeds=(0, 1, 2)),
    "gpu": Profile("gpu", train_subset=None, test_subset=None, baseline_epochs=30,
                   phase1_epochs=30, phase2_epochs=15, batch_size=256, width=64, device="cuda",
                   channels_last=True, retrieval_epochs=45, seeds=(0, 1, 2)),
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


# ----------------------------------------------------------------------------- epochs
def scaled_epochs(epochs: int, n_train: int, reference: int = 60_000, cap: int = 12) -> int:
    """Stage length for a data set of ``n_train`` images: ``epochs`` for sets of at least
    ``reference`` images; small sets (the Omniglot subset) get proportionally more, at most
    ``cap`` × as many, so every set sees a comparable number of steps."""
    return epochs * min(cap, max(1, round(reference / max(n_train, 1))))


EPOCH_RULES: dict[str, tuple[str, object]] = {
    # rule -> (what it is for, epochs of a profile before scaling to the data size)
    "baseline": ("the real-valued baseline", lambda p: p.baseline_epochs),
    "phase1": ("LLC phase 1", lambda p: p.phase1_epochs),
    "phase2": ("LLC phase 2", lambda p: p.phase2_epochs),
    "features": ("both phases on frozen backbone features (notebook 02)", lambda p: max(1, round(2.5 * p.phase1_epochs))),
    "retrieval": ("every retrieval model after the baseline (notebook 03)", lambda p: p.retrieval_epochs),
    "mlp": ("the compression grid's MLPs (notebook 06)", lambda p: max(1, p.baseline_epochs // 2)),
    "cnn": ("the compressed CNN and its LLC phase 1; phase 2 one fewer (notebook 06)", lambda p: max(1, p.baseline_epochs - 1)),
}


def stage_epochs(profile: Profile, rule: str, n_train: int | None = None) -> int:
    """Epochs of ``rule`` (a key of ``EPOCH_RULES``) for ``profile``; scaled to a training set
    of ``n_train`` images by :func:`scaled_epochs` (the profile's reference and cap) if given."""
    if rule not in EPOCH_RULES:
        raise ValueError(f"unknown epoch rule {rule!r}; choose one of {sorted(EPOCH_RULES)}")
    epochs = EPOCH_RULES[rule][1](profile)
    return epochs if n_train is None else scaled_epochs(epochs, n_train, profile.epoch_reference, profile.epoch_cap)


def llc_epoch_split(epochs: int) -> tuple[int, int]:
    """LLC's share of an epoch budget: phase 2 gets a third (at least 1), phase 1 the rest (at least 1)."""
    p2 = max(1, epochs // 3)
    return max(1, epochs - p2), p2
