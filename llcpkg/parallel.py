"""Data parallelism for :func:`llcpkg.train.fit`: torch.distributed + DistributedDataParallel.

``fit`` trains in this mode whenever a process group is initialised (``torchrun``, see
:mod:`llcpkg.distributed`); with none it is the plain single-process loop. World size W,
rank r, global batch B = ``cfg.batch_size`` (must be divisible by W), per-rank batch b = B / W.

- **Order.** In-memory ``TensorDataset``s: every rank draws the permutation of
  :func:`llcpkg.train.iterate_batches` (seed ``cfg.seed·1000 + epoch``) and takes the r-th of
  W contiguous slices of each global batch; its loss is weighted by W·n_r / n (n_r of the n
  examples of that batch are its), so DDP's gradient average is the gradient of the mean
  over the global batch. Other data sets (ImageFolder, CIFAR): torch's
  ``DistributedSampler`` (shuffled, seed ``cfg.seed·1000``, ``set_epoch(epoch)``) and a
  DataLoader of b per rank; global batch t is then elements [tB, (t+1)B) of
  ``randperm(n)`` seeded ``cfg.seed·1000 + epoch``, the same for every W that divides n
  (else the sampler pads with the first W − n mod W indices again). That is not the order of
  the single-process DataLoader (which draws its worker seed from the generator first).
- **BatchNorm** layers are synchronised while training (statistics of the global batch):
  ``torch.nn.SyncBatchNorm`` on CUDA, :class:`AllReduceBatchNorm` on CPU (torch's
  SyncBatchNorm is GPU-only), and put back to plain BatchNorm when ``fit`` returns.
- **Equivalence** that follows (tested, ``tests/test_distributed.py``): one epoch on W
  processes with per-rank batch B/W gives the weights of one process with batch B, up to
  float rounding (the all-reduces sum in another order), for TensorDatasets always and for
  other sets when launched under torchrun at any W dividing n. Exception: a final global
  batch with fewer than W examples is skipped (on every rank).
- **Metrics**: the epoch's loss sum and count are all-reduced. **Checkpoints**: only rank 0
  writes; the others wait at a barrier (``train.run_stage``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler, TensorDataset

__all__ = ["Parallel", "init", "shutdown", "current", "is_writer", "barrier", "all_sum", "rank_batches",
           "AllReduceBatchNorm", "wrap", "unwrap"]


@dataclass(frozen=True)
class Parallel:
    """This process's place in the job and its data-loading settings."""

    rank: int  # global rank, 0 … world − 1
    world: int  # number of processes
    local_rank: int  # rank on this node (the CUDA device index)
    workers: int = 0  # DataLoader worker processes per rank (non-in-memory sets)
    pin_memory: bool = False  # page-locked host batches (faster host → GPU copies)


_SETTINGS: dict[str, Parallel] = {}


def init(device: str, workers: int = 0, pin_memory: bool = False) -> Parallel | None:
    """Join the process group described by torchrun's environment (RANK, WORLD_SIZE,
    LOCAL_RANK, MASTER_ADDR/PORT): NCCL on CUDA, gloo on CPU. Returns None (and starts
    nothing) outside torchrun."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return None
    local = int(os.environ.get("LOCAL_RANK", 0))
    cuda = torch.device(device).type == "cuda"
    if cuda:
        torch.cuda.set_device(local)
    dist.init_process_group("nccl" if cuda else "gloo", device_id=torch.device("cuda", local) if cuda else None)
    ctx = Parallel(dist.get_rank(), dist.get_world_size(), local, workers, pin_memory)
    _SETTINGS["current"] = ctx
    return ctx


def shutdown() -> None:
    """Leave the process group (if any)."""
    _SETTINGS.pop("current", None)
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def current() -> Parallel | None:
    """The running job, or None when no process group is initialised."""
    if not (dist.is_available() and dist.is_initialized()):
        return None
    if "current" in _SETTINGS:
        return _SETTINGS["current"]
    return Parallel(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))


def is_writer() -> bool:
    """True on rank 0 and in a single process: the one process that writes checkpoints."""
    ctx = current()
    return ctx is None or ctx.rank == 0


def barrier() -> None:
    """Wait for every rank (no-op in a single process)."""
    if current() is not None:
        dist.barrier()


def all_sum(*values: float, device: str = "cpu") -> list[float]:
    """Sum each number over the ranks (float64)."""
    t = torch.tensor(values, dtype=torch.float64, device=device)
    if current() is not None:
        dist.all_reduce(t)
    return t.tolist()


def all_max(x: torch.Tensor) -> torch.Tensor:
    """The element-wise maximum of ``x`` over the ranks (``x`` itself in one process)."""
    if current() is None:
        return x
    x = x.clone()
    dist.all_reduce(x, op=dist.ReduceOp.MAX)
    return x


# ----------------------------------------------------------------------------- data
def rank_batches(ds: Dataset, batch_size: int, seed: int, epoch: int, ctx: Parallel
                 ) -> Iterator[tuple[torch.Tensor, torch.Tensor, float]]:
    """This rank's share of each global batch of ``batch_size``: (x, y, loss weight W·n_r/n).

    ``seed`` is ``cfg.seed * 1000``; the epoch's order is seeded ``seed + epoch`` (see the
    module docstring for the order and when it equals a single-process run's)."""
    if batch_size % ctx.world:
        raise ValueError(f"the global batch {batch_size} must be divisible by the world size {ctx.world}")
    if len(ds) < ctx.world:
        raise ValueError(f"world size {ctx.world} is larger than the {len(ds)} training examples")
    if isinstance(ds, TensorDataset):
        order = torch.randperm(len(ds), generator=torch.Generator().manual_seed(seed + epoch))
        for s in range(0, len(ds), batch_size):
            idx = order[s:s + batch_size]
            if len(idx) < ctx.world:  # too few to give every rank one example
                continue
            mine = torch.tensor_split(idx, ctx.world)[ctx.rank]  # (n_r,)
            yield (*(t[mine] for t in ds.tensors), ctx.world * len(mine) / len(idx))  # type: ignore[misc]
        return
    sampler = DistributedSampler(ds, num_replicas=ctx.world, rank=ctx.rank, shuffle=True, seed=seed)
    sampler.set_epoch(epoch)
    loader = DataLoader(ds, batch_size=batch_size // ctx.world, sampler=sampler, num_workers=ctx.workers,
                        pin_memory=ctx.pin_memory, persistent_workers=False)
    for x, y in loader:
        yield x, y, 1.0


# ----------------------------------------------------------------------------- model
class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks; backward: the sum of the gradients over ranks (the chain rule through
    a quantity every rank uses). torch's ``distributed.nn.functional.all_reduce`` did this
    and is deprecated."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        x = x.clone()
        dist.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class AllReduceBatchNorm(_BatchNorm):
    """BatchNorm (any input (B, C, …)) whose training statistics are those of the global batch over all ranks.

    For CPU (gloo) jobs, where ``torch.nn.SyncBatchNorm`` is not implemented. Per channel, the
    sums Σx, Σx² and the count are summed over ranks by a differentiable all-reduce (its
    backward sums the gradients over ranks, as the chain rule through a global mean needs);
    normalisation uses the biased variance and the running variance the unbiased one,
    as ``nn.BatchNorm2d``. In eval mode, or with one rank, it is plain BatchNorm.
    """

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected input (B, C, ...); got shape {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, …) → (B, C, …)
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        c, dims, shape = x.shape[1], [0, *range(2, x.dim())], [1, -1] + [1] * (x.dim() - 2)
        local = torch.cat([x.sum(dims), (x * x).sum(dims), x.new_tensor([x.numel() / c])])
        total = _AllReduceSum.apply(local)  # (2C + 1,)
        n = total[-1]
        mean = total[:c] / n
        var = (total[c:2 * c] / n - mean * mean).clamp_min(0)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                self.running_mean.mul_(1 - m).add_(m * mean.detach())
                self.running_var.mul_(1 - m).add_(m * var.detach() * n / (n - 1).clamp_min(1))
        y = (x - mean.view(shape)) * torch.rsqrt(var + self.eps).view(shape)
        return y * self.weight.view(shape) + self.bias.view(shape) if self.affine else y


def _swap_batchnorm(model: nn.Module, make: Callable[[str, _BatchNorm], nn.Module]) -> None:
    """Replace every BatchNorm module by ``make(name, bn)``, in place."""
    for name, bn in [(n, m) for n, m in model.named_modules() if isinstance(m, _BatchNorm)]:
        parent, _, leaf = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, leaf, make(name, bn))


def _rebuilt(bn: _BatchNorm, cls: type) -> nn.Module:
    """A ``cls`` BatchNorm sharing ``bn``'s parameters and buffers (the optimiser keeps its references)."""
    new = cls(bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats)
    if bn.affine:
        new.weight, new.bias = bn.weight, bn.bias
    new.running_mean, new.running_var, new.num_batches_tracked = bn.running_mean, bn.running_var, bn.num_batches_tracked
    return new.to(bn.weight.device if bn.affine else bn.running_mean.device).train(bn.training)


class _Loss(nn.Module):
    """The loss as a module, so that DDP sees the forward of every loss (``bit_loss`` calls
    ``model.features`` and the head, not ``model(x)``)."""

    def __init__(self, model: nn.Module, loss_fn: Callable, cfg, batchnorm: dict[str, type]):
        super().__init__()
        self.model, self.loss_fn, self.cfg = model, loss_fn, cfg
        self.batchnorm = batchnorm  # module name → its BatchNorm class before wrap()

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.loss_fn(self.model, x, y, self.cfg)


def wrap(model: nn.Module, loss_fn: Callable, cfg, ctx: Parallel) -> DistributedDataParallel:
    """Synchronise ``model``'s BatchNorm layers (in place) and return ``loss(x, y)`` under DDP
    (DDP averages the gradients over ranks). Undo with :func:`unwrap`."""
    cuda = torch.device(cfg.device).type == "cuda"
    classes = {n: type(m) for n, m in model.named_modules() if isinstance(m, _BatchNorm)}
    sync = nn.SyncBatchNorm if cuda else AllReduceBatchNorm
    _swap_batchnorm(model, lambda name, bn: _rebuilt(bn, sync))
    return DistributedDataParallel(_Loss(model, loss_fn, cfg, classes), device_ids=[ctx.local_rank] if cuda else None,
                                   forward_sync_buffers=False)  # BatchNorm statistics are synchronised instead


def unwrap(wrapped: DistributedDataParallel) -> nn.Module:
    """The model of :func:`wrap`, with its BatchNorm classes put back."""
    model, classes = wrapped.module.model, wrapped.module.batchnorm
    _swap_batchnorm(model, lambda name, bn: _rebuilt(bn, classes[name]))
    return model
