"""One training loop for every stage, with per-stage losses, seeding and a checkpoint cache.

Stages (Kusupati et al. 2021, §3):
- ``baseline``: the real-valued linear classifier, cross-entropy on W F(x).
- ``phase1``: cross-entropy on B(C)·P F(x) through the straight-through sign; backbone
  optionally warm-started from the baseline, codebook from a given matrix.
- ``phase2``: class codes frozen; binary cross-entropy of sigmoid(P F(x)) against the
  true class's bits (B(C)_y + 1)/2 — k independent binary problems.

Each stage is cached under a key of (data set, stage, configs, parent stage) in
``cache_dir`` (:mod:`llcpkg.cache`): a rerun loads the finished checkpoint instead of
training, and an interrupted stage resumes from its last finished epoch (``*.partial.pt``).
Every checkpoint is verified against its sha256 before use; a damaged one is moved aside
as ``*.corrupt`` and the stage retrains. Shuffling is seeded by (seed, epoch), so a
resumed run equals an uninterrupted one.

Every step's loss is checked for finiteness (accumulated on the device, read back every
``CHECK_EVERY`` steps and at each epoch's end): a NaN or inf loss stops training with
:class:`NonFiniteLoss` naming the stage, epoch and batch, and nothing is cached.

Under ``torchrun`` (an initialised process group) ``fit`` trains data-parallel with
DistributedDataParallel and only rank 0 writes checkpoints: see :mod:`llcpkg.parallel`.
"""
from __future__ import annotations

import contextlib
import copy
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset
from tqdm.auto import tqdm

from . import checks, parallel, runtimes
from .cache import (CACHE_VERSION, checkpoint_path, discard, is_cached, load_checkpoint, partial_path, save_checkpoint,
                    stage_key)
from .data import DataBundle, check_labels, class_balanced_batches, fingerprint
from .models import Classifier, LinearHead, LLCHead, ModelConfig, build_head, build_model, check_code_length

__all__ = ["TrainConfig", "Trained", "LOSSES", "fit", "iterate_batches", "predict", "run_stage",
           "train_baseline", "train_phase1", "train_phase2", "stage_key", "BackboneHook", "stage_cached", "set_seed", "data_id",
           "CACHE_VERSION", "NonFiniteLoss", "check_labels"]


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings of one stage (SGD with momentum, cosine learning rate)."""

    epochs: int = 3  # passes over the training split
    lr: float = 0.1  # peak learning rate (cosine decay to 0 over all steps)
    batch_size: int = 256  # examples per step
    momentum: float = 0.9  # SGD momentum
    weight_decay: float = 5e-4  # L2 penalty (the codebook is exempt)
    label_smoothing: float = 0.1  # for the cross-entropy losses (the official LLC value)
    seed: int = 0  # seeds the initialisation and the shuffling
    device: str = "cpu"  # torch device
    channels_last: bool = False  # NHWC memory layout (faster convolutions on some CPUs)
    # fp32 | bf16 | fp16: torch.autocast on CUDA (fp16 with a GradScaler); enters cache keys only when not fp32
    precision: str = field(default="fp32", metadata={"key": "unless-default"})
    # class-balanced batches of m classes × n images (llcpkg.data.class_balanced_batches, n >= per_class),
    # the same number of steps per epoch; None: plain shuffling. Enters cache keys only when set
    per_class: int | None = field(default=None, metadata={"key": "unless-default"})

    def __post_init__(self):
        checks.require_int(self, "epochs", minimum=1)
        checks.require_real(self, "lr", gt=0)
        checks.require_int(self, "batch_size", minimum=1)
        checks.require_real(self, "momentum", ge=0, lt=1)
        checks.require_real(self, "weight_decay", ge=0)
        checks.require_real(self, "label_smoothing", ge=0, lt=1)
        checks.require_int(self, "seed", minimum=0)
        checks.require_str(self, "device")
        try:
            torch.device(self.device)
        except RuntimeError as e:
            raise ValueError(f"TrainConfig.device {self.device!r} is not a torch device ({e})") from e
        checks.require_bool(self, "channels_last")
        checks.require_int(self, "per_class", minimum=1, optional=True)
        if self.precision not in ("fp32", "bf16", "fp16"):
            raise ValueError(f"TrainConfig.precision must be fp32, bf16 or fp16; got {self.precision!r}")



@dataclass(frozen=True)
class BackboneHook:
    """A custom backbone for LLC's phase 1 (and so phase 2): ``build()`` returns a fresh
    backbone (B, C, H, W) → (B, d) with an ``out_dim``; ``key`` identifies it in cache keys."""

    build: Callable[[], nn.Module]
    key: dict


@dataclass
class Trained:
    """A trained model and the cache key that identifies how it was made."""

    model: Classifier
    key: str


def set_seed(seed: int) -> None:
    """Seed torch and numpy (the only sources of randomness in training)."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


# ----------------------------------------------------------------------------- losses
def ce_loss(model: Classifier, x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig) -> torch.Tensor:
    """Cross-entropy on the model's logits (baseline and phase 1)."""
    logits = model(x)
    check_labels(y, logits.shape[1])
    return F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)


def bit_loss(model: Classifier, x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig) -> torch.Tensor:
    """Phase 2: mean over the k bits of BCE(sigmoid(P F(x)), (B(C)_y + 1) / 2)."""
    head: LLCHead = model.head
    codes = head.class_codes()
    check_labels(y, codes.shape[0])
    z = head.bit_logits(model.features(x))  # (B, k)
    return F.binary_cross_entropy_with_logits(z, (codes[y] + 1) / 2)


LOSSES: dict[str, Callable] = {"ce": ce_loss, "bits": bit_loss}


# ----------------------------------------------------------------------------- loop
def iterate_batches(ds: Dataset, batch_size: int, shuffle: bool, seed: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield (x, y) batches; in-memory TensorDatasets are sliced directly (no per-item collate)."""
    g = torch.Generator().manual_seed(seed)
    if isinstance(ds, TensorDataset):
        n = len(ds)
        order = torch.randperm(n, generator=g) if shuffle else torch.arange(n)
        for s in range(0, n, batch_size):
            idx = order[s:s + batch_size]
            yield tuple(t[idx] for t in ds.tensors)  # type: ignore[misc]
    else:
        yield from DataLoader(ds, batch_size=batch_size, shuffle=shuffle, generator=g, num_workers=0)


def _optimizer(model: nn.Module, cfg: TrainConfig, steps: int):
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for n, p in model.named_parameters() if p.requires_grad and not n.endswith("codebook")]
    no_decay = [p for n, p in model.named_parameters() if p.requires_grad and n.endswith("codebook")]
    assert len(decay) + len(no_decay) == len(params)
    opt = torch.optim.SGD([{"params": decay, "weight_decay": cfg.weight_decay},
                           {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, momentum=cfg.momentum)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(steps, 1))
    return opt, sched


def _autocast(cfg: TrainConfig):
    """torch.autocast for ``cfg.precision`` (CUDA only), or a null context at fp32."""
    dtypes = {"bf16": torch.bfloat16, "fp16": torch.float16}
    if cfg.precision == "fp32":
        return contextlib.nullcontext()
    if cfg.precision not in dtypes:
        raise ValueError(f"precision must be fp32, bf16 or fp16; got {cfg.precision!r}")
    if torch.device(cfg.device).type != "cuda":
        raise ValueError(f"mixed precision ({cfg.precision}) is for CUDA devices; got device {cfg.device!r}")
    return torch.autocast("cuda", dtype=dtypes[cfg.precision])


AUGMENT_SEED = 7919  # offsets the augmentation generator's seed from the shuffling's (seed · 1000 + epoch)


def _epoch_batches(ds: Dataset, cfg: TrainConfig, epoch: int, ctx: parallel.Parallel | None):
    """(x, y, loss weight) of one epoch: all of ``ds`` (weight 1) or this rank's share; class-balanced
    batches when ``cfg.per_class`` is set. A split with a ``batch_augment(x, generator)`` method
    (e.g. :class:`llcpkg.data.ShiftedTensorDataset`) has every training batch augmented, with a
    generator seeded by (seed, epoch): a resumed run draws the same augmentation as an uninterrupted one."""
    if cfg.per_class is not None:
        batches = _balanced_batches(ds, cfg, epoch, ctx)
    elif ctx is not None:
        batches = parallel.rank_batches(ds, cfg.batch_size, cfg.seed * 1000, epoch, ctx)
    else:
        batches = ((x, y, 1.0) for x, y in iterate_batches(ds, cfg.batch_size, True, seed=cfg.seed * 1000 + epoch))
    augment = getattr(ds, "batch_augment", None)
    if augment is None:
        return batches
    g = torch.Generator().manual_seed(AUGMENT_SEED + cfg.seed * 1000 + epoch)
    return ((augment(x, g), y, w) for x, y, w in batches)


def _balanced_batches(ds: Dataset, cfg: TrainConfig, epoch: int, ctx: parallel.Parallel | None):
    """(x, y, 1.0) of one epoch of class-balanced batches: ceil(N / batch_size) steps, as plain
    shuffling gives, seeded like it by (seed, epoch). In-memory sets, single process only."""
    if ctx is not None or not isinstance(ds, TensorDataset):
        raise ValueError("TrainConfig.per_class (class-balanced batches) needs an in-memory TensorDataset "
                         "and a single process")
    x, y = ds.tensors[0], ds.tensors[1]
    g = torch.Generator().manual_seed(cfg.seed * 1000 + epoch)
    steps = -(-len(ds) // cfg.batch_size)
    return ((x[idx], y[idx], 1.0) for idx in class_balanced_batches(y, cfg.batch_size, cfg.per_class, steps, g))


CHECK_EVERY = 64  # steps between host reads of the on-device finiteness flag (each read is a sync)


class NonFiniteLoss(FloatingPointError):
    """Training met a NaN or inf loss (or ended with non-finite weights); nothing was cached.

    ``stage``, ``epoch`` and ``batch`` (1-based; batch None for the weights) say where.
    """

    def __init__(self, stage: str, epoch: int, epochs: int, batch: int | None, batches: int):
        self.stage, self.epoch, self.batch = stage, epoch, batch
        what = (f"the training loss is NaN or inf at epoch {epoch}/{epochs}, batch {batch}/{batches}"
                if batch is not None else f"the weights are NaN or inf after epoch {epoch}/{epochs}")
        super().__init__(f"{stage}: {what}. Training stopped and nothing was cached. Check the data for NaN/inf "
                         "values or lower the learning rate.")


class _LossMeter:
    """One epoch's sum of loss × batch size and its first non-finite step, kept on the device
    so that checking every step's loss needs no host synchronisation until :meth:`check`."""

    def __init__(self, device: torch.device):
        dtype = torch.float32 if device.type == "mps" else torch.float64
        self.total = torch.zeros((), dtype=dtype, device=device)
        self.first_bad = torch.full((), -1, dtype=torch.int64, device=device)
        self.steps = self.count = 0

    def add(self, loss: torch.Tensor, n: int) -> None:
        loss = loss.detach()
        self.total += loss.to(self.total.dtype) * n
        new_bad = ~torch.isfinite(loss) & (self.first_bad < 0)
        self.first_bad = torch.where(new_bad, self.steps, self.first_bad)
        self.steps, self.count = self.steps + 1, self.count + n

    def check(self, stage: str, epoch: int, epochs: int, batches: int) -> None:
        """Raise :class:`NonFiniteLoss` if any step so far had a non-finite loss (on any rank:
        under torchrun every rank reads the same flag, so all of them stop together)."""
        first = int(parallel.all_max(self.first_bad))
        if first >= 0:
            raise NonFiniteLoss(stage, epoch + 1, epochs, first + 1, batches)

    def mean(self) -> float:
        return float(self.total) / max(self.count, 1)


def fit(model: nn.Module, ds: Dataset, loss_fn: Callable, cfg: TrainConfig,
        partial: Path | None = None, desc: str = "train", stop_after: int | None = None,
        progress: bool = True) -> list[float]:
    """Train ``model`` in place on ``ds``; return the mean loss of each epoch.

    ``progress``: show one progress bar for the stage (off for many short fits, e.g. on features).

    ``partial``: a checkpoint file written after every epoch and resumed from if present
    (and verified, see :mod:`llcpkg.cache`).
    ``stop_after``: stop (as if interrupted) after this many epochs of this call — for tests.

    Distributed mode (a torch.distributed process group is initialised, e.g. by torchrun):
    ``cfg.batch_size`` is the global batch, split over the ranks; the model trains under
    DistributedDataParallel with synchronised BatchNorm, the epoch loss is all-reduced and
    only rank 0 writes ``partial``. W processes with per-rank batch B/W give the weights of
    one with batch B up to float rounding (conditions in :mod:`llcpkg.parallel`).

    Raises ValueError for an empty ``ds`` and :class:`NonFiniteLoss` (``desc`` = the stage)
    when a step's loss is NaN or inf, before the epoch's partial checkpoint is written.
    """
    if len(ds) == 0:
        raise ValueError(f"{desc}: the training split is empty; nothing to train on")
    ctx = parallel.current()
    steps_per_epoch = -(-len(ds) // cfg.batch_size)
    opt, sched = _optimizer(model, cfg, cfg.epochs * steps_per_epoch)
    history: list[float] = []
    start = 0
    device = torch.device(cfg.device)
    fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
    model.to(device=device, memory_format=fmt)  # before loading, so the optimiser state lands on the device
    state = _load_verified(partial, weights_only=False, map_location=device)
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        start, history = state["epoch"], state["history"]
    wrapped = parallel.wrap(model, loss_fn, cfg, ctx) if ctx is not None else None
    scaler = torch.amp.GradScaler(device.type, enabled=cfg.precision == "fp16")
    with _stage_bar(desc, (cfg.epochs - start) * steps_per_epoch, progress) as bar:
        for epoch in range(start, cfg.epochs):
            if stop_after is not None and epoch - start >= stop_after:
                break
            model.train()
            meter = _LossMeter(device)
            bar.set_postfix_str(f"epoch {epoch + 1}/{cfg.epochs}", refresh=False)
            for x, y, weight in _epoch_batches(ds, cfg, epoch, ctx):
                x = x.to(device, memory_format=fmt) if x.dim() == 4 else x.to(device)
                with _autocast(cfg):
                    loss = wrapped(x, y.to(device)) if wrapped is not None else loss_fn(model, x, y.to(device), cfg)
                opt.zero_grad(set_to_none=True)
                scaler.scale(loss if weight == 1.0 else loss * weight).backward()
                scaler.step(opt)
                scaler.update()
                sched.step()
                meter.add(loss, len(y))
                if meter.steps % CHECK_EVERY == 0:
                    meter.check(desc, epoch, cfg.epochs, steps_per_epoch)
                bar.update()
            meter.check(desc, epoch, cfg.epochs, steps_per_epoch)
            total, count = parallel.all_sum(float(meter.total), meter.count, device=cfg.device)
            history.append(total / max(count, 1))
            if partial is not None and parallel.is_writer():
                save_checkpoint(partial, {"model": model.state_dict(), "opt": opt.state_dict(),
                                          "sched": sched.state_dict(), "epoch": epoch + 1, "history": history})
            parallel.barrier()
    if wrapped is not None:
        parallel.unwrap(wrapped)
    model.to(memory_format=torch.contiguous_format)
    model.eval()
    return history


def _stage_bar(desc: str, steps: int, progress: bool) -> tqdm:
    """One progress bar for a whole stage (``steps`` steps, the epoch in its postfix), not one per
    epoch: fewer widget messages in a notebook (nbval reads a long cell's messages only when it ends,
    and a full queue loses the last one). Off when ``progress`` is False, on ranks other than 0, and
    under ``TQDM_DISABLE=1`` (make reproduce): an explicit disable= overrides tqdm's own reading of it."""
    off = not progress or not parallel.is_writer() or os.environ.get("TQDM_DISABLE", "").lower() in ("1", "true")
    return tqdm(total=steps, desc=desc, leave=False, mininterval=2, disable=off)


@torch.no_grad()
def predict(model: Classifier, ds: Dataset, batch_size: int = 1024, device: str = "cpu") -> dict[str, np.ndarray]:
    """Run the model over ``ds`` in eval mode.

    Returns ``features`` (N, d), ``outputs`` (N, ·) (the head's output) and ``labels`` (N,);
    for heads with ``bit_logits`` (LLC, HashNet, GreedyHash) also ``bit_logits`` (N, k), whose
    signs are the codes. The model is left on the device it came on, in eval mode.
    """
    home = next(model.parameters()).device
    model.eval().to(device)
    try:
        return _predict(model, ds, batch_size, device)
    finally:
        model.to(home)


def _predict(model: Classifier, ds: Dataset, batch_size: int, device: str) -> dict[str, np.ndarray]:
    has_bits = hasattr(model.head, "bit_logits")
    feats, outs, bits, labels = [], [], [], []
    for x, y in iterate_batches(ds, batch_size, shuffle=False):
        f = model.features(x.to(device))
        feats.append(f.cpu())
        outs.append(model.head(f).cpu())
        if has_bits:
            bits.append(model.head.bit_logits(f).cpu())
        labels.append(torch.as_tensor(y))
    out = {"features": torch.cat(feats).numpy(), "outputs": torch.cat(outs).numpy(),
           "labels": torch.cat(labels).numpy()}
    if bits:
        out["bit_logits"] = torch.cat(bits).numpy()
    return out


# ----------------------------------------------------------------------------- cached stages
# CACHE_VERSION and stage_key live in llcpkg.cache (one version for every cached stage);
# they are re-exported here for code that imported them from train.


def data_id(data: DataBundle) -> dict:
    """What identifies a data set in a cache key: name, sizes, classes and content fingerprints."""
    return {"name": data.name, "train": len(data.train), "test": len(data.test), "classes": data.num_classes,
            "fingerprint": [fingerprint(data.train), fingerprint(data.test)]}



def _load_verified(path: Path | None, **kw):
    """:func:`llcpkg.cache.load_checkpoint` that, under torchrun, lets rank 0 verify (and move
    aside a damaged file) before the other ranks read, so no two ranks race on one file."""
    state = load_checkpoint(path, **kw) if parallel.is_writer() else None
    parallel.barrier()
    return state if parallel.is_writer() else load_checkpoint(path, **kw)


def _stage_path(stage: str, key: str, cache_dir: Path | str | None) -> Path | None:
    return checkpoint_path(cache_dir, stage, key) if cache_dir is not None else None


def stage_cached(stage: str, key: str, cache_dir: Path | str | None) -> bool:
    """Whether :func:`run_stage` would load stage ``stage`` with ``key`` from ``cache_dir``
    instead of training it (a verified checkpoint is there; nothing is moved)."""
    path = _stage_path(stage, key, cache_dir)
    return path is not None and is_cached(path)


def run_stage(stage: str, key: str, model: nn.Module, ds: Dataset, loss: str | Callable, cfg: TrainConfig,
              cache_dir: Path | str | None, stop_after: int | None = None) -> Trained:
    """Train ``model`` with ``loss`` (a name in ``LOSSES`` or a callable ``loss(model, x, y, cfg)``)
    unless ``cache_dir/{stage}-{key}.pt`` holds a verified checkpoint; load it if so (a damaged
    one is moved aside and the stage retrains). ``key`` must identify everything that shapes
    the result (use :func:`stage_key`), the loss included. A non-finite loss or final weights
    raise :class:`NonFiniteLoss` and leave no checkpoint, partial or final. Under torchrun only
    rank 0 writes; the other ranks wait for it and then load the same file."""
    with runtimes.timed(stage) as t:
        path = _stage_path(stage, key, cache_dir)
        state = _load_verified(path)
        t.cached = state is not None
        if state is not None:
            model.load_state_dict(state)
            return Trained(model.eval(), key)
        return _train_stage(stage, key, path, model, ds, loss, cfg, stop_after)


def _train_stage(stage: str, key: str, path: Path | None, model: nn.Module, ds: Dataset, loss: str | Callable,
                 cfg: TrainConfig, stop_after: int | None) -> Trained:
    """The training half of :func:`run_stage`: fit, check, write the checkpoint."""
    partial = partial_path(path) if path is not None else None
    loss_fn = LOSSES[loss] if isinstance(loss, str) else loss
    try:
        history = fit(model, ds, loss_fn, cfg, partial=partial, desc=stage, stop_after=stop_after)
        if not all(bool(torch.isfinite(t).all()) for t in model.state_dict().values() if t.is_floating_point()):
            raise NonFiniteLoss(stage, len(history), cfg.epochs, None, 0)
    except NonFiniteLoss:
        if partial is not None and parallel.is_writer():
            discard(partial)
        raise
    if path is not None and len(history) >= cfg.epochs:
        if parallel.is_writer():  # rank 0 (or the only process) writes; the other ranks then load it
            save_checkpoint(path, {k: v.cpu() for k, v in model.state_dict().items()})
            discard(partial)
        parallel.barrier()
        if not parallel.is_writer():
            model.load_state_dict(load_checkpoint(path))
    return Trained(model, key)


def train_baseline(data: DataBundle, model_cfg: ModelConfig, cfg: TrainConfig,
                   cache_dir: Path | str | None = None, stop_after: int | None = None) -> Trained:
    """The real-valued linear-classifier baseline on full features."""
    model_cfg = replace(model_cfg, head="linear", bits=0)
    key = stage_key(stage="baseline", data=data_id(data), model=model_cfg, train=cfg)
    set_seed(cfg.seed)
    model = build_model(model_cfg, data.image_shape[0], data.num_classes)
    return run_stage("baseline", key, model, data.train, "ce", cfg, cache_dir, stop_after)


def train_phase1(data: DataBundle, model_cfg: ModelConfig, cfg: TrainConfig, cache_dir: Path | str | None = None,
                 warm_start: Trained | None = None, codebook: np.ndarray | None = None,
                 stop_after: int | None = None, backbone: BackboneHook | None = None,
                 ls_projector: bool | None = None) -> Trained:
    """LLC phase 1: learn the class codes jointly with the backbone and projector.

    ``warm_start``: a trained model whose backbone initialises this one. ``codebook``
    (L, k): initial real codebook (e.g. ±1 codes from SVD/CCA); if None, N(0, 2/k) (kaiming
    normal, fan_in = k, the official init: with N(0, 1) phase 1 flipped 241 of Omniglot's 3872
    bits and MHD reached 35.2%; with N(0, 2/k) 596 bits and 48.2%, in one side run). With
    both a codebook and a linear-head warm start, P starts from :func:`init_projector`
    unless ``ls_projector`` is False (then P keeps its default init, as for a random start,
    and the cache key says so); None keeps that default.
    ``backbone``: build the backbone with this hook instead of ``model_cfg``'s (the head is
    still ``model_cfg``'s LLC head); its ``key`` enters the cache key.
    """
    check_code_length(model_cfg.bits, data.num_classes)
    model_cfg = replace(model_cfg, head="llc")
    key = stage_key(stage="phase1", data=data_id(data), model=model_cfg, train=cfg,
                    parent=warm_start.key if warm_start else None,
                    codebook=codebook if codebook is not None else "kaiming-normal",
                    **({"backbone": backbone.key} if backbone is not None else {}),
                    **({"projector": "default-init"} if ls_projector is False else {}))
    set_seed(cfg.seed)
    cb = torch.as_tensor(codebook, dtype=torch.float32) if codebook is not None else None
    if backbone is None:
        model = build_model(model_cfg, data.image_shape[0], data.num_classes, codebook=cb)
    else:
        net = backbone.build()
        model = Classifier(net, build_head("llc", net.out_dim, data.num_classes, model_cfg.bits, codebook=cb,
                                           logit_scale=model_cfg.logit_scale))
    if warm_start is not None:
        model.backbone.load_state_dict(warm_start.model.backbone.state_dict())
        if codebook is not None and isinstance(warm_start.model.head, LinearHead) and ls_projector is not False:
            init_projector(model.head, warm_start.model.head)
    return run_stage("phase1", key, model, data.train, "ce", cfg, cache_dir, stop_after)


@torch.no_grad()
def init_projector(head: LLCHead, linear: LinearHead) -> None:
    """Warm-start P (and its bias) so that the LLC logits s·B(C) P F(x) are the least-squares
    projection of the linear head's logits W F(x) + b onto the span of B(C):
    P = B(C)⁺ W / s, bias = B(C)⁺ b / s. Used when phase 1 starts from a given codebook."""
    pinv = torch.linalg.pinv(head.class_codes())  # (k, L)
    head.projector.weight.copy_(pinv @ linear.fc.weight / head.scale)
    head.projector.bias.copy_(pinv @ linear.fc.bias / head.scale)


def train_phase2(phase1: Trained, data: DataBundle, cfg: TrainConfig, cache_dir: Path | str | None = None,
                 stop_after: int | None = None) -> Trained:
    """LLC phase 2: freeze B(C), train backbone and projector on the k bit problems."""
    key = stage_key(stage="phase2", data=data_id(data), train=cfg, parent=phase1.key)
    model: Classifier = copy.deepcopy(phase1.model)  # never alias the cached phase-1 model
    model.head.codebook.requires_grad_(False)
    set_seed(cfg.seed)
    return run_stage("phase2", key, model, data.train, "bits", cfg, cache_dir, stop_after)

