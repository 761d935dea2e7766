"""Cost of training's per-step finite-loss check against the step it guards.

One cpu-profile training step (SmallCNN width 16, batch 256, 28×28, channels-last, SGD) is
timed with and without the check of ``llcpkg.train`` (``_LossMeter.add`` every step, a host
read every ``CHECK_EVERY`` steps), interleaved in one process; the check alone is also timed
over many calls. Prints medians and the check's share of a step.

    PYTHONPATH=. python benchmarks/finite_loss_check.py [--device cpu] [--repeats 30]
"""
from __future__ import annotations

import argparse
import time

import torch

from llcpkg.models import ModelConfig, build_model
from llcpkg.profiles import get_profile
from llcpkg.train import CHECK_EVERY, LOSSES, TrainConfig, _LossMeter


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=30)
    args = ap.parse_args()
    prof = get_profile("cpu", device=args.device)
    device = torch.device(args.device)
    fmt = torch.channels_last if prof.channels_last else torch.contiguous_format
    g = torch.Generator().manual_seed(0)
    x = torch.randn(prof.batch_size, 1, 28, 28, generator=g).to(device, memory_format=fmt)
    y = torch.randint(0, 10, (prof.batch_size,), generator=g).to(device)
    model = build_model(ModelConfig(prof.backbone, prof.width), 1, 10).to(device, memory_format=fmt).train()
    cfg = TrainConfig(batch_size=prof.batch_size, device=args.device)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    meter = _LossMeter(device)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    def step(check: bool) -> float:
        sync()
        t0 = time.perf_counter()
        loss = LOSSES["ce"](model, x, y, cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if check:
            meter.add(loss, len(y))
            if meter.steps % CHECK_EVERY == 0:
                meter.check("bench", 0, 1, 1)
        sync()
        return time.perf_counter() - t0

    for _ in range(3):
        step(True), step(False)
    with_check, without = [], []
    for _ in range(args.repeats):
        with_check.append(step(True))
        without.append(step(False))

    loss = LOSSES["ce"](model, x, y, cfg).detach()
    calls = 20 * CHECK_EVERY
    sync()
    t0 = time.perf_counter()
    for i in range(calls):
        meter.add(loss, len(y))
        if meter.steps % CHECK_EVERY == 0:
            meter.check("bench", 0, 1, 1)
    sync()
    per_check = (time.perf_counter() - t0) / calls

    def med(v):
        return sorted(v)[len(v) // 2]

    print(f"device {args.device}, threads {torch.get_num_threads()}, batch {prof.batch_size}, width {prof.width}")
    print(f"step without check: {1e3 * med(without):.2f} ms; with check: {1e3 * med(with_check):.2f} ms "
          f"(median of {args.repeats}, interleaved)")
    print(f"check alone: {1e6 * per_check:.1f} us per step (mean of {calls}, host read every {CHECK_EVERY}) = "
          f"{100 * per_check / med(without):.3f}% of a step")


if __name__ == "__main__":
    main()
