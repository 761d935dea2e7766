"""Backbones and heads.

A model is ``Classifier(backbone, head)``: the backbone F(x) gives d-dim features; the
head turns them into outputs. Heads:

- ``LinearHead``: the real-valued "all-powerful" baseline, logits = W F(x) + b (L outputs).
- ``LLCHead`` (Kusupati et al. 2021, §3): projector P (d→k) and a real codebook C (L×k)
  binarised by B(·) = sign with a straight-through estimator. ``logits`` gives phase 1's
  B(C)·P F(x) (L outputs); ``bit_logits`` gives P F(x) (k outputs), whose signs are the
  instance code g(x) and which phase 2 trains as k binary problems.
- ``HashNetHead`` and ``GreedyHashHead``: the deep-hashing baselines (their losses and the
  method notes are in :mod:`llcpkg.hashing`).
- ``EmbeddingHead``: a real-valued m-dim embedding with a linear classifier on it (the
  retrieval reference "m-dim real representations").

Heads are built by name from the ``HEADS`` registry (:func:`build_head`); a new head is one
class and one ``@register_head`` line. ``DEFAULT_LOGIT_SCALE`` is the one default of the LLC
head's logit scale (profiles, configs and heads built directly all read it).
"""
from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from . import checks

__all__ = ["sign_ste", "SmallCNN", "make_backbone", "LinearHead", "LLCHead", "HashNetHead", "GreedyHashHead", "EmbeddingHead",
           "Classifier", "ModelConfig", "build_model", "build_head", "register_head", "HEADS", "check_code_length",
           "BACKBONES", "LOGIT_SCALES", "DEFAULT_LOGIT_SCALE"]

BACKBONES = ("smallcnn", "resnet18", "resnet50")


class _SignSTE(torch.autograd.Function):
    """Forward: sign with sign(0) = +1. Backward: the identity (the official LLC rule)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return torch.where(x >= 0, 1.0, -1.0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad


def sign_ste(x: torch.Tensor) -> torch.Tensor:
    """Binarise to {−1, +1} (0 → +1) with the straight-through (identity) gradient."""
    return _SignSTE.apply(x)


def _check_images(x: torch.Tensor, in_channels: int, who: str) -> None:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        what = x.dtype if isinstance(x, torch.Tensor) else type(x).__name__
        raise TypeError(f"{who} expects float image tensors (B, {in_channels}, H, W); got {what}: convert with "
                        "torch.as_tensor(x).float() (and normalise uint8 images, e.g. / 255)")
    if x.dim() != 4 or x.shape[1] != in_channels:
        raise ValueError(f"{who} expects images (B, {in_channels}, H, W); got shape {tuple(x.shape)}")


def _conv_block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class SmallCNN(nn.Module):
    """Five 3×3 conv layers (width w, w, 2w, 2w, 4w) with two max-pools and global average
    pooling: (B, C, H, W) → (B, d), d = 4w. Fast on a CPU for 28×28 inputs. ``out_dim``: the
    last layer's channels d instead of 4w (e.g. d ≥ L at a small width: the last layer runs on
    7×7 maps, so d = 256 at w = 16 costs about 1.3× a step where w = 64 costs about 16×)."""

    def __init__(self, in_channels: int = 1, width: int = 32, out_dim: int | None = None):
        super().__init__()
        w = width
        d = 4 * w if out_dim is None else int(out_dim)
        self.in_channels = in_channels
        self.features = nn.Sequential(
            _conv_block(in_channels, w), nn.MaxPool2d(2), _conv_block(w, w),
            _conv_block(w, 2 * w), nn.MaxPool2d(2), _conv_block(2 * w, 2 * w),
            _conv_block(2 * w, d), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.out_dim = d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_images(x, self.in_channels, "SmallCNN")
        return self.features(x)


class _TorchvisionBackbone(nn.Module):
    """A torchvision ResNet with its classifier removed: (B, 3, H, W) → (B, d)."""

    def __init__(self, name: str, in_channels: int = 3):
        super().__init__()
        import torchvision

        net = getattr(torchvision.models, name)(weights=None)
        if in_channels != 3:
            net.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        self.out_dim = net.fc.in_features
        net.fc = nn.Identity()
        self.net, self.in_channels = net, in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_images(x, self.in_channels, type(self).__name__)
        return self.net(x)


def make_backbone(name: str, in_channels: int, width: int = 32, feature_dim: int | None = None) -> nn.Module:
    """``smallcnn`` (28×28 grey; ``feature_dim``: its d instead of 4·width), or ``resnet18`` /
    ``resnet50`` (torchvision, for larger images; ``feature_dim`` must be None)."""
    if name == "smallcnn":
        return SmallCNN(in_channels, width, feature_dim)
    if feature_dim is not None:
        raise ValueError(f"feature_dim is for the smallcnn backbone, not {name!r}")
    if name in {"resnet18", "resnet50"}:
        return _TorchvisionBackbone(name, in_channels)
    raise ValueError(f"unknown backbone {name!r}; choose smallcnn, resnet18 or resnet50")


class LinearHead(nn.Module):
    """Real-valued linear classifier on full features: (B, d) → (B, L) logits."""

    def __init__(self, dim: int, num_classes: int):
        super().__init__()
        self.fc = nn.Linear(dim, num_classes)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.fc(feats)


LOGIT_SCALES = {"none": lambda k: 1.0, "sqrt": lambda k: k ** -0.5}
DEFAULT_LOGIT_SCALE = "sqrt"  # the LLC head's logit scale everywhere but the imagenet profile (see LLCHead)


class LLCHead(nn.Module):
    """Projector P (d→k) and real codebook C (L×k), binarised with ``sign_ste`` when used.

    ``forward``/``logits``: (B, d) → (B, L) = s · P F(x) · B(C)ᵀ (phase 1 and MIPS decoding).
    ``bit_logits``: (B, d) → (B, k) = P F(x) (phase 2; instance code = its sign).
    ``logit_scale`` s: 1 in the official code; ``1/sqrt(k)`` ("sqrt") keeps the logits' scale
    independent of k — without it the effective step on P grows with k and phase 1 diverged at
    lr 0.1 with k = 16 on 242 classes (notebook 01). Decoding is unaffected (argmax, signs).
    """

    def __init__(self, dim: int, num_classes: int, bits: int, codebook: torch.Tensor | None = None,
                 logit_scale: str = DEFAULT_LOGIT_SCALE):
        super().__init__()
        if bits < 1:
            raise ValueError(f"bits must be >= 1, got {bits}")
        if num_classes < 2:
            raise ValueError(f"need at least 2 classes, got {num_classes}")
        self.projector = nn.Linear(dim, bits)
        if codebook is None:  # kaiming normal with fan_in = k, as the official code initialises it
            codebook = torch.randn(num_classes, bits) * (2.0 / bits) ** 0.5
        codebook = torch.as_tensor(codebook, dtype=torch.float32)
        if codebook.shape != (num_classes, bits):
            raise ValueError(f"codebook must be ({num_classes}, {bits}); got {tuple(codebook.shape)}")
        self.codebook = nn.Parameter(codebook.clone())
        if logit_scale not in LOGIT_SCALES:
            raise ValueError(f"logit_scale must be one of {sorted(LOGIT_SCALES)}, got {logit_scale!r}")
        self.scale = LOGIT_SCALES[logit_scale](bits)

    @property
    def bits(self) -> int:
        return self.codebook.shape[1]

    def class_codes(self) -> torch.Tensor:
        """B(C): (L, k) in {−1, +1}, without gradient."""
        return torch.where(self.codebook.detach() >= 0, 1.0, -1.0)

    def bit_logits(self, feats: torch.Tensor) -> torch.Tensor:
        return self.projector(feats)

    def logits(self, feats: torch.Tensor) -> torch.Tensor:
        return self.scale * (self.bit_logits(feats) @ sign_ste(self.codebook).t())

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.logits(feats)


class HashNetHead(nn.Module):
    """Projector (d → k) and tanh(β z) with β grown by continuation (HashNet, :mod:`llcpkg.hashing`).

    ``forward``: (B, d) → (B, k) relaxed codes tanh(β z); in train mode it first advances
    the step counter t (a buffer). ``bit_logits``: (B, d) → (B, k) z. β = (1 + γ t)^power.
    """

    def __init__(self, dim: int, bits: int, gamma: float = 0.005, power: float = 0.5, alpha: float | None = None):
        super().__init__()
        if bits < 1:
            raise ValueError(f"bits must be >= 1, got {bits}")
        self.projector = nn.Linear(dim, bits)
        self.gamma, self.power = float(gamma), float(power)
        self.alpha = 10.0 / bits if alpha is None else float(alpha)
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    @property
    def beta(self) -> float:
        return float((1.0 + self.gamma * float(self.step)) ** self.power)

    def bit_logits(self, feats: torch.Tensor) -> torch.Tensor:
        return self.projector(feats)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.step += 1
        return torch.tanh(self.beta * self.bit_logits(feats))


class GreedyHashHead(nn.Module):
    """Projector (d → k), sign with straight-through gradient, bias-free classifier (k → L)
    (GreedyHash, :mod:`llcpkg.hashing`).

    ``forward``: (B, d) → (B, L) logits W B(z). ``bit_logits``: (B, d) → (B, k) z.
    """

    def __init__(self, dim: int, bits: int, num_classes: int, penalty: float = 1.0):
        super().__init__()
        if bits < 1:
            raise ValueError(f"bits must be >= 1, got {bits}")
        self.projector = nn.Linear(dim, bits)
        self.classifier = nn.Linear(bits, num_classes, bias=False)
        self.penalty = float(penalty)

    def bit_logits(self, feats: torch.Tensor) -> torch.Tensor:
        return self.projector(feats)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.classifier(sign_ste(self.bit_logits(feats)))


class EmbeddingHead(nn.Module):
    """A real-valued m-dim embedding and a linear classifier on it (the paper's "10-dim real
    representations" for retrieval, §4.3): (B, d) → (B, m) ``embedding``, → (B, L) logits."""

    def __init__(self, dim: int, num_classes: int, dims: int):
        super().__init__()
        if dims < 1:
            raise ValueError(f"dims must be >= 1, got {dims}")
        self.embed = nn.Linear(dim, dims)
        self.classifier = nn.Linear(dims, num_classes)

    def embedding(self, feats: torch.Tensor) -> torch.Tensor:
        return self.embed(feats)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embedding(feats))


# ----------------------------------------------------------------------------- head registry
HEADS: dict[str, Callable[..., nn.Module]] = {}


def register_head(name: str):
    """Register ``builder(dim, num_classes, bits, **kw) -> nn.Module`` as head ``name``."""
    def add(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        HEADS[name] = builder
        return builder
    return add


@register_head("linear")
def _linear(dim: int, num_classes: int, bits: int = 0) -> nn.Module:
    return LinearHead(dim, num_classes)


@register_head("llc")
def _llc(dim: int, num_classes: int, bits: int, codebook: torch.Tensor | None = None,
         logit_scale: str = DEFAULT_LOGIT_SCALE) -> nn.Module:
    return LLCHead(dim, num_classes, bits, codebook, logit_scale)


@register_head("hashnet")
def _hashnet(dim: int, num_classes: int, bits: int, gamma: float = 0.005, power: float = 0.5,
             alpha: float | None = None) -> nn.Module:
    return HashNetHead(dim, bits, gamma, power, alpha)


@register_head("greedyhash")
def _greedyhash(dim: int, num_classes: int, bits: int, penalty: float = 1.0) -> nn.Module:
    return GreedyHashHead(dim, bits, num_classes, penalty)


@register_head("embedding")
def _embedding(dim: int, num_classes: int, bits: int) -> nn.Module:
    return EmbeddingHead(dim, num_classes, bits)  # ``bits``: the embedding's dimension m


def build_head(name: str, dim: int, num_classes: int, bits: int = 0, **kw) -> nn.Module:
    """Head ``name`` of ``HEADS`` on d-dim features for L classes and k bits (``kw``: the head's own settings)."""
    if name not in HEADS:
        raise ValueError(f"unknown head {name!r}; choose one of {sorted(HEADS)}")
    return HEADS[name](dim, num_classes, bits, **kw)


class Classifier(nn.Module):
    """Backbone + head: (B, C, H, W) → head outputs."""

    def __init__(self, backbone: nn.Module, head: nn.Module):
        super().__init__()
        self.backbone, self.head = backbone, head

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


@dataclass(frozen=True)
class ModelConfig:
    """What network to build."""

    backbone: str = "smallcnn"  # smallcnn | resnet18 | resnet50
    width: int = 32  # SmallCNN width (ignored by ResNets)
    head: str = "linear"  # a name in HEADS: linear | llc | hashnet | greedyhash
    bits: int = 0  # k, for the code heads
    logit_scale: str = DEFAULT_LOGIT_SCALE  # llc head: "sqrt" (logits / sqrt(k)) or "none" (the official code)
    # SmallCNN's feature dimension d (None: 4 · width); enters cache keys only when set
    feature_dim: int | None = field(default=None, metadata={"key": "unless-default"})

    def __post_init__(self):
        checks.require_choice(self, "backbone", BACKBONES)
        checks.require_int(self, "width", minimum=1)
        checks.require_int(self, "feature_dim", minimum=1, optional=True)
        checks.require_choice(self, "head", tuple(HEADS))
        checks.require_int(self, "bits", minimum=1 if self.head == "llc" else 0)
        checks.require_choice(self, "logit_scale", LOGIT_SCALES)


def check_code_length(bits, num_classes: int) -> None:
    """k must be an int >= 1 (TypeError / ValueError); warn when k < ceil(log2 L), since then
    some classes must share a code and no decoder can tell them apart."""
    if isinstance(bits, bool) or not isinstance(bits, numbers.Integral):
        raise TypeError(f"bits must be an int; got {bits!r} ({type(bits).__name__})")
    if bits < 1:
        raise ValueError(f"bits must be >= 1, got {bits}")
    need = math.ceil(math.log2(num_classes)) if num_classes > 1 else 1
    if bits < need:
        warnings.warn(f"bits = {bits} < ceil(log2 {num_classes}) = {need}: {num_classes} classes cannot all get "
                      f"distinct {bits}-bit codes (at most {2 ** bits}), so some are indistinguishable",
                      UserWarning, stacklevel=3)


def build_model(cfg: ModelConfig, in_channels: int, num_classes: int, codebook: torch.Tensor | None = None) -> Classifier:
    """Build a Classifier from a config; ``codebook`` (L, k) warm-starts an LLC head."""
    backbone = make_backbone(cfg.backbone, in_channels, cfg.width, cfg.feature_dim)
    kw = {"codebook": codebook, "logit_scale": cfg.logit_scale} if cfg.head == "llc" else {}
    return Classifier(backbone, build_head(cfg.head, backbone.out_dim, num_classes, cfg.bits, **kw))
