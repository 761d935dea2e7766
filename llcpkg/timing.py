"""Wall-clock timing of training steps and inference, for ratios measured in one run.

Timings are for benchmarks and notebooks (marked so that nbval ignores their output),
never for tests. Report ratios between methods timed in the same process, not absolutes.
"""
from __future__ import annotations

import time
from typing import Callable

import torch
from torch import nn

__all__ = ["median_seconds", "interleaved_seconds", "train_step_seconds", "inference_seconds"]


def median_seconds(fn: Callable[[], object], repeats: int = 10, warmup: int = 2) -> float:
    """Median wall time of ``fn()`` over ``repeats`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def interleaved_seconds(fns: dict[str, Callable[[], object]], repeats: int = 10,
                        warmup: int = 0) -> dict[str, list[float]]:
    """Wall times of every ``fns[name]()`` over ``repeats`` rounds, each round calling every
    function once in turn (so load on a shared machine hits all alike); ``warmup`` untimed rounds first."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return times


def train_step_seconds(model: nn.Module, loss_fn: Callable, cfg, x: torch.Tensor, y: torch.Tensor,
                       repeats: int = 10) -> float:
    """Median seconds of one SGD step (forward, backward, update) on the batch (x, y).

    ``loss_fn(model, x, y, cfg)`` is one of ``llcpkg.train.LOSSES``; the model is trained in place.
    """
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    model.train()

    def step():
        opt.zero_grad(set_to_none=True)
        loss_fn(model, x, y, cfg).backward()
        opt.step()

    return median_seconds(step, repeats)


@torch.no_grad()
def inference_seconds(model: nn.Module, x: torch.Tensor, repeats: int = 10) -> float:
    """Median seconds of one forward pass of ``model`` on ``x`` in eval mode."""
    model.eval()
    return median_seconds(lambda: model(x), repeats)
