"""Notebook 06: compressing the weights (HashedNets, HFH, pruning) and LLC on a compressed
backbone. The layers, the compressor registry and the memory accounting are the library's
(:mod:`llcpkg.compress`); this module holds the experiment: its config, its tables, its
figure and the verdicts read from the tables.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..compress import (CompressionConfig, NetSpec, build_net, compress, compressed_backbone, memory, overhead,
                        train_compressed, _canonical)
from ..data import DataBundle, subset
from ..metrics import accuracy, classification_metrics, llc_outputs
from ..pipeline import load_bundle, run_llc, stage_configs
from ..profiles import Profile, stage_epochs
from ..train import TrainConfig, iterate_batches
from ..verdicts import FAILS, HOLDS, PARTLY, Rule, Tables, collect, pct

__all__ = ["CompressionExperiment", "Setup", "setup", "run_grid", "grid_table", "sweep_table", "llc_table",
           "overhead_table", "plot_error_vs_bytes", "run", "verdicts", "describe_hfh_vs_hashednets",
           "describe_hfh_vs_pruning", "describe_sweep", "describe_llc", "describe_overhead", "readings", "CLAIMS",
           "COMPRESSION", "SWEEP", "LLC_TABLE", "OVERHEAD", "REFERENCE", "NET", "METHOD", "FACTOR", "HASHES", "DEPTH",
           "ERROR"]

# tables (results/tables/<name>.csv) and the columns the claims read
COMPRESSION, SWEEP, LLC_TABLE = "compression", "compression_sweep", "compression_llc"
OVERHEAD, REFERENCE = "compression_overhead", "compression_reference"
NET, METHOD, FACTOR, HASHES, DEPTH, ERROR = "net", "method", "factor", "hashes", "depth", "error"


@dataclass(frozen=True)
class CompressionExperiment:
    """Notebook 06's parameters (``None``: derived from the profile)."""

    profile: Profile  # scale of the run
    seed: int = 0  # data subsets, initialisation, shuffling and the hashes
    factors: tuple[float, ...] = (1 / 8, 1 / 16, 1 / 32, 1 / 64)  # compression factors of the full grid (3-layer MLP)
    small_factors: tuple[float, ...] = (1 / 8, 1 / 64)  # factors for the 5-layer MLP and the CNN
    mlp3_hidden: tuple[int, ...] = (300,)  # the papers use 1,000 hidden units; narrowed for a CPU
    mlp5_hidden: tuple[int, ...] = (100, 100, 100)  # HFH's 5-layer MLP
    hfh_hashes: int = 4  # HFH's U
    hfh_depth: int = 2  # HFH's reconstruction depth (U→U/2→1)
    sweep_factor: float = 1 / 32  # where the U × depth sweep runs
    sweep_hashes: tuple[int, ...] = (1, 2, 4, 8)
    sweep_depths: tuple[int, ...] = (1, 2)
    mlp_train: int = 10_000  # training images for the MLP runs (the test set is whole)
    cnn_width: int = 16  # SmallCNN width for the CNN rows and LLC
    cnn_train: int = 10_000  # training images for the CNN and LLC runs
    llc_bits: int = 8  # k for LLC + HFH
    mlp_epochs: int | None = None  # None: the profile's "mlp" epoch rule
    cnn_epochs: int | None = None  # None: the profile's "cnn" epoch rule; phase 2 gets one fewer
    timing_repeats: int = 20  # interleaved repeats of the overhead timing

    @classmethod
    def for_profile(cls, profile: Profile, **params) -> "CompressionExperiment":
        """The notebook's parameters (lists become tuples) on ``profile``."""
        return cls(profile, **{k: tuple(v) if isinstance(v, list) else v for k, v in params.items()})

    # the networks and compression configs of the grid
    @property
    def mlp3(self) -> NetSpec:
        return NetSpec("mlp3", "mlp", tuple(self.mlp3_hidden))

    @property
    def mlp5(self) -> NetSpec:
        return NetSpec("mlp5", "mlp", tuple(self.mlp5_hidden))

    @property
    def cnn(self) -> NetSpec:
        return NetSpec("cnn", "cnn", width=self.cnn_width)

    def hfh(self, factor: float, hashes: int | None = None, depth: int | None = None) -> CompressionConfig:
        return CompressionConfig("hfh", factor, hashes=hashes or self.hfh_hashes, depth=depth or self.hfh_depth,
                                 seed=self.seed)

    def comp(self, method: str, factor: float) -> CompressionConfig:
        """hashednets / hfh / pruning at ``factor`` (HFH with the default U and depth)."""
        return self.hfh(factor) if method == "hfh" else CompressionConfig(method, factor, seed=self.seed)


@dataclass
class Setup:
    """The data and training configs of one run of the experiment."""

    data: DataBundle  # the whole (profile-sized) Fashion-MNIST bundle
    mlp_data: DataBundle
    cnn_data: DataBundle
    mlp_cfg: TrainConfig
    cnn_cfgs: dict[str, TrainConfig]


def setup(cfg: CompressionExperiment) -> Setup:
    """Data subsets and the training configs: the profile's stage configs with the epoch rules
    ``mlp`` (MLPs) and ``cnn`` (the CNN and LLC phase 1; phase 2 one fewer, at least 1)."""
    P = cfg.profile
    data = load_bundle("fashion_mnist", P)
    mlp_data = subset(data, cfg.mlp_train, None, seed=cfg.seed)
    cnn_data = subset(data, cfg.cnn_train, None, seed=cfg.seed)
    mlp_cfg = replace(stage_configs(P, len(mlp_data.train), cfg.seed)["baseline"],
                      epochs=cfg.mlp_epochs or stage_epochs(P, "mlp"))
    ep = cfg.cnn_epochs or stage_epochs(P, "cnn")
    cnn_cfgs = {k: replace(c, epochs=ep if k != "phase2" else max(1, ep - 1))
                for k, c in stage_configs(P, len(cnn_data.train), cfg.seed).items()}
    return Setup(data, mlp_data, cnn_data, mlp_cfg, cnn_cfgs)


# ----------------------------------------------------------------------------- tables
def _row(net: NetSpec, comp: CompressionConfig, model) -> dict:
    mem = memory(model)
    return {NET: net.name, METHOD: comp.method, FACTOR: comp.factor,
            HASHES: comp.hashes if comp.method == "hfh" else np.nan,
            DEPTH: comp.depth if comp.method == "hfh" else np.nan,
            "virtual": mem["virtual"], "params": mem["params"], "bytes": mem["bytes"], "ratio": mem["ratio"]}


def run_grid(data: DataBundle, jobs: list[tuple[NetSpec, CompressionConfig]], cfg: TrainConfig,
             cache_dir=None) -> pd.DataFrame:
    """Train (or load) every (net, compression) job; one row each: memory and test error."""
    rows = []
    for net, comp in jobs:
        comp = _canonical(comp)
        trained = train_compressed(data, net, comp, cfg, cache_dir)
        rows.append({**_row(net, comp, trained.model), ERROR: 1 - accuracy(trained.model, data.test, device=cfg.device)})
    return pd.DataFrame(rows)


def grid_table(cfg: CompressionExperiment, s: Setup) -> pd.DataFrame:
    """The grid: dense, HashedNets, HFH and pruning; the 3-layer MLP at every factor, the
    5-layer MLP and the CNN (convolutions compressed, head dense) at the small factors."""
    methods = ("hashednets", "hfh", "pruning")
    dense = CompressionConfig("dense")
    mlp_jobs = [(n, dense) for n in (cfg.mlp3, cfg.mlp5)]
    mlp_jobs += [(cfg.mlp3, cfg.comp(m, f)) for f in cfg.factors for m in methods]
    mlp_jobs += [(cfg.mlp5, cfg.comp(m, f)) for f in cfg.small_factors for m in methods]
    cnn_jobs = [(cfg.cnn, dense)] + [(cfg.cnn, cfg.comp(m, f)) for f in cfg.small_factors for m in methods]
    return pd.concat([run_grid(s.mlp_data, mlp_jobs, s.mlp_cfg, cfg.profile.cache_dir),
                      run_grid(s.cnn_data, cnn_jobs, s.cnn_cfgs["baseline"], cfg.profile.cache_dir)], ignore_index=True)


def sweep_table(cfg: CompressionExperiment, s: Setup) -> pd.DataFrame:
    """HFH's U × depth sweep on the 3-layer MLP at ``sweep_factor``."""
    jobs = [(cfg.mlp3, cfg.hfh(cfg.sweep_factor, u, d)) for d in cfg.sweep_depths for u in cfg.sweep_hashes]
    return run_grid(s.mlp_data, jobs, s.mlp_cfg, cfg.profile.cache_dir)


def llc_table(cfg: CompressionExperiment, s: Setup) -> pd.DataFrame:
    """LLC on the dense and on each HFH-compressed CNN backbone (the standard phase 1 and 2 of
    :func:`llcpkg.pipeline.run_llc` through a backbone hook): one row per compression with the
    model's memory (backbone + projector floats + L·k code bits), the linear-head baseline's
    error and LLC's MHD / ED errors (ED: unassigned count as errors) after phase 2."""
    data, cfgs, P = s.cnn_data, s.cnn_cfgs, cfg.profile
    rows = []
    for comp in map(_canonical, [CompressionConfig("dense")] + [cfg.hfh(f) for f in cfg.small_factors]):
        base = train_compressed(data, cfg.cnn, comp, cfgs["baseline"], P.cache_dir)
        run = run_llc(data, P, cfg.llc_bits, cfg.seed, configs=cfgs, baseline=base,
                      backbone=compressed_backbone(cfg.cnn, comp, data))
        metrics = classification_metrics(llc_outputs(run.phase2, data, device=cfgs["phase2"].device))
        rows.append({**_row(cfg.cnn, comp, run.phase2.model), "bits": cfg.llc_bits,
                     "baseline_bytes": memory(base.model)["bytes"],
                     "baseline_error": 1 - accuracy(base.model, data.test, device=cfgs["baseline"].device),
                     "error_mhd": 1 - metrics["mhd"], "error_ed": 1 - metrics["ed"],
                     "unassigned": metrics["unassigned"]})
    return pd.DataFrame(rows)


def overhead_table(cfg: CompressionExperiment, s: Setup) -> pd.DataFrame:
    """Training-step and inference time of each method at factor 1/8, on one batch of the
    profile's size, for the 3-layer MLP and the CNN (one interleaved run, :func:`llcpkg.compress.overhead`)."""
    x, y = next(iterate_batches(s.data.train, s.cnn_cfgs["baseline"].batch_size, shuffle=False))
    rows = []
    for net in (cfg.mlp3, cfg.cnn):
        dense = build_net(net, s.data)
        models = {m: compress(dense, cfg.comp(m, 1 / 8), net.skip) for m in ("hashednets", "hfh", "pruning")}
        rows.append(overhead({"dense": dense, **models}, x, y, repeats=cfg.timing_repeats).assign(net=net.name, batch=len(y)))
    return pd.concat(rows, ignore_index=True)


def run(cfg: CompressionExperiment) -> dict[str, pd.DataFrame]:
    """Every table of the notebook but the quoted reference, by file name (``results/tables/<name>.csv``)."""
    s = setup(cfg)
    return {COMPRESSION: grid_table(cfg, s), SWEEP: sweep_table(cfg, s), LLC_TABLE: llc_table(cfg, s),
            OVERHEAD: overhead_table(cfg, s)}


# ----------------------------------------------------------------------------- figure
def plot_error_vs_bytes(grid: pd.DataFrame, llc: pd.DataFrame):
    """Test error against stored bytes, one panel per network, LLC points on the CNN panel."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), sharey=False)
    styles = {"dense": "k*", "hashednets": "o-", "hfh": "s-", "pruning": "^-"}
    for ax, name in zip(axes, ["mlp3", "mlp5", "cnn"]):
        sub = grid[grid.net == name]
        for method, mark in styles.items():
            m = sub[sub.method == method].sort_values("bytes")
            ax.plot(m.bytes, 100 * m.error, mark, label=method, ms=8 if method == "dense" else 5)
        if name == "cnn":
            for col, mark, label in [("error_mhd", "D--", "LLC (MHD)"), ("error_ed", "v:", "LLC (ED)")]:
                ordered = llc.sort_values("bytes")
                ax.plot(ordered.bytes, 100 * ordered[col], mark, label=f"{label}, dense + HFH backbones")
        ax.set_xscale("log")
        ax.set_xlabel("stored bytes (log scale)")
        ax.set_ylabel("test error (%)")
        ax.set_title(f"{name} on Fashion-MNIST")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- readings
def _wide(grid: pd.DataFrame) -> pd.DataFrame:
    return grid.pivot_table(index=["net", "factor"], columns="method", values="error")


def describe_hfh_vs_hashednets(grid: pd.DataFrame) -> str:
    """HFH against HashedNets at equal memory: wins over the (net, factor) pairs with both."""
    pairs = _wide(grid).dropna(subset=["hfh", "hashednets"])
    wins = int((pairs["hfh"] < pairs["hashednets"]).sum())
    gap = (pairs["hashednets"] - pairs["hfh"]) * 100
    return (f"HFH beats HashedNets in {wins} of {len(pairs)} (net, factor) pairs; error gap HashedNets − HFH: "
            f"median {gap.median():+.2f} points (range {gap.min():+.2f} to {gap.max():+.2f}).\n"
            f"{'supported' if wins > len(pairs) / 2 else 'not supported'} on this run.")


def describe_hfh_vs_pruning(grid: pd.DataFrame) -> str:
    """HFH against magnitude pruning at the same stored parameter count, and their bytes."""
    pp = _wide(grid).dropna(subset=["hfh", "pruning"])
    d = (pp["pruning"] - pp["hfh"]) * 100
    by_bytes = grid[grid.method.isin(["hfh", "pruning"])].pivot_table(index=["net", "factor"], columns="method",
                                                                      values="bytes")
    return (f"HFH has lower error than pruning in {int((d > 0).sum())} of {len(pp)} (net, factor) pairs; "
            f"pruning − HFH error: median {d.median():+.2f} points (range {d.min():+.2f} to {d.max():+.2f}).\n"
            f"at the same parameter count pruning stores {(by_bytes['pruning'] / by_bytes['hfh']).median():.2f}× "
            "HFH's bytes (median).")


def describe_sweep(sweep: pd.DataFrame, grid: pd.DataFrame, sweep_factor: float) -> str:
    """Does the error fall as U grows, at each depth; the best setting against HashedNets."""
    tab = sweep.pivot_table(index="hashes", columns="depth", values="error")
    lines = []
    for depth in tab.columns:
        col = tab[depth]
        falls = int((np.diff(col.values) < 0).sum())
        lines.append(f"depth {int(depth)}: error U={col.index[0]} {100 * col.iloc[0]:.2f}% → U={col.index[-1]} "
                     f"{100 * col.iloc[-1]:.2f}%; falls at {falls} of {len(col) - 1} steps; best U = {col.idxmin()}")
    best = sweep.loc[sweep.error.idxmin()]
    lines.append(f"best setting: U = {int(best.hashes)}, depth = {int(best.depth)} ({100 * best.error:.2f}% error); "
                 f"HashedNets at the same factor: {100 * _wide(grid).loc[('mlp3', sweep_factor), 'hashednets']:.2f}%")
    return "\n".join(lines)


def describe_llc(llc: pd.DataFrame) -> str:
    """How much smaller LLC + HFH is than the uncompressed baseline, and at what cost in error."""
    ref = llc[llc.method == "dense"].iloc[0]
    return "\n".join(
        f"LLC + HFH at factor 1/{round(1 / r.factor)}: {r.bytes / 1024:.1f} KiB = {ref.baseline_bytes / r.bytes:.1f}× "
        f"smaller than the dense CNN with a linear head ({ref.baseline_bytes / 1024:.1f} KiB); MHD error "
        f"{100 * r.error_mhd:.2f}% vs {100 * ref.baseline_error:.2f}% (dense linear) and {100 * ref.error_mhd:.2f}% "
        "(dense LLC)" for _, r in llc[llc.method == "hfh"].iterrows())


def describe_overhead(timing: pd.DataFrame) -> str:
    """Overhead of hashing, and what materialising buys."""
    return "\n".join(f"{r.net} {r.model}: training step {r.train_rel:.2f}× dense, inference {r.infer_rel:.2f}×, "
                     f"materialised inference {r.materialised_rel:.2f}×"
                     for _, r in timing[timing.model.isin(["hashednets", "hfh"])].iterrows())


def readings(tables: dict[str, pd.DataFrame], cfg: CompressionExperiment) -> str:
    """Every reading of the notebook, from the tables of :func:`run`."""
    grid = tables[COMPRESSION]
    return "\n".join([describe_hfh_vs_hashednets(grid), describe_hfh_vs_pruning(grid),
                      describe_sweep(tables[SWEEP], grid, cfg.sweep_factor),
                      describe_llc(tables[LLC_TABLE]), describe_overhead(tables[OVERHEAD])])


# ----------------------------------------------------------------------------- claims
def _pairs(df: pd.DataFrame, a: str, b: str) -> list[tuple[str, float, float, float]]:
    """(net, factor, error of a, error of b) where both methods ran; HFH rows at their default U/depth."""
    out = []
    for (net, f), g in df[df[FACTOR] < 1].groupby([NET, FACTOR]):
        ea, eb = g[g[METHOD] == a][ERROR], g[g[METHOD] == b][ERROR]
        if len(ea) and len(eb):
            out.append((net, f, float(ea.min()), float(eb.min())))
    return out


def _hfh_vs(t: Tables, other: str, claim: str, paper: str, tol: float) -> list[dict]:
    pairs = _pairs(t(COMPRESSION), "hfh", other)
    rows = []
    for net in sorted({p[0] for p in pairs}):
        mine = [p for p in pairs if p[0] == net]
        wins = [p for p in mine if p[2] <= p[3] + tol]
        rows.append({"claim": claim, "paper": paper, "dataset": f"fashion_mnist, {net}",
                     "ours": "; ".join(f"1/{round(1 / f)}: HFH {pct(a)} vs {pct(b)}" for _, f, a, b in mine) + " (error)",
                     "verdict": HOLDS if len(wins) == len(mine) else PARTLY if wins else FAILS})
    return rows


def claim_hfh_hashednets(t: Tables) -> list[dict]:
    """HFH has lower error than HashedNets at equal memory. Holds: at every factor; partly: at some."""
    return _hfh_vs(t, "hashednets", "HFH beats HashedNets at equal memory",
                   "MNIST/CIFAR-10: lower error at every ratio", 0.0)


def claim_hfh_pruning(t: Tables) -> list[dict]:
    """HFH is competitive with magnitude pruning: error within 1 point. Holds at every factor; partly at some."""
    return _hfh_vs(t, "pruning", "HFH is competitive with pruning (within 1 point)",
                   "authors: competitive; reviewers found it worse", 0.01)


def claim_more_hashes(t: Tables) -> list[dict]:
    """More hash functions help. Holds: error never rises with U at a depth and ends lower
    than at the smallest U; partly: the best U is above the smallest."""
    df = t(SWEEP)
    rows = []
    for (net, f, depth), g in df.groupby([NET, FACTOR, DEPTH]):
        g = g.sort_values(HASHES)
        err = g[ERROR].to_numpy()
        mono = bool(np.all(np.diff(err) <= 0) and err[-1] < err[0])
        best_u = int(g.iloc[int(np.argmin(err))][HASHES])
        rows.append({"claim": "More hash functions (U) lower the error",
                     "paper": "MNIST: U = 4 with a 3-layer g best at 1/8", "dataset": f"fashion_mnist, {net}, 1/{round(1 / f)}",
                     "ours": f"depth {int(depth)}: " + ", ".join(f"U={int(u)} {pct(e)}" for u, e in zip(g[HASHES], err)),
                     "verdict": HOLDS if mono else PARTLY if best_u > int(g[HASHES].min()) else FAILS})
    return rows


CLAIMS: dict[str, Rule] = {"HFH: beats HashedNets": claim_hfh_hashednets, "HFH: more hashes help": claim_more_hashes,
                           "HFH: competitive with pruning": claim_hfh_pruning}


def verdicts(tables: Tables) -> list[dict]:
    """The claims rows of notebook 06's tables (a missing table: one ``not run`` row per claim)."""
    return collect(CLAIMS, tables)
