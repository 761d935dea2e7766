"""Hashing-based weight compression: HashedNets and HFH, plus a magnitude-pruning baseline.

- **HashedNets** (Chen et al., ICML 2015, §4): layer l's virtual weight matrix is backed by
  its own bucket vector w^l; V^l_ij = ξ(l, i, j) · w^l[h(l, i, j)], with h a cheap hash into
  the layer's M_l = round(factor · n_l) buckets and ξ a ±1 sign hash.
- **HFH** (Shi, Feng & Zhu, "Homologically functional hashing", ICLR 2017 submission; arXiv
  1605.06560 as FunHashNN): ONE compression space w of M buckets shared by every layer; each
  virtual weight is looked up by U hashes keyed by (layer, i, j) and a small reconstruction
  MLP g, shared by all layers, maps the U signed values to the weight:
  V^l_ij = s_l · g(ξ_1 w[h_1(l,i,j)], …, ξ_U w[h_U(l,i,j)]).
  With U = 1 and g the identity it is HashedNets with one shared space. s_l is a fixed
  per-layer scale, set once at initialisation so that layer l starts at PyTorch's default
  weight scale (one shared space cannot match every layer's fan-in otherwise); it is a
  stored float per layer and is counted.

Hashes (``mix_hash``): the splitmix64 finaliser applied in chain to (seed, salt u, l, i, j) in
uint64 arithmetic; index = hash mod M, sign = top bit of a second mix. They are computed
once, at construction, into non-persistent index/sign buffers (recomputable from the seed,
so not counted as memory), hash-major (U, n), plus the slots into the signed table [w; −w]
that the forward pass gathers from (``signed_slots``: the sign costs no multiply). Linear weights are keyed (out, in); Conv2d weights (out,
in·kh·kw) in row-major order.

Memory (``memory``): every stored number of the model, counted once: buckets, g's
parameters and the per-layer scales (for a compressed model), or the nonzero weights
(pruned), or all weights (dense), plus the uncompressed parameters and persistent
buffers (biases, BatchNorm affine and running statistics, an LLC projector). Bytes =
4 per float32 number + a pruned layer's positions (the cheaper of int32 indices and a
bitmap) + an LLC codebook's L·k bits. Hash buffers and BatchNorm's batch counter are
not stored.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from typing import Callable, NamedTuple

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from . import checks
from .data import DataBundle
from .models import Classifier, LinearHead, LLCHead, SmallCNN
from .timing import interleaved_seconds
from .train import BackboneHook, TrainConfig, Trained, data_id, run_stage, set_seed, stage_key

__all__ = ["mix_hash", "hash_indices", "CompressionConfig", "Reconstruction", "HashSpace", "HashedLinear",
           "HashedConv2d", "signed_slots", "HASH_LAYOUTS", "compress_model", "prune_model", "materialise", "memory", "NetSpec", "build_net",
           "train_compressed", "pruning_schedule", "equal_bytes_factor", "compressed_backbone", "Compressor", "COMPRESSORS", "compress", "overhead", "METHODS"]

METHODS = ("dense", "hashednets", "hfh", "pruning")  # the names of COMPRESSORS (checked below)
_M1, _M2, _GOLDEN = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB), np.uint64(0x9E3779B97F4A7C15)
_SIGN_SALT = 0x5851F42D4C957F2D


# ----------------------------------------------------------------------------- hashing
def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser (uint64 in, uint64 out; wraps modulo 2**64)."""
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def mix_hash(seed: int, *keys) -> np.ndarray:
    """Deterministic 64-bit hash of (seed, *keys): h ← mix(h + golden + key) for each key in turn.

    ``keys`` are non-negative ints or int arrays (broadcast together); returns uint64.
    """
    with np.errstate(over="ignore"):
        h = _mix(np.asarray(seed, dtype=np.uint64) + _GOLDEN)
        for k in keys:
            h = _mix(h + _GOLDEN + np.asarray(k, dtype=np.int64).astype(np.uint64))
    return h


def hash_indices(layer: np.ndarray, i: np.ndarray, j: np.ndarray, buckets: int, hashes: int, seed: int,
                 bijective: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Bucket indices and ±1 signs of virtual weights keyed (layer, i, j), each array (n,).

    Returns ``index`` (U, n) int64 in [0, buckets) and ``sign`` (U, n) float32 in {−1, +1};
    row u uses hash function u. ``bijective``: a collision-free assignment instead (the rank
    of each key's hash; needs U = 1 and buckets = n) — the control that makes a compressed
    layer at factor 1 an exact reparametrisation of a dense one.
    """
    u = np.arange(hashes)[:, None]
    with np.errstate(over="ignore"):
        h = mix_hash(seed, u, layer[None], i[None], j[None])  # (U, n)
        s = _mix(h ^ np.uint64(_SIGN_SALT))
    if bijective:
        if hashes != 1 or buckets != h.shape[1]:
            raise ValueError(f"a bijective hash needs U = 1 and buckets = n ({h.shape[1]}); got U = {hashes}, "
                             f"buckets = {buckets}")
        index = np.argsort(np.argsort(h[0], kind="stable"), kind="stable")[None]
    else:
        index = (h % np.uint64(buckets)).astype(np.int64)
    sign = np.where(s >> np.uint64(63), -1.0, 1.0).astype(np.float32)
    return torch.from_numpy(index), torch.from_numpy(sign)


# ----------------------------------------------------------------------------- layers
@dataclass(frozen=True)
class CompressionConfig:
    """How to compress a model's Linear and Conv2d weights."""

    method: str = "hfh"  # hfh (one shared space, U hashes, MLP g) | hashednets (a space per layer)
    factor: float = 1 / 8  # stored numbers for the weights / number of virtual weights
    hashes: int = 4  # U, hash functions per virtual weight (HFH; HashedNets uses 1)
    depth: int = 2  # linear layers of g: 0 identity (U = 1), 1 U→1, 2 U→U/2→1, 3 U→U→U/2→1 (tanh)
    sign: bool = True  # multiply each looked-up value by its sign hash ξ
    bijective: bool = False  # collision-free hash, one bucket per weight (factor 1, U = 1): the exactness control
    seed: int = 0  # seeds the hashes (and nothing else)

    def __post_init__(self):
        checks.require_choice(self, "method", METHODS)
        checks.require_real(self, "factor", gt=0, le=1)
        checks.require_int(self, "hashes", minimum=0)
        checks.require_int(self, "depth", minimum=0)
        checks.require_bool(self, "sign")
        checks.require_bool(self, "bijective")
        checks.require_int(self, "seed", minimum=0)


CLIP_RULE = "virtual layer"  # enters the cache keys of hashed models: which gradient MAX_GRAD_NORM bounds
MAX_GRAD_NORM = 1.0  # per virtual layer: the norm its weight gradient dL/dV^l is clipped to (HashedNets and HFH alike)


class _ClipGradNorm(torch.autograd.Function):
    """Identity forward; backward rescales the gradient to norm ≤ MAX_GRAD_NORM.

    The rule (issue #17, one rule for both methods): every hashed layer's virtual weight
    V^l has its gradient dL/dV^l clipped to MAX_GRAD_NORM before it flows into the stored
    numbers, so HashedNets' per-layer buckets and HFH's shared space receive, per virtual
    layer, the same bounded gradient (HFH's shared space sums its layers' clipped parts, as
    HashedNets' layers each take their own). HFH's reconstruction net g, a tensor HashedNets
    does not have, also has its gradient clipped per virtual layer: its gradient sums over
    every virtual weight of the layer (n ≈ 10⁶) and diverged unclipped at lr 0.1 (notebook 06,
    first cpu run). Dense and pruned layers are not clipped.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad * (MAX_GRAD_NORM / grad.norm().clamp_min(MAX_GRAD_NORM))


def clip_grad(x: torch.Tensor) -> torch.Tensor:
    """``x`` unchanged, with its gradient's norm clipped to MAX_GRAD_NORM in the backward pass."""
    return _ClipGradNorm.apply(x)


class Reconstruction(nn.Module):
    """g: (U, n) → (n,), the paper's small MLP with tanh hidden units; depth 0 is the identity.

    No biases: g is odd (g(−v) = −g(v)), so sign hashing keeps its meaning, and no single
    parameter shifts every weight of every layer at once (with hidden biases, SGD at the
    dense learning rate diverged). Weights start N(0, 1/fan_in); ``compress_model`` then
    rescales the last layer so that g starts with gain 1.
    """

    def __init__(self, hashes: int, depth: int):
        super().__init__()
        if depth == 0 and hashes != 1:
            raise ValueError(f"an identity reconstruction takes one hash, not {hashes}")
        widths = {0: [1], 1: [hashes, 1], 2: [hashes, max(hashes // 2, 1), 1],
                  3: [hashes, hashes, max(hashes // 2, 1), 1]}
        if depth not in widths:
            raise ValueError(f"depth must be 0, 1, 2 or 3; got {depth}")
        w = widths[depth]
        self.layers = nn.ModuleList(nn.Linear(a, b, bias=False) for a, b in zip(w, w[1:]))
        for lin in self.layers:
            nn.init.normal_(lin.weight, std=lin.in_features ** -0.5)

    def forward(self, v: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
        """(U, n) looked-up values, one row per hash → (n,) weights, times ``scale`` if given.

        Laid out hash-major so that each layer is one short-wide matmul W (out, in) @ v (in, n)
        over all n virtual weights (a tall-skinny (n, U) @ (U, out) runs far below BLAS speed);
        ``scale`` is folded into the last layer's (1, in) weight instead of a pass over n.
        """
        for k, lin in enumerate(self.layers):
            w = clip_grad(lin.weight)
            if scale is not None and k == len(self.layers) - 1:
                w = w * scale
            v = _ShortWide.apply(w, v)  # (out, n)
            if k < len(self.layers) - 1:
                v = _Tanh.apply(v)
        v = v[0]
        return v * scale if scale is not None and not len(self.layers) else v


class _ShortWide(torch.autograd.Function):
    """w (out, in) @ v (in, n), whose backward multiplies by a contiguous wᵀ (autograd's
    transposed view of a tiny matrix takes a slow GEMM path on CPU: ~8× here)."""

    @staticmethod
    def forward(ctx, w: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(w, v)
        return w @ v

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        w, v = ctx.saved_tensors
        return grad @ v.t(), w.t().contiguous() @ grad


class _Tanh(torch.autograd.Function):
    """tanh(x) = 2·sigmoid(2x) − 1: torch's CPU sigmoid kernel is ~5× faster than its tanh
    (measured here); the backward is the usual 1 − tanh²."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        y = torch.sigmoid(x * 2).mul_(2).sub_(1)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (y,) = ctx.saved_tensors
        return torch.ops.aten.tanh_backward(grad, y)


def signed_slots(index: torch.Tensor, sign: torch.Tensor | None, buckets: int) -> torch.Tensor:
    """Slots into the signed table [w; −w] (2M,): index, plus M where the sign hash is −1.

    ξ · w[h] = [w; −w][h + M·(ξ < 0)], so the sign costs no multiply per virtual weight.
    (U, n) int64 → (U, n) int64 contiguous (``scatter_add_``, the fast backward, needs int64).
    """
    slots = index.to(torch.int64)
    if sign is not None:
        slots = slots + buckets * (sign < 0).to(torch.int64)
    return slots.contiguous()


class _SignedLookup(torch.autograd.Function):
    """v = [w; −w][slots] (or w[slots] when unsigned) for (U, n) slots: one flat ``index_select``.

    Backward is one ``scatter_add_`` over the U·n values (advanced indexing's backward runs the
    slower ``index_put_(accumulate=True)`` on CPU), then the two halves' difference.
    """

    @staticmethod
    def forward(ctx, w: torch.Tensor, slots: torch.Tensor, signed: bool) -> torch.Tensor:
        ctx.save_for_backward(slots)
        ctx.signed, ctx.buckets = signed, w.shape[0]
        table = torch.cat([w, -w]) if signed else w
        return torch.index_select(table, 0, slots.reshape(-1)).view(slots.shape)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (slots,) = ctx.saved_tensors
        m = ctx.buckets
        acc = grad.new_zeros(2 * m if ctx.signed else m).scatter_add_(0, slots.reshape(-1), grad.reshape(-1))
        return (acc[:m] - acc[m:] if ctx.signed else acc), None, None


class HashSpace(nn.Module):
    """The stored numbers: a bucket vector w (M,) and the reconstruction net g."""

    def __init__(self, buckets: int, hashes: int, depth: int, init_std: float):
        super().__init__()
        if buckets < 1:
            raise ValueError(f"the compression space needs at least one bucket; got {buckets} (factor too small "
                             "for the reconstruction net?)")
        self.weights = nn.Parameter(torch.randn(buckets) * init_std)
        self.g = Reconstruction(hashes, depth)

    def forward(self, index: torch.Tensor, sign: torch.Tensor | None) -> torch.Tensor:
        """(U, n) indices and ±1 signs (hash-major) → (n,) reconstructed weights."""
        return self.reconstruct(signed_slots(index, sign, len(self.weights)), sign is not None)

    def reconstruct(self, slots: torch.Tensor, signed: bool, scale: torch.Tensor | None = None) -> torch.Tensor:
        """(U, n) :func:`signed_slots` → (n,) weights g(ξ_1 w[h_1], …, ξ_U w[h_U]) (· scale)."""
        return self.g(_SignedLookup.apply(self.weights, slots, signed), scale)


class _Hashed(nn.Module):
    """A layer whose weight of shape ``shape`` is virtual: scale · space(index, sign)."""

    def _setup(self, dense: nn.Module, space: HashSpace, index: torch.Tensor, sign: torch.Tensor | None,
               scale: float | None):
        self.shape = tuple(dense.weight.shape)
        self.space = space
        self.register_buffer("index", index, persistent=False)
        self.register_buffer("sign", sign, persistent=False)
        # the lookup the forward pass uses, derived once from (index, sign); see signed_slots
        self.register_buffer("slots", signed_slots(index, sign, len(space.weights)), persistent=False)
        self.register_buffer("scale", None if scale is None else torch.tensor(float(scale)))
        self.bias = None if dense.bias is None else nn.Parameter(dense.bias.detach().clone())

    def virtual_weight(self) -> torch.Tensor:
        """V^l (the layer's weight shape), its gradient clipped per virtual layer (``MAX_GRAD_NORM``)."""
        return clip_grad(self.space.reconstruct(self.slots, self.sign is not None, self.scale)).view(self.shape)


class HashedLinear(_Hashed):
    """nn.Linear with a virtual weight (out, in)."""

    def __init__(self, dense: nn.Linear, space: HashSpace, index, sign, scale=None):
        super().__init__()
        self._setup(dense, space, index, sign, scale)
        self.in_features, self.out_features = dense.in_features, dense.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.virtual_weight(), self.bias)


class HashedConv2d(_Hashed):
    """nn.Conv2d with a virtual weight (out, in/groups, kh, kw); zero padding only."""

    def __init__(self, dense: nn.Conv2d, space: HashSpace, index, sign, scale=None):
        super().__init__()
        if dense.padding_mode != "zeros":
            raise ValueError(f"only zero padding is supported, not {dense.padding_mode!r}")
        self._setup(dense, space, index, sign, scale)
        for k in ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups"):
            setattr(self, k, getattr(dense, k))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.virtual_weight(), self.bias, self.stride, self.padding, self.dilation, self.groups)


def _plain(m: nn.Module) -> nn.Module:
    """A plain nn.Linear/nn.Conv2d with the settings of a (hashed or masked) layer."""
    if hasattr(m, "kernel_size"):
        return nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.dilation, m.groups,
                         m.bias is not None)
    return nn.Linear(m.in_features, m.out_features, m.bias is not None)


def _hashed_type(m: nn.Module) -> type:
    return HashedConv2d if isinstance(m, nn.Conv2d) else HashedLinear


def _g_layers(model: nn.Module) -> set[int]:
    """ids of the modules inside reconstruction nets (their Linears are not the model's layers)."""
    return {id(sub) for m in model.modules() if isinstance(m, Reconstruction) for sub in m.modules()}


def _targets(model: nn.Module, skip: tuple[str, ...]) -> list[tuple[str, nn.Module]]:
    """The Linear/Conv2d layers to compress, in module order, minus those under a ``skip`` prefix."""
    g = _g_layers(model)
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d)) and id(m) not in g
            and not any(n == s or n.startswith(s + ".") for s in skip)]


def _set(model: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, leaf, new)


def _keys(layer_id: int, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n_out, n_in = shape[0], int(np.prod(shape[1:]))
    i, j = np.divmod(np.arange(n_out * n_in), n_in)
    return np.full(n_out * n_in, layer_id), i, j


def _default_std(m: nn.Module) -> float:
    """Std of PyTorch's default weight init, U(−1/√fan_in, 1/√fan_in)."""
    return (3 * m.weight[0].numel()) ** -0.5


Targets = list[tuple[str, nn.Module]]  # (qualified name, Linear or Conv2d layer) of the weights to hash
Keys = list[tuple[np.ndarray, np.ndarray, np.ndarray]]  # (layer id, row, column) of every weight, per layer


def _hash_per_layer(model: nn.Module, targets: Targets, keys: Keys, cfg: CompressionConfig) -> None:
    """HashedNets: layer l gets its own space of max(1, round(factor · n_l)) buckets, initialised like the dense layer."""
    for (name, m), (l, i, j) in zip(targets, keys):
        buckets = max(1, round(cfg.factor * m.weight.numel()))
        space = HashSpace(buckets, 1, 0, _default_std(m))
        idx, sgn = hash_indices(l, i, j, buckets, 1, cfg.seed, cfg.bijective)
        _set(model, name, _hashed_type(m)(m, space, idx, sgn if cfg.sign else None))


def _hash_shared(model: nn.Module, targets: Targets, keys: Keys, cfg: CompressionConfig) -> None:
    """HFH: one space of round(factor · Σ n_l) − |g| − (number of layers) buckets shared by every
    layer, U hashes per weight reconstructed by g, and a per-layer scale."""
    total = sum(m.weight.numel() for _, m in targets)
    g_params = sum(p.numel() for p in Reconstruction(cfg.hashes, cfg.depth).parameters())
    buckets = total if cfg.bijective else round(cfg.factor * total) - g_params - len(targets)
    # w starts at the RMS of the layers' default weight scales, so the per-layer scales are
    # O(1) and a step on w moves the weights as much as a step on a dense layer would
    rms = float(np.sqrt(sum(m.weight.numel() * _default_std(m) ** 2 for _, m in targets) / total))
    space = HashSpace(buckets, cfg.hashes, cfg.depth, init_std=rms)
    idx, sgn = hash_indices(*(np.concatenate(k) for k in zip(*keys)), buckets, cfg.hashes, cfg.seed,
                            cfg.bijective)
    if cfg.depth > 0:  # g starts with gain 1: its output has the spread of w
        with torch.no_grad():
            gain = float(space(idx, sgn if cfg.sign else None).std()) / rms
            space.g.layers[-1].weight /= max(gain, 1e-8)
    start = 0
    for name, m in targets:
        n = m.weight.numel()
        i, s = idx[:, start:start + n].contiguous(), sgn[:, start:start + n].contiguous()  # (U, n)
        start += n
        with torch.no_grad():
            std = float(space(i, s if cfg.sign else None).std()) if n > 1 else 1.0
        scale = _default_std(m) / max(std, 1e-8)
        _set(model, name, _hashed_type(m)(m, space, i, s if cfg.sign else None, scale))


HASH_LAYOUTS: dict[str, Callable[[nn.Module, Targets, Keys, CompressionConfig], None]] = {
    "hashednets": _hash_per_layer, "hfh": _hash_shared}  # method -> how its weights are hashed (in place)


def compress_model(model: nn.Module, cfg: CompressionConfig, skip: tuple[str, ...] = ()) -> nn.Module:
    """A copy of ``model`` whose Linear/Conv2d weights (not under ``skip``) are hashed the way
    ``HASH_LAYOUTS[cfg.method]`` does.

    HashedNets: layer l gets max(1, round(factor · n_l)) buckets initialised like the dense
    layer. HFH: one space of round(factor · Σ n_l) − |g| − (number of layers) buckets, so that
    buckets + g + per-layer scales = round(factor · Σ n_l). Biases stay dense. The weights
    of ``model`` are not used (the compressed model is trained from scratch).
    """
    if cfg.method not in HASH_LAYOUTS:
        raise ValueError(f"unknown compression method {cfg.method!r}; choose one of {sorted(HASH_LAYOUTS)}")
    if not 0 < cfg.factor <= 1:
        raise ValueError(f"factor must lie in (0, 1]; got {cfg.factor}")
    if cfg.bijective and cfg.factor != 1:
        raise ValueError(f"a bijective hash stores every weight: factor must be 1, not {cfg.factor}")
    model = copy.deepcopy(model)
    targets = _targets(model, skip)
    if not targets:
        raise ValueError("no Linear or Conv2d layer to compress")
    keys = [_keys(lid, tuple(m.weight.shape)) for lid, (_, m) in enumerate(targets)]
    gen = torch.random.fork_rng(devices=[])  # bucket init draws from torch's RNG; keep the caller's stream intact
    with gen:
        torch.manual_seed(cfg.seed)
        HASH_LAYOUTS[cfg.method](model, targets, keys, cfg)
    return model


class _Mask(nn.Module):
    """A fixed 0/1 mask on a weight (a ``torch.nn.utils.parametrize`` parametrisation)."""

    def __init__(self, mask: torch.Tensor):
        super().__init__()
        self.register_buffer("mask", mask)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return w * self.mask


def prune_model(model: nn.Module, factor: float, skip: tuple[str, ...] = ()) -> nn.Module:
    """A copy of a (trained) model with global magnitude pruning: only the round(factor · W)
    largest-|w| of the W weights of its Linear/Conv2d layers (not under ``skip``) survive;
    the mask is fixed, so fine-tuning keeps the pruned weights at zero. A model pruned before
    (one step of :func:`pruning_schedule`) is pruned further: its masks are folded into its
    weights first, so the pruned weights (zeros) are the first to go and one mask remains."""
    model = materialise(model) if any(parametrize.is_parametrized(m) for m in model.modules()) \
        else copy.deepcopy(model)
    layers = [m for _, m in _targets(model, skip)]
    flat = torch.cat([m.weight.detach().abs().flatten() for m in layers])
    mask = torch.zeros_like(flat)
    mask[torch.topk(flat, round(factor * flat.numel()), sorted=False).indices] = 1.0
    for m, part in zip(layers, mask.split([m.weight.numel() for m in layers])):
        parametrize.register_parametrization(m, "weight", _Mask(part.view_as(m.weight)))
    return model


def pruning_schedule(factor: float, step: float = 0.5) -> tuple[float, ...]:
    """The factors of iterative magnitude pruning down to ``factor``: 1/2, 1/4, … (× ``step``)
    while above ``factor``, then ``factor``; each is pruned to from the previous one and
    fine-tuned. Targets share their prefix, so one chain serves every factor (cached)."""
    if not 0 < factor < 1 or not 0 < step < 1:
        raise ValueError(f"pruning_schedule needs 0 < factor < 1 and 0 < step < 1; got {factor}, {step}")
    out, f = [], step
    while f > factor * (1 + 1e-9):
        out.append(f)
        f *= step
    return (*out, factor)


def equal_bytes_factor(factor: float) -> float:
    """The pruning factor f' whose bytes equal those of a hashed model storing ``factor`` · W
    floats: 4 f' W (values) + min(4 f' W, W / 8) (int32 positions or a bitmap) = 4 · factor · W,
    i.e. f' = factor / 2 while int32 positions are the cheaper (f' ≤ 1/32), else factor − 1/32.
    Treats the compressed layers as one (the per-layer count of :func:`memory` is at most
    this, so pruning at f' never stores more bytes than the hashed model)."""
    if not 0 < factor <= 1:
        raise ValueError(f"factor must lie in (0, 1]; got {factor}")
    return factor / 2 if factor <= 1 / 16 else factor - 1 / 32


@torch.no_grad()
def materialise(model: nn.Module) -> nn.Module:
    """An ordinary dense copy for inference: each hashed layer's virtual weight is computed
    once into a plain nn.Linear/nn.Conv2d; pruning masks are folded into the weights."""
    model = copy.deepcopy(model)
    for name, m in list(model.named_modules()):
        # rebuilt rather than parametrize.remove_parametrizations(), which edits the class that
        # the original (deep-copied) model shares
        if isinstance(m, _Hashed) or parametrize.is_parametrized(m, "weight"):
            weight = m.virtual_weight() if isinstance(m, _Hashed) else m.weight
            plain = _plain(m).to(weight.device)
            plain.load_state_dict({"weight": weight, **({"bias": m.bias} if m.bias is not None else {})})
            _set(model, name, plain)
    return model


# ----------------------------------------------------------------------------- memory
def memory(model: nn.Module) -> dict[str, float]:
    """What the model stores (see the module docstring), each tensor counted once.

    Returns ``virtual`` (weights of its Linear/Conv2d layers, virtual or real), ``weights``
    (stored numbers that represent them), ``other`` (biases, BatchNorm, projector, …),
    ``params`` = weights + other, ``code_bits`` (LLC class codes), ``bytes`` and
    ``ratio`` = weights / virtual.
    """
    seen: set[int] = set()
    g = _g_layers(model)
    out = dict(virtual=0, weights=0, other=0, code_bits=0, index_bytes=0)
    for m in model.modules():
        is_layer = isinstance(m, (nn.Linear, nn.Conv2d)) and id(m) not in g
        if isinstance(m, _Hashed) or is_layer:
            out["virtual"] += int(np.prod(m.shape)) if isinstance(m, _Hashed) else m.weight.numel()
        tensors = list(m._parameters.items())
        tensors += [(n, t) for n, t in m._buffers.items() if n not in m._non_persistent_buffers_set]
        for name, t in tensors:
            if t is None or id(t) in seen or not t.is_floating_point() or isinstance(m, _Mask):
                continue
            seen.add(id(t))
            if name == "original" and isinstance(m[0], _Mask):  # pruned: the nonzeros and where they are
                nnz = int(m[0].mask.sum())
                out["weights"] += nnz
                out["index_bytes"] += min(4 * nnz, -(-t.numel() // 8))
            elif isinstance(m, LLCHead) and name == "codebook":
                out["code_bits"] += t.numel()
            elif isinstance(m, HashSpace) or id(m) in g or (isinstance(m, _Hashed) and name == "scale") \
                    or (is_layer and name == "weight"):
                out["weights"] += t.numel()
            else:
                out["other"] += t.numel()
    params = out["weights"] + out["other"]
    return dict(virtual=out["virtual"], weights=out["weights"], other=out["other"], params=params,
                code_bits=out["code_bits"], bytes=4 * params + out["index_bytes"] + out["code_bits"] / 8,
                ratio=out["weights"] / max(out["virtual"], 1))


# ----------------------------------------------------------------------------- networks and cached training
@dataclass(frozen=True)
class NetSpec:
    """A network of the compression experiment."""

    name: str  # label in the tables
    kind: str = "mlp"  # mlp (Flatten → Linear/ReLU … → Linear) | cnn (SmallCNN + linear head)
    hidden: tuple[int, ...] = (1000,)  # MLP hidden widths
    width: int = 32  # SmallCNN width

    def __post_init__(self):
        checks.require_str(self, "name")
        checks.require_choice(self, "kind", ("mlp", "cnn"))
        object.__setattr__(self, "hidden", tuple(self.hidden))  # a list from papermill: same key, hashable
        if not all(isinstance(h, int) and not isinstance(h, bool) and h >= 1 for h in self.hidden):
            raise TypeError(f"NetSpec.hidden must be positive ints; got {self.hidden!r}")
        checks.require_int(self, "width", minimum=1)

    @property
    def skip(self) -> tuple[str, ...]:
        """Layers left dense: the CNN's 1-layer head (the LLC experiment swaps it for a codebook)."""
        return ("head",) if self.kind == "cnn" else ()


def build_net(net: NetSpec, data: DataBundle, head: nn.Module | None = None) -> nn.Module:
    """The dense network for ``data`` (image shape, classes); ``head`` replaces a CNN's linear head."""
    c, h, w = data.image_shape
    if net.kind == "mlp":
        sizes = [c * h * w, *net.hidden, data.num_classes]
        layers: list[nn.Module] = [nn.Flatten()]
        for k, (a, b) in enumerate(zip(sizes, sizes[1:])):
            layers += [nn.Linear(a, b)] + ([nn.ReLU()] if k < len(sizes) - 2 else [])
        return nn.Sequential(*layers)
    if net.kind == "cnn":
        backbone = SmallCNN(c, net.width)
        return Classifier(backbone, head if head is not None else LinearHead(backbone.out_dim, data.num_classes))
    raise ValueError(f"unknown net kind {net.kind!r}; choose mlp or cnn")


# ----------------------------------------------------------------------------- registry
class Compressor(NamedTuple):
    """A compression method: ``apply(model, cfg, skip) -> compressed copy``; ``from_trained``:
    it starts from a trained dense model (pruning) rather than from a fresh one."""

    apply: Callable[[nn.Module, CompressionConfig, tuple[str, ...]], nn.Module]
    from_trained: bool = False


COMPRESSORS: dict[str, Compressor] = {
    "dense": Compressor(lambda model, cfg, skip=(): model),
    "hashednets": Compressor(compress_model),
    "hfh": Compressor(compress_model),
    "pruning": Compressor(lambda model, cfg, skip=(): prune_model(model, cfg.factor, skip), from_trained=True),
}
assert tuple(COMPRESSORS) == METHODS


def compress(model: nn.Module, cfg: CompressionConfig, skip: tuple[str, ...] = ()) -> nn.Module:
    """``model`` compressed by ``cfg.method`` (a name in ``COMPRESSORS``); layers under ``skip`` stay dense."""
    if cfg.method not in COMPRESSORS:
        raise ValueError(f"unknown method {cfg.method!r}; choose one of {sorted(COMPRESSORS)}")
    return COMPRESSORS[cfg.method].apply(model, cfg, skip)


def _build(net: NetSpec, comp: CompressionConfig, data: DataBundle) -> nn.Module:
    return compress(build_net(net, data), comp, net.skip)


def compressed_backbone(net: NetSpec, comp: CompressionConfig, data: DataBundle) -> BackboneHook:
    """The (compressed) backbone of a CNN ``net`` as a hook for LLC's phase 1
    (:func:`llcpkg.pipeline.run_llc`): phase 1 and 2 run on it unchanged."""
    if net.kind != "cnn":
        raise ValueError(f"only a CNN has a backbone to put under an LLC head; got {net.kind!r}")
    comp = _canonical(comp)
    clip = {"clip": CLIP_RULE} if comp.method in HASH_LAYOUTS else {}
    return BackboneHook(lambda: _build(net, comp, data).backbone, {"net": net, "comp": comp, **clip})


def _canonical(comp: CompressionConfig) -> CompressionConfig:
    """Check the method; a dense config ignores the other fields (so all dense runs share a key)."""
    if comp.method not in COMPRESSORS:
        raise ValueError(f"unknown method {comp.method!r}; choose one of {sorted(COMPRESSORS)}")
    return CompressionConfig("dense", 1.0, hashes=0, depth=0, sign=False, seed=0) if comp.method == "dense" else comp


def train_compressed(data: DataBundle, net: NetSpec, comp: CompressionConfig, cfg: TrainConfig,
                     cache_dir=None, finetune: TrainConfig | None = None) -> Trained:
    """Train one network of the grid (cached): ``comp.method`` dense, hashednets or hfh for
    ``cfg``, or pruning: iterative magnitude pruning of the trained dense net (``cfg``) along
    :func:`pruning_schedule`, each step pruned from the previous one and fine-tuned with its
    mask fixed for ``finetune`` (default: ``cfg`` with a tenth of its learning rate and a
    quarter of its epochs, at least 1)."""
    comp = _canonical(comp)
    if COMPRESSORS[comp.method].from_trained:
        finetune = finetune or replace(cfg, epochs=max(1, cfg.epochs // 4), lr=cfg.lr / 10)
        parent = train_compressed(data, net, CompressionConfig("dense"), cfg, cache_dir)
        for f in pruning_schedule(comp.factor):
            set_seed(finetune.seed)
            step = replace(comp, factor=f)
            model = compress(parent.model, step, net.skip)
            key = stage_key(stage="compress", data=data_id(data), net=net, comp=step, train=finetune,
                            parent=parent.key)
            parent = run_stage("compress", key, model, data.train, "ce", finetune, cache_dir)
        return parent
    set_seed(cfg.seed)
    clip = {"clip": CLIP_RULE} if comp.method in HASH_LAYOUTS else {}
    key = stage_key(stage="compress", data=data_id(data), net=net, comp=comp, train=cfg, parent=None, **clip)
    return run_stage("compress", key, _build(net, comp, data), data.train, "ce", cfg, cache_dir)


# ----------------------------------------------------------------------------- overhead
def _median_ms(times: list[float]) -> float:
    return 1000 * float(np.median(times))


def overhead(models: dict[str, nn.Module], x: torch.Tensor, y: torch.Tensor, repeats: int = 20,
             reference: str = "dense") -> pd.DataFrame:
    """Training-step and inference time of each model on one batch (x, y), measured in one
    interleaved run (every repeat times every model in turn, so load on a shared machine
    hits all alike); medians in ms and relative to ``reference``. ``infer_materialised_ms``:
    inference after ``materialise`` (weights computed once)."""
    work = {n: copy.deepcopy(m).train() for n, m in models.items()}
    mats = {n: materialise(m).eval() for n, m in models.items()}
    opts = {n: torch.optim.SGD(m.parameters(), lr=1e-3, momentum=0.9) for n, m in work.items()}

    def step(n: str) -> None:
        loss = F.cross_entropy(work[n].train()(x), y)
        opts[n].zero_grad(set_to_none=True)
        loss.backward()
        opts[n].step()

    @torch.no_grad()
    def infer(m: nn.Module) -> None:
        m.eval()(x)

    fns = {}
    for n in models:
        fns[n, "train"] = lambda n=n: step(n)
        fns[n, "infer"] = lambda n=n: infer(work[n])
        fns[n, "mat"] = lambda n=n: infer(mats[n])
    times = interleaved_seconds(fns, repeats)
    df = pd.DataFrame([{"model": n, "train_ms": _median_ms(times[n, "train"]), "infer_ms": _median_ms(times[n, "infer"]),
                        "infer_materialised_ms": _median_ms(times[n, "mat"])} for n in models])
    ref = df.set_index("model").loc[reference]
    df["train_rel"] = df["train_ms"] / ref["train_ms"]
    df["infer_rel"] = df["infer_ms"] / ref["infer_ms"]
    df["materialised_rel"] = df["infer_materialised_ms"] / ref["infer_ms"]
    return df
