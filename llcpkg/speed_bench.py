"""The speed that binary codes promise, measured: Hamming ranking vs cosine, the HFH step.

Two measurements beside ``decode_bench`` (decoding), each a ratio of wall times taken in one
process, the two sides interleaved call by call so that load on a shared machine hits both
alike, and repeated over several runs (``median_goals`` reports the median run):

* **Retrieval** (``retrieval_speed``): ranking a database of ``n_db`` items for one query or
  a batch. Hamming: random k-bit codes, packed, ``ranking.hamming_top_r`` (XOR + popcount
  into uint8 levels, top-R by counting, ties as the ``expected`` policy defines them).
  Cosine: random float32 features of ``dim`` dims, unit-normalised offline, a matvec (matmul
  for a batch) + ``np.argpartition`` - the baseline of ``experiments.retrieval.query_time_table``.
* **HFH step** (``hfh_step_speed``): one SGD step (forward, backward, update) of the 3-layer
  MLP of notebook 06 (``compress.NetSpec``), dense / HashedNets / HFH, through
  ``compress.overhead`` (random inputs: timing does not depend on the data).

``speed_goals`` turns both into the issue's goals (goal, measured, target, met); the decoding
goals come from ``decode_bench.goals_table``. Timings belong here and in notebook 07, never
in tests.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Callable

import numpy as np
import pandas as pd
import torch

from . import compress
from .decode import PackedCodes
from .decode_bench import median_goals, met
from .ranking import _unit, hamming_top_r

__all__ = ["SpeedConfig", "retrieval_speed", "hfh_step_speed", "hfh_step_profile", "speed_goals", "median_goals"]


@dataclass
class SpeedConfig:
    """What to measure (defaults: the issue's setting, small enough for a CI smoke run)."""

    n_db: int = 60_000  # database items (Fashion-MNIST's training split)
    dim: int = 64  # float features of the cosine baseline
    ks: tuple = (16, 32, 64)  # code lengths of the Hamming ranking
    batches: tuple = (1, 256)  # queries per ranking call
    R: int = 1000  # top-R cut-off
    calls: int = 20  # timed calls per (k, batch), each side
    hidden: tuple = (300,)  # MLP hidden widths (notebook 06's mlp3)
    batch_size: int = 256  # training batch of the HFH step
    factor: float = 1 / 8  # compression factor of HashedNets and HFH
    hashes: int = 4  # HFH's U
    depth: int = 2  # HFH's g depth
    steps: int = 20  # timed training steps per model
    seed: int = 0


# ------------------------------------------------------------------ retrieval
def _interleaved(fns: dict[str, Callable[[int], object]], calls: int) -> dict[str, float]:
    """Median wall seconds of each fn(i), i = 0..calls-1, the fns called in turn each round."""
    for fn in fns.values():
        fn(0)  # warm-up: scratch buffers, BLAS
    times = {name: [] for name in fns}
    for i in range(calls):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn(i)
            times[name].append(time.perf_counter() - t0)
    return {name: float(np.median(t)) for name, t in times.items()}


def retrieval_speed(cfg: SpeedConfig) -> pd.DataFrame:
    """Per-query time of Hamming top-R vs cosine top-R, one row per (k, batch).

    Columns: k, batch, hamming_us, cosine_us (per query), speedup = cosine / Hamming.
    """
    rng = np.random.default_rng(cfg.seed)
    nq = max(cfg.batches) * 2
    feats = _unit(rng.standard_normal((cfg.n_db, cfg.dim), dtype=np.float32))
    qf = _unit(rng.standard_normal((nq, cfg.dim), dtype=np.float32))
    R = min(cfg.R, cfg.n_db - 1)
    rows = []
    for k in cfg.ks:
        db = PackedCodes.from_bits(rng.integers(0, 2, (cfg.n_db, k), dtype=np.uint8))
        qc = PackedCodes.from_bits(rng.integers(0, 2, (nq, k), dtype=np.uint8))
        for b in cfg.batches:
            def rows_of(i, b=b):
                s = (i * b) % (nq - b + 1)
                return slice(s, s + b)

            def hamming(i, b=b):
                hamming_top_r(PackedCodes(qc.words[rows_of(i)], k), db, R)

            def cosine(i, b=b):
                np.argpartition(-(qf[rows_of(i)] @ feats.T), R, axis=1)

            t = _interleaved({"hamming": hamming, "cosine": cosine}, cfg.calls)
            rows.append(dict(k=k, batch=b, hamming_us=t["hamming"] / b * 1e6, cosine_us=t["cosine"] / b * 1e6,
                             speedup=t["cosine"] / t["hamming"], n_db=cfg.n_db, dim=cfg.dim, R=R))
    return pd.DataFrame(rows)


# ------------------------------------------------------------------ HFH step
def _mlp_models(cfg: SpeedConfig) -> tuple[dict[str, torch.nn.Module], torch.Tensor, torch.Tensor]:
    """Dense / HashedNets / HFH copies of the MLP, and one random batch (x (B, 1, 28, 28), y (B,))."""
    torch.manual_seed(cfg.seed)
    shape = SimpleNamespace(image_shape=(1, 28, 28), num_classes=10)  # Fashion-MNIST's shapes
    dense = compress.build_net(compress.NetSpec("mlp3", "mlp", tuple(cfg.hidden)), shape)
    hn = compress.CompressionConfig("hashednets", cfg.factor, seed=cfg.seed)
    hfh = compress.CompressionConfig("hfh", cfg.factor, hashes=cfg.hashes, depth=cfg.depth, seed=cfg.seed)
    models = {"dense": dense, "hashednets": compress.compress_model(dense, hn),
              "hfh": compress.compress_model(dense, hfh)}
    g = torch.Generator().manual_seed(cfg.seed)
    x = torch.randn(cfg.batch_size, 1, 28, 28, generator=g)
    return models, x, torch.randint(0, 10, (cfg.batch_size,), generator=g)


def hfh_step_speed(cfg: SpeedConfig) -> pd.DataFrame:
    """Training-step and inference time of dense / HashedNets / HFH on the MLP (``compress.overhead``).

    Adds ``train_vs_hashednets`` = train_ms / HashedNets' train_ms, the net and the batch size.
    """
    models, x, y = _mlp_models(cfg)
    df = compress.overhead(models, x, y, repeats=cfg.steps)
    df["train_vs_hashednets"] = df["train_ms"] / float(df.set_index("model").loc["hashednets", "train_ms"])
    return df.assign(net="mlp3", batch=cfg.batch_size)


def hfh_step_profile(cfg: SpeedConfig, steps: int = 5, top: int = 12) -> pd.DataFrame:
    """Where an HFH training step spends its time: torch.profiler's operators by self CPU time.

    Columns: operator, ms_per_step (self time), share (of the step's total self time), calls_per_step.
    """
    from torch.profiler import ProfilerActivity, profile

    models, x, y = _mlp_models(cfg)
    model = models["hfh"].train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def step():
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    ev = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in ev)
    df = pd.DataFrame([dict(operator=e.key, ms_per_step=e.self_cpu_time_total / 1e3 / steps,
                            share=e.self_cpu_time_total / total, calls_per_step=e.count / steps) for e in ev])
    return df.sort_values("ms_per_step", ascending=False).head(top).reset_index(drop=True)


# ------------------------------------------------------------------ goals
def speed_goals(retrieval: pd.DataFrame | None = None, hfh: pd.DataFrame | None = None) -> pd.DataFrame:
    """The issue's retrieval and HFH goals from one run of each measurement.

    Columns: goal, batch, measured, target, met. Retrieval: cosine / Hamming time per query
    >= 10 for every (k, batch) measured. HFH: HFH step / HashedNets step <= 2 (and, for the
    record, HFH / dense, whose target is the paper's concession of about 1.2x).
    """
    rows = []
    if retrieval is not None:
        for r in retrieval.itertuples():
            rows.append(dict(goal=f"cosine / Hamming top-{r.R} time ({r.n_db} items, k={r.k}, cosine d={r.dim})",
                             batch=r.batch, measured=r.speedup, target=">= 10"))
    if hfh is not None:
        t = hfh.set_index("model")
        b = int(hfh["batch"].iloc[0]) if "batch" in hfh else np.nan
        rows.append(dict(goal="HFH / HashedNets training step (MLP)", batch=b,
                         measured=t.loc["hfh", "train_ms"] / t.loc["hashednets", "train_ms"], target="<= 2"))
        rows.append(dict(goal="HFH / dense training step (MLP; HFH authors: ~1.2x)", batch=b,
                         measured=t.loc["hfh", "train_ms"] / t.loc["dense", "train_ms"], target="<= 1.2"))
    g = pd.DataFrame(rows, columns=["goal", "batch", "measured", "target"])
    g["met"] = [met(m, tg) for m, tg in zip(g.measured, g.target)]
    return g
