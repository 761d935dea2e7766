"""Notebook 06: compressing the weights (HashedNets, HFH, iterative pruning) at the papers'
settings, and LLC on a compressed backbone. The layers, the compressor registry and the memory
accounting are the library's (:mod:`llcpkg.compress`); this module holds the experiment: its
config, its tables, its figure and the rules that turn the tables into verdicts.

The nets are the papers' (``../shared/README.md`` §3): the 3-layer MLP 784-1000-10 (one hidden
layer of 1,000 units; HashedNets and HFH) and HFH's 5-layer MLP 784-100-100-100-10, trained on
all 60k Fashion-MNIST training images (the ``cpu`` profile). Their epochs are chosen once, on a
validation split of 10k training images (fixed split and seed), as the fewest candidate epochs
whose dense validation accuracy is within ``EPOCH_TOLERANCE`` of the best; every method of a net
then trains for those epochs. HashedNets and HFH each train at the learning rate (of ``LR_SCALES`` ×
the profile's) with the better validation accuracy at the smallest factor: with the same
gradient clipping per virtual layer (:data:`llcpkg.compress.MAX_GRAD_NORM`), HFH's shared g made
it collapse to chance at the dense rate on the 5-layer MLP, while HashedNets trains there. Headline tables (those the claims read) are per seed
(:func:`llcpkg.seeds.over_seeds`); a seed changes the initialisation, the data order and the hash
functions (a draw of HashedNets'/HFH's initialisation), never the data or the validation split.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from torch.utils.data import Dataset

from ..compress import (CompressionConfig, NetSpec, build_net, compress, compressed_backbone, equal_bytes_factor,
                        materialise, memory, overhead, train_compressed, _canonical)
from ..data import DataBundle, subset, take
from ..metrics import accuracy, classification_metrics, llc_outputs
from ..pipeline import SPLIT_SEED, load_bundle, run_llc, stage_configs
from ..profiles import Profile, stage_epochs
from ..references import gate
from ..results import made_for
from ..seeds import SEED, over_seeds, quick_look_choice, resolve_seeds, summary_name, summary_table
from ..stats import paired_interval, ratio_interval, require_columns, seed_interval
from ..train import TrainConfig, iterate_batches
from ..verdicts import FAILS, HOLDS, Rule, Tables, Verdict, at_least, at_most, claim_row, collect, combine, pct, timing_rule

__all__ = ["CompressionExperiment", "Setup", "setup", "choose_epochs", "grid_table", "sweep_table", "llc_table",
           "overhead_runs", "overhead_table", "summaries", "plot_error_vs_bytes", "run", "verdicts",
           "describe_epochs", "describe_lrs", "describe_hfh_vs_hashednets", "describe_hfh_vs_pruning", "describe_sweep",
           "describe_llc", "describe_overhead", "readings", "CLAIM_OVERHEAD", "CLAIMS", "COMPRESSION", "SWEEP", "LLC_TABLE",
           "OVERHEAD", "OVERHEAD_RUNS", "EPOCHS", "COMPRESSION_SUMMARY", "SWEEP_SUMMARY", "LRS", "choose_lrs", "LR_SCALES", "pick_epochs", "pick_lrs", "REFERENCE", "NET", "METHOD", "FACTOR", "HASHES", "DEPTH", "ERROR",
           "TRAIN_ERROR", "BYTES", "PRUNING_BYTES", "REFERENCE_KEYS", "EPOCH_TOLERANCE", "PRUNING_TOLERANCE",
           "TREND_BAND", "OVERHEAD_GOAL"]

# tables (results/tables/<name>.csv): per seed (headline) COMPRESSION, SWEEP; diagnostics LLC_TABLE
# (first seed), EPOCHS (the choice on validation), OVERHEAD_RUNS (timing runs) and OVERHEAD (their medians)
COMPRESSION, SWEEP, LLC_TABLE = "compression", "compression_sweep", "compression_llc"
OVERHEAD, OVERHEAD_RUNS, EPOCHS = "compression_overhead", "compression_overhead_runs", "compression_epochs"
LRS = "compression_lr"  # the learning-rate choice of each hashed method on validation
REFERENCE = "compression_reference"
COMPRESSION_SUMMARY, SWEEP_SUMMARY = "compression_summary", "compression_sweep_summary"  # = summary_name(...)
NET, METHOD, FACTOR, HASHES, DEPTH = "net", "method", "factor", "hashes", "depth"
ERROR, TRAIN_ERROR, BYTES = "error", "train_error", "bytes"
PRUNING_BYTES = "pruning (equal bytes)"  # method label: pruned to the bytes (not the factor) of the hashed nets
REFERENCE_KEYS = {"mlp3": "mlp1000/fashion_mnist", "mlp5": "mlp100x3/fashion_mnist"}  # llcpkg.references

EPOCH_TOLERANCE = 0.005  # epoch choice: fewest epochs whose validation accuracy is within this of the best
PRUNING_TOLERANCE = 0.01  # "competitive with pruning": HFH's error at most 1 point above pruning's
TREND_BAND = 0.003  # noise band of the trend claims: a rise of at most 0.3 points of error is no rise
OVERHEAD_GOAL = 1.2  # "≈ 20% slower training" than HashedNets (the HFH authors, in review)
CLAIM_OVERHEAD = "HFH's training overhead is about 20% (against HashedNets)"  # claims.csv "claim"
LR_SCALES = (1.0, 1 / 3)  # learning-rate candidates of the hashed methods, × the profile's lr
TRAIN_EVAL = 10_000  # training images (a fixed subset) on which the training error is measured
CHOICE_SEED = 0  # the seed of the epoch choice's trainings, whatever the run's seeds (the choice is made once)


@dataclass(frozen=True)
class CompressionExperiment:
    """Notebook 06's parameters (``None``: derived from the profile)."""

    profile: Profile  # scale of the run
    seeds: tuple[int, ...] | None = None  # None: the profile's seeds (resolve_seeds)
    factors: tuple[float, ...] = (1 / 8, 1 / 64)  # compression factors of both MLPs (over seeds)
    mlp3_hidden: tuple[int, ...] = (1000,)  # the papers' 3-layer MLP 784-1000-10
    mlp5_hidden: tuple[int, ...] = (100, 100, 100)  # HFH's 5-layer MLP 784-100-100-100-10
    hfh_hashes: int = 4  # HFH's U
    hfh_depth: int = 2  # HFH's reconstruction depth (U→U/2→1)
    sweep_net: str = "mlp5"  # where the U and depth sweeps run
    sweep_factor: float = 1 / 64
    sweep_hashes: tuple[int, ...] = (1, 4, 8)  # at depth hfh_depth (U = 2 cut for time)
    sweep_depths: tuple[int, ...] = (1, 2, 3)  # at U = hfh_hashes
    mlp3_epochs: tuple[int, ...] | None = None  # candidates; None: the "mlp" rule × (1, 2, 4)
    mlp5_epochs: tuple[int, ...] | None = None  # candidates; None: the "baseline" rule × (1, 2, 4)
    validation: int = 10_000  # training images held out for the epoch choice (at most a sixth)
    prune_epochs: int | None = None  # fine-tuning epochs per pruning step; None: a quarter of the net's (≥ 1)
    cnn_width: int = 16  # SmallCNN width for LLC + HFH
    cnn_train: int = 10_000  # training images for the CNN and LLC runs (first seed only)
    cnn_epochs: int | None = None  # None: the profile's "cnn" rule; phase 2 gets one fewer
    llc_factors: tuple[float, ...] = (1 / 8,)  # HFH factors of the LLC backbones (besides dense)
    llc_bits: int = 8  # k for LLC + HFH
    timing_runs: int = 5  # independent timing runs (the ratio's interval is over them)
    timing_repeats: int = 10  # interleaved repeats per run (each run's median)

    @classmethod
    def for_profile(cls, profile: Profile, **params) -> "CompressionExperiment":
        """The notebook's parameters (lists become tuples, seeds resolved) on ``profile``."""
        params = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
        params["seeds"] = resolve_seeds(profile, params.get("seeds"))
        return cls(profile, **params)

    @property
    def mlp3(self) -> NetSpec:
        return NetSpec("mlp3", "mlp", tuple(self.mlp3_hidden))

    @property
    def mlp5(self) -> NetSpec:
        return NetSpec("mlp5", "mlp", tuple(self.mlp5_hidden))

    @property
    def nets(self) -> dict[str, NetSpec]:
        return {"mlp3": self.mlp3, "mlp5": self.mlp5}

    @property
    def cnn(self) -> NetSpec:
        return NetSpec("cnn", "cnn", width=self.cnn_width)

    def epoch_choices(self, net: str) -> tuple[int, ...]:
        """The candidate epochs of ``net`` (the parameter, else a profile rule × 1, 2, 4)."""
        given = {"mlp3": self.mlp3_epochs, "mlp5": self.mlp5_epochs}[net]
        base = stage_epochs(self.profile, "mlp" if net == "mlp3" else "baseline")
        return tuple(given) if given else (base, 2 * base, 4 * base)

    def hfh(self, factor: float, seed: int, hashes: int | None = None, depth: int | None = None) -> CompressionConfig:
        return CompressionConfig("hfh", factor, hashes=hashes or self.hfh_hashes, depth=depth or self.hfh_depth,
                                 seed=seed)

    def comp(self, method: str, factor: float, seed: int) -> CompressionConfig:
        """hashednets / hfh / pruning at ``factor`` (HFH with the default U and depth)."""
        return self.hfh(factor, seed) if method == "hfh" else CompressionConfig(method, factor, seed=seed)


@dataclass
class Setup:
    """The data and training configs of one run of the experiment."""

    data: DataBundle  # the whole (profile-sized) Fashion-MNIST bundle: the MLPs train on all of it
    train_eval: Dataset  # the fixed subset of data.train (TRAIN_EVAL images) the training error is measured on
    fit: DataBundle  # the epoch choice: training images less the validation split; its test split is validation
    cnn_data: DataBundle
    base_cfg: TrainConfig  # the profile's baseline recipe (epochs set per net by the choice)
    cnn_cfgs: dict[str, TrainConfig]


def _validation_split(data: DataBundle, n: int) -> DataBundle:
    """Training images less ``n`` held out (fixed ``SPLIT_SEED``), the held-out ones as its test split."""
    n = min(n, len(data.train) // 6)
    order = np.random.default_rng(SPLIT_SEED).permutation(len(data.train))
    return DataBundle(f"{data.name}-val{n}", take(data.train, np.sort(order[n:])), take(data.train, np.sort(order[:n])),
                      data.class_names, data.groups, data.image_shape)


def setup(cfg: CompressionExperiment) -> Setup:
    """The data (all of it for the MLPs, a validation split for the epoch choice, a subset for
    the CNN) and the profile's training configs."""
    P = cfg.profile
    data = load_bundle("fashion_mnist", P)
    cnn_data = subset(data, cfg.cnn_train, None, seed=SPLIT_SEED)
    base = stage_configs(P, len(data.train))["baseline"]
    ep = cfg.cnn_epochs or stage_epochs(P, "cnn")
    cnn_cfgs = {k: replace(c, epochs=ep if k != "phase2" else max(1, ep - 1))
                for k, c in stage_configs(P, len(cnn_data.train)).items()}
    train_eval = subset(data, TRAIN_EVAL, None, seed=SPLIT_SEED).train
    return Setup(data, train_eval, _validation_split(data, cfg.validation), cnn_data, base, cnn_cfgs)


def _error(model, ds, device: str) -> float:
    return 1 - accuracy(materialise(model), ds, device=device)


# ----------------------------------------------------------------------------- epochs (validation)
def _reused(cfg: CompressionExperiment, name: str, by: list[str], column: str,
            candidates: dict[tuple, tuple[float, ...]]) -> pd.DataFrame | None:
    """The full run's choice table ``name`` (rows of ``cfg.nets``) when this run is the quick look
    and the table was made for exactly ``candidates`` (:func:`llcpkg.results.made_for`); else None."""
    def fit(table: pd.DataFrame) -> pd.DataFrame | None:
        ok = made_for(table, by, column, candidates)
        return table[table[NET].isin(list(cfg.nets))].reset_index(drop=True) if ok else None
    return quick_look_choice(cfg.profile, cfg.seeds, name, fit)


def choose_epochs(cfg: CompressionExperiment, s: Setup) -> pd.DataFrame:
    """The dense net of each MLP trained for each candidate epoch count on the validation split's
    training part (``CHOICE_SEED``): one row per (net, epochs) with validation accuracy and ``chosen``
    (the fewest epochs within ``EPOCH_TOLERANCE`` of the best validation accuracy). The quick look
    reads the full run's table instead when it was made for the same candidates (:func:`_reused`)."""
    reused = _reused(cfg, EPOCHS, [NET], "epochs", {(n,): cfg.epoch_choices(n) for n in cfg.nets})
    if reused is not None:
        return reused
    rows = []
    for name, net in cfg.nets.items():
        for e in cfg.epoch_choices(name):
            trained = train_compressed(s.fit, net, CompressionConfig("dense"), replace(s.base_cfg, epochs=e,
                                       seed=CHOICE_SEED), cfg.profile.cache_dir)
            rows.append({NET: name, "epochs": e, "val_accuracy": 1 - _error(trained.model, s.fit.test, s.base_cfg.device)})
    return pick_epochs(pd.DataFrame(rows))


def pick_epochs(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` (net, epochs, val_accuracy) with ``chosen``: per net, the fewest epochs whose
    validation accuracy is within ``EPOCH_TOLERANCE`` of the net's best."""
    require_columns(df, [NET, "epochs", "val_accuracy"], EPOCHS)
    best = df.groupby(NET)["val_accuracy"].transform("max")
    ok = df[df["val_accuracy"] >= best - EPOCH_TOLERANCE]
    return df.assign(chosen=df.index.isin(ok.groupby(NET)["epochs"].idxmin()))


def pick_lrs(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` (net, method, lr, val_accuracy) with ``chosen``: per (net, method), the learning rate
    of the best validation accuracy (a tie goes to the larger rate)."""
    require_columns(df, [NET, METHOD, "lr", "val_accuracy"], LRS)
    best = df.sort_values(["val_accuracy", "lr"], ascending=False).groupby([NET, METHOD]).head(1)
    return df.assign(chosen=df.index.isin(best.index))


def choose_lrs(cfg: CompressionExperiment, s: Setup, epochs: pd.DataFrame) -> pd.DataFrame:
    """HashedNets and HFH of each MLP at the smallest factor, trained at each of ``LR_SCALES`` × the
    profile's learning rate for the net's chosen epochs on the validation split's training part
    (``CHOICE_SEED``): one row per (net, method, lr) with validation accuracy and ``chosen`` (the
    best; ties to the larger rate). The quick look reads the full run's table instead when it was
    made for the same rates (:func:`_reused`)."""
    reused = _reused(cfg, LRS, [NET, METHOD], "lr", {(n, m): tuple(s.base_cfg.lr * f for f in LR_SCALES)
                                                     for n in cfg.nets for m in ("hashednets", "hfh")})
    if reused is not None:
        return reused
    rows = []
    for name, net in cfg.nets.items():
        train = replace(s.base_cfg, epochs=_chosen_epochs(epochs, name), seed=CHOICE_SEED)
        for method in ("hashednets", "hfh"):
            for scale in LR_SCALES:
                t = train_compressed(s.fit, net, cfg.comp(method, min(cfg.factors), CHOICE_SEED),
                                     replace(train, lr=train.lr * scale), cfg.profile.cache_dir)
                rows.append({NET: name, METHOD: method, "lr": train.lr * scale,
                             "val_accuracy": 1 - _error(t.model, s.fit.test, train.device)})
    return pick_lrs(pd.DataFrame(rows))


def _chosen_epochs(epochs: pd.DataFrame, net: str) -> int:
    return int(epochs[(epochs[NET] == net) & epochs["chosen"]]["epochs"].iloc[0])


def _net_cfgs(cfg: CompressionExperiment, s: Setup, epochs: pd.DataFrame, lrs: pd.DataFrame, net: str,
              method: str, seed: int) -> tuple[TrainConfig, TrainConfig]:
    """One job's training config (the net's chosen epochs; a hashed method's chosen learning rate)
    and the pruning fine-tune config per step (a tenth of the learning rate; ``prune_epochs`` or a
    quarter of the epochs, at least 1)."""
    e = _chosen_epochs(epochs, net)
    train = replace(s.base_cfg, epochs=e, seed=seed)
    pick = lrs[(lrs[NET] == net) & (lrs[METHOD] == method) & lrs["chosen"]]
    if len(pick):
        train = replace(train, lr=float(pick["lr"].iloc[0]))
    return train, replace(train, epochs=cfg.prune_epochs or max(1, e // 4), lr=train.lr / 10)


# ----------------------------------------------------------------------------- tables
def _row(net: str, comp: CompressionConfig, model, label: str | None = None) -> dict:
    mem = memory(model)
    hfh = comp.method == "hfh"
    return {NET: net, METHOD: label or comp.method, FACTOR: comp.factor, HASHES: comp.hashes if hfh else np.nan,
            DEPTH: comp.depth if hfh else np.nan, "virtual": mem["virtual"], "params": mem["params"],
            BYTES: mem["bytes"], "ratio": mem["ratio"]}


def _measure(s: Setup, net: NetSpec, comp: CompressionConfig, cfgs: tuple[TrainConfig, TrainConfig],
             cache_dir, label: str | None = None, factor: float | None = None) -> dict:
    """Train (or load) one job on all of ``s.data``; its memory, test error and training error (on
    ``s.train_eval``); ``factor``: the factor it is reported at, when it differs from the one it
    was trained at."""
    data = s.data
    train, finetune = cfgs
    comp = _canonical(comp)
    trained = train_compressed(data, net, comp, train, cache_dir, finetune=finetune)
    row = _row(net.name, comp, trained.model, label)
    if factor is not None:
        row[FACTOR] = factor
    return {**row, ERROR: _error(trained.model, data.test, train.device),
            TRAIN_ERROR: _error(trained.model, s.train_eval, train.device)}


def grid_table(cfg: CompressionExperiment, s: Setup, epochs: pd.DataFrame, lrs: pd.DataFrame,
               seed: int) -> pd.DataFrame:
    """One seed's grid: each MLP dense, and at every factor HashedNets, HFH, pruning at the same
    factor and pruning at the same bytes (``PRUNING_BYTES``, reported at the hashed factor)."""
    rows = []
    for name, net in cfg.nets.items():
        def job(method: str, f: float, **kw) -> dict:
            comp = CompressionConfig("dense") if method == "dense" else cfg.comp(method, f, seed)
            return _measure(s, net, comp, _net_cfgs(cfg, s, epochs, lrs, name, method, seed),
                            cfg.profile.cache_dir, **kw)

        rows.append(job("dense", 1.0))
        for f in cfg.factors:
            rows += [job(m, f) for m in ("hashednets", "hfh", "pruning")]
            rows.append(job("pruning", equal_bytes_factor(f), label=PRUNING_BYTES, factor=f))
    return pd.DataFrame(rows)


def sweep_table(cfg: CompressionExperiment, s: Setup, epochs: pd.DataFrame, lrs: pd.DataFrame,
                seed: int) -> pd.DataFrame:
    """One seed's HFH sweeps on ``sweep_net`` at ``sweep_factor`` (HFH's chosen learning rate): U at
    the default depth, and depth at the default U (the default setting once)."""
    net = cfg.nets[cfg.sweep_net]
    cfgs = _net_cfgs(cfg, s, epochs, lrs, cfg.sweep_net, "hfh", seed)
    settings = [(u, cfg.hfh_depth) for u in cfg.sweep_hashes] + [(cfg.hfh_hashes, d) for d in cfg.sweep_depths]
    settings = list(dict.fromkeys(settings))
    return pd.DataFrame([_measure(s, net, cfg.hfh(cfg.sweep_factor, seed, u, d), cfgs, cfg.profile.cache_dir)
                         for u, d in settings])


def llc_table(cfg: CompressionExperiment, s: Setup) -> pd.DataFrame:
    """LLC on the dense and on each HFH-compressed CNN backbone (first seed; the standard phase 1
    and 2 of :func:`llcpkg.pipeline.run_llc` through a backbone hook): one row per backbone with
    the model's memory (backbone + projector floats + L·k code bits), the linear-head baseline's
    error and LLC's MHD / ED errors (ED: unassigned count as errors) after phase 2."""
    data, P, seed = s.cnn_data, cfg.profile, cfg.seeds[0]
    cfgs = {k: replace(c, seed=seed) for k, c in s.cnn_cfgs.items()}
    rows = []
    for comp in map(_canonical, [CompressionConfig("dense")] + [cfg.hfh(f, seed) for f in cfg.llc_factors]):
        base = train_compressed(data, cfg.cnn, comp, cfgs["baseline"], P.cache_dir)
        run = run_llc(data, P, cfg.llc_bits, seed, configs=cfgs, baseline=base,
                      backbone=compressed_backbone(cfg.cnn, comp, data))
        metrics = classification_metrics(llc_outputs(run.phase2, data, device=cfgs["phase2"].device))
        rows.append({**_row(cfg.cnn.name, comp, run.phase2.model), "bits": cfg.llc_bits,
                     "baseline_bytes": memory(base.model)["bytes"],
                     "baseline_error": _error(base.model, data.test, cfgs["baseline"].device),
                     "error_mhd": 1 - metrics["mhd"], "error_ed": 1 - metrics["ed"],
                     "unassigned": metrics["unassigned"]})
    return pd.DataFrame(rows)


def overhead_runs(cfg: CompressionExperiment, s: Setup) -> pd.DataFrame:
    """Training-step and inference time of dense, HashedNets, HFH and pruning at factor 1/8 on one
    batch of the profile's size, for both MLPs: ``timing_runs`` runs of
    :func:`llcpkg.compress.overhead` (each the median of ``timing_repeats`` interleaved repeats)."""
    x, y = next(iterate_batches(s.data.train, s.base_cfg.batch_size, shuffle=False))
    rows = []
    for name, net in cfg.nets.items():
        dense = build_net(net, s.data)
        models = {m: compress(dense, cfg.comp(m, 1 / 8, cfg.seeds[0]), net.skip) for m in ("hashednets", "hfh", "pruning")}
        for r in range(cfg.timing_runs):
            rows.append(overhead({"dense": dense, **models}, x, y, repeats=cfg.timing_repeats)
                        .assign(net=name, batch=len(y), run=r))
    return pd.concat(rows, ignore_index=True)


def overhead_table(runs: pd.DataFrame) -> pd.DataFrame:
    """The median over runs of every timing column, per (net, model) (the columns of one
    :func:`llcpkg.compress.overhead` run, plus ``net``, ``batch`` and ``runs``)."""
    cols = ["train_ms", "infer_ms", "infer_materialised_ms", "train_rel", "infer_rel", "materialised_rel"]
    med = runs.groupby([NET, "model"], sort=False)[cols].median().reset_index()
    return med.assign(batch=int(runs["batch"].iloc[0]), runs=runs["run"].nunique())


def summaries(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The ``<name>_summary`` tables of the per-seed tables (mean, std, 95% t-interval over seeds)."""
    by = {COMPRESSION: [NET, METHOD, FACTOR, HASHES, DEPTH], SWEEP: [NET, FACTOR, HASHES, DEPTH]}
    names = {COMPRESSION: COMPRESSION_SUMMARY, SWEEP: SWEEP_SUMMARY}
    assert all(summary_name(n) == v for n, v in names.items())
    return {names[n]: summary_table(tables[n], by[n], [ERROR, TRAIN_ERROR, BYTES], n) for n in by if n in tables}


def run(cfg: CompressionExperiment) -> dict[str, pd.DataFrame]:
    """Every table of the notebook but the quoted reference, by file name (``results/tables/<name>.csv``)."""
    s = setup(cfg)
    epochs = choose_epochs(cfg, s)
    lrs = choose_lrs(cfg, s, epochs)
    timing = overhead_runs(cfg, s)
    tables = {EPOCHS: epochs, LRS: lrs,
              COMPRESSION: over_seeds(lambda seed: grid_table(cfg, s, epochs, lrs, seed), cfg.seeds),
              SWEEP: over_seeds(lambda seed: sweep_table(cfg, s, epochs, lrs, seed), cfg.seeds),
              LLC_TABLE: llc_table(cfg, s), OVERHEAD_RUNS: timing, OVERHEAD: overhead_table(timing)}
    return {**tables, **summaries(tables)}


# ----------------------------------------------------------------------------- figure
def plot_error_vs_bytes(summary: pd.DataFrame, llc: pd.DataFrame | None = None):
    """Test error (seed mean, 95% interval as error bars) against stored bytes, one panel per MLP;
    a third panel with LLC on the dense and HFH CNN backbones (first seed) when ``llc`` is given."""
    nets = list(dict.fromkeys(summary[NET]))
    fig, axes = plt.subplots(1, len(nets) + (llc is not None), figsize=(5 * (len(nets) + 1), 4.2), squeeze=False)
    styles = {"dense": "k*", "hashednets": "o-", "hfh": "s-", "pruning": "^-", PRUNING_BYTES: "v--"}
    mean, lo, hi = (f"{ERROR} {k}" for k in ("mean", "lo", "hi"))
    for ax, name in zip(axes[0], nets):
        sub = summary[summary[NET] == name]
        for method, mark in styles.items():
            m = sub[sub[METHOD] == method].sort_values(BYTES + " mean")
            if m.empty:
                continue
            ax.errorbar(m[BYTES + " mean"], 100 * m[mean], yerr=100 * np.vstack([m[mean] - m[lo], m[hi] - m[mean]]),
                        fmt=mark, label=method, ms=8 if method == "dense" else 5, capsize=2)
        ax.set_xscale("log")
        ax.set(xlabel="stored bytes (log scale)", ylabel="test error (%)",
               title=f"{name} on Fashion-MNIST ({int(sub['seeds'].min())} seeds)")
        ax.legend(fontsize=8)
    if llc is not None:
        ax = axes[0][-1]
        ordered = llc.sort_values(BYTES)
        for col, mark, label in [("baseline_error", "s-", "linear head"), ("error_mhd", "D--", "LLC (MHD)"),
                                 ("error_ed", "v:", "LLC (ED)")]:
            x = ordered["baseline_bytes"] if col == "baseline_error" else ordered[BYTES]
            ax.plot(x, 100 * ordered[col], mark, label=label)
        ax.set_xscale("log")
        ax.set(xlabel="stored bytes (log scale)", ylabel="test error (%)",
               title="CNN: dense and HFH backbones (first seed)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- rules
def _by_seed(df: pd.DataFrame, net: str, method: str, factor: float, col: str = ERROR) -> pd.Series:
    """``col`` of one (net, method, factor) by seed (HFH: its default setting, the grid's only one)."""
    sel = df[(df[NET] == net) & (df[METHOD] == method) & np.isclose(df[FACTOR], factor)]
    if sel.empty:
        raise KeyError(f"no {method} row of {net} at factor {factor}")
    return sel.set_index(SEED)[col]


def _frac(f: float) -> str:
    return f"1/{round(1 / f)}"


def _dense_gate(verdict: Verdict, df: pd.DataFrame, net: str) -> Verdict:
    """``verdict`` gated on the dense net's test accuracy interval over seeds (:func:`llcpkg.references.gate`)."""
    acc = 1 - _by_seed(df, net, "dense", 1.0)
    return gate(verdict, seed_interval(acc.to_numpy()), REFERENCE_KEYS[net])


def _compared(grid: pd.DataFrame, net: str, parts: dict[str, tuple[str, float]], decide) -> tuple[Verdict, str]:
    """The combined, gated verdict over ``parts`` (name → (other method, factor)), each decided by
    ``decide(paired interval of HFH − other error)``; and our numbers in words."""
    verdicts, words = {}, []
    for name, (other, f) in parts.items():
        hfh, them = _by_seed(grid, net, "hfh", f), _by_seed(grid, net, other, f)
        iv = paired_interval(100 * hfh, 100 * them)
        verdicts[name] = decide(iv)
        words.append(f"{name}: HFH {pct(hfh.mean())} vs {pct(them.mean())} (HFH − {other} {iv:+.2f} points)")
    return _dense_gate(combine(verdicts), grid, net), "; ".join(words) + " (test error, seed means)"


def _nets(df: pd.DataFrame) -> list[str]:
    """The nets of the grid with HFH rows (a KeyError if there are none: nothing to compare)."""
    nets = [n for n in REFERENCE_KEYS if n in set(df[df[METHOD] == "hfh"][NET])]
    if not nets:
        raise KeyError(f"table {COMPRESSION!r} has no HFH rows of the nets {sorted(REFERENCE_KEYS)}")
    return nets


def _factors(df: pd.DataFrame, net: str) -> list[float]:
    return sorted({float(f) for f in df[(df[NET] == net) & (df[METHOD] == "hfh")][FACTOR]}, reverse=True)


def hfh_vs_hashednets_rows(grid: pd.DataFrame) -> list[dict]:
    """HFH has lower error than HashedNets at equal memory. Per net, one part per factor: holds
    if the paired 95% interval over seeds of HFH − HashedNets test error lies at or below 0, does
    not hold if it lies above; partly when factors disagree; gated on the dense net."""
    require_columns(grid, [SEED, NET, METHOD, FACTOR, ERROR], COMPRESSION)
    rows = []
    for net in _nets(grid):
        parts = {_frac(f): ("hashednets", f) for f in _factors(grid, net)}
        v, ours = _compared(grid, net, parts, lambda iv: at_most(iv, 0.0, "HFH − HashedNets test error", " points"))
        rows.append(claim_row("HFH beats HashedNets at equal memory", "MNIST/CIFAR-10: lower error at every ratio",
                              f"fashion_mnist, {net}", ours, v))
    return rows


def hfh_vs_pruning_rows(grid: pd.DataFrame) -> list[dict]:
    """HFH is competitive with iterative magnitude pruning: HFH's error at most
    ``PRUNING_TOLERANCE`` above pruning's, at the same factor and at the same bytes. Per net, one
    part per (factor, equal factor | equal bytes): holds if the paired interval of HFH − pruning
    lies at or below the tolerance, does not hold if above; partly when parts disagree; gated."""
    require_columns(grid, [SEED, NET, METHOD, FACTOR, ERROR], COMPRESSION)
    rows = []
    for net in _nets(grid):
        parts = {}
        for f in _factors(grid, net):
            parts[f"{_frac(f)} equal factor"] = ("pruning", f)
            parts[f"{_frac(f)} equal bytes"] = (PRUNING_BYTES, f)
        v, ours = _compared(grid, net, parts, lambda iv: at_most(iv, 100 * PRUNING_TOLERANCE, "HFH − pruning test error",
                                                                 " points", fmt=".2f"))
        rows.append(claim_row(f"HFH is competitive with pruning (within {100 * PRUNING_TOLERANCE:.0f} point)",
                              "authors: competitive; reviewers found it worse", f"fashion_mnist, {net}", ours, v))
    return rows


def _trend(sweep: pd.DataFrame, along: str, fixed: str) -> tuple[Verdict, str, str]:
    """The error falls as ``along`` grows (the other setting ``fixed`` at the value with the most
    ``along`` values). Holds if the paired 95% interval over seeds of (error at the smallest −
    error at the largest value) lies at or above ``TREND_BAND``, does not hold if it lies below,
    inconclusive if it straddles; a holding fall with a step whose rise (next − previous) lies
    wholly above ``TREND_BAND`` is ``partly`` and names that step. Returns the verdict, our
    numbers and the setting's words."""
    require_columns(sweep, [SEED, NET, FACTOR, HASHES, DEPTH, ERROR], SWEEP)
    at = sweep.groupby(fixed)[along].nunique().idxmax()
    sub = sweep[sweep[fixed] == at]
    wide = sub.pivot_table(index=SEED, columns=along, values=ERROR)  # (seeds, values of along)
    if wide.shape[1] < 2:  # that sweep was not run (a notebook parameter): the claim reads "not run"
        raise FileNotFoundError(f"table {SWEEP!r} has no sweep of {along!r} (one value at {fixed} = {at})")
    vals, band = list(wide.columns), 100 * TREND_BAND
    name = f"falls {along} {int(vals[0])}→{int(vals[-1])}"
    fall = at_least(paired_interval(100 * wide[vals[0]], 100 * wide[vals[-1]]), band, f"the error drop ({name})",
                    " points", fmt=".2f")
    rises = {f"no rise {along} {int(a)}→{int(b)}": at_most(paired_interval(100 * wide[b], 100 * wide[a]), band,
                                                            f"the error rise {int(a)}→{int(b)}", " points", fmt=".2f")
             for a, b in zip(vals, vals[1:])}
    broken = {k: v for k, v in rises.items() if v.kind == FAILS}
    v = combine({name: fall, **broken}) if fall.kind == HOLDS and broken else fall
    rule = (f"{fall.rule}; partly if it holds but the paired interval of a step's error rise (next − previous) "
            f"lies wholly above {band:.2f} points")
    ours = ", ".join(f"{along}={int(u)} {pct(wide[u].mean())}" for u in vals) + " (test error, seed means)"
    net, f = sub[NET].iloc[0], float(sub[FACTOR].iloc[0])
    return (Verdict(v.verdict, rule, v.interval, v.seeds), ours,
            f"fashion_mnist, {net}, {_frac(f)}, {fixed} {int(at)}")


def _trend_rows(sweep: pd.DataFrame, grid: pd.DataFrame, along: str, fixed: str, claim: str, paper: str) -> list[dict]:
    v, ours, dataset = _trend(sweep, along, fixed)
    return [claim_row(claim, paper, dataset, ours, _dense_gate(v, grid, sweep[NET].iloc[0]))]


def more_hashes_rows(sweep: pd.DataFrame, grid: pd.DataFrame) -> list[dict]:
    """More hash functions (U) lower the error: :func:`_trend` along U at the default depth, gated."""
    return _trend_rows(sweep, grid, HASHES, DEPTH, "More hash functions (U) lower the error",
                       "MNIST: U = 4 with a 3-layer g best at 1/8")


def deeper_g_rows(sweep: pd.DataFrame, grid: pd.DataFrame) -> list[dict]:
    """A deeper reconstruction net g lowers the error: :func:`_trend` along depth at the default U, gated."""
    return _trend_rows(sweep, grid, DEPTH, HASHES, "HFH's deeper reconstruction net g lowers the error",
                       "MNIST: U→U→U/2→1 best at 1/8")


def overhead_rows(runs: pd.DataFrame) -> list[dict]:
    """HFH trains about 20% slower than HashedNets: per net, the ratio of HFH's to HashedNets'
    training-step time (each run's median of interleaved repeats; t-interval on log ratios over
    runs) by :func:`llcpkg.verdicts.timing_rule` below ``OVERHEAD_GOAL`` with its 10% noise band."""
    require_columns(runs, [NET, "model", "run", "train_ms"], OVERHEAD_RUNS)
    rows = []
    for net, g in runs.groupby(NET, sort=False):
        t = g.pivot_table(index="run", columns="model", values="train_ms")
        iv = ratio_interval(t["hfh"].to_numpy(), t["hashednets"].to_numpy())
        v = timing_rule(iv, OVERHEAD_GOAL, "below", what="HFH / HashedNets training-step time")
        rows.append(claim_row(CLAIM_OVERHEAD,
                              "authors, in review: ≈20% slower training",
                              f"fashion_mnist, {net}, 1/8, batch {int(g['batch'].iloc[0])}",
                              f"HFH step {iv:.2f}× HashedNets' ({t['hfh'].median():.1f} vs {t['hashednets'].median():.1f} ms)",
                              v))
    return rows


def claim_hfh_hashednets(t: Tables) -> list[dict]:
    return hfh_vs_hashednets_rows(t(COMPRESSION))


def claim_hfh_pruning(t: Tables) -> list[dict]:
    return hfh_vs_pruning_rows(t(COMPRESSION))


def claim_more_hashes(t: Tables) -> list[dict]:
    return more_hashes_rows(t(SWEEP), t(COMPRESSION))


def claim_deeper_g(t: Tables) -> list[dict]:
    return deeper_g_rows(t(SWEEP), t(COMPRESSION))


def claim_overhead(t: Tables) -> list[dict]:
    return overhead_rows(t(OVERHEAD_RUNS))


CLAIMS: dict[str, Rule] = {"HFH: beats HashedNets": claim_hfh_hashednets, "HFH: more hashes help": claim_more_hashes,
                           "HFH: deeper g helps": claim_deeper_g, "HFH: competitive with pruning": claim_hfh_pruning,
                           "HFH: training overhead about 20%": claim_overhead}


def verdicts(tables: Tables) -> list[dict]:
    """The claims rows of notebook 06's tables (a missing table: one ``not run`` row per claim)."""
    return collect(CLAIMS, tables)


# ----------------------------------------------------------------------------- readings
def _say(rows: list[dict]) -> str:
    return "\n".join(f"{r['dataset']}: {r['ours']}\n  → {r['verdict']}" for r in rows)


def describe_epochs(epochs: pd.DataFrame) -> str:
    """The epoch choice on validation, per net."""
    return "\n".join(f"{net}: " + ", ".join(f"{int(r.epochs)} epochs {pct(r.val_accuracy)}" for _, r in g.iterrows())
                     + f" (validation accuracy) → {int(g[g.chosen].epochs.iloc[0])} epochs"
                     for net, g in epochs.groupby(NET, sort=False))


def describe_lrs(lrs: pd.DataFrame) -> str:
    """The learning-rate choice on validation, per net and hashed method."""
    return "\n".join(f"{net} {m}: " + ", ".join(f"lr {r.lr:.3g} {pct(r.val_accuracy)}" for _, r in g.iterrows())
                     + f" (validation accuracy) → lr {g[g.chosen].lr.iloc[0]:.3g}"
                     for (net, m), g in lrs.groupby([NET, METHOD], sort=False))


def describe_hfh_vs_hashednets(grid: pd.DataFrame) -> str:
    """HFH against HashedNets at equal memory, with the claim's rule."""
    return _say(hfh_vs_hashednets_rows(grid))


def describe_hfh_vs_pruning(grid: pd.DataFrame) -> str:
    """HFH against iterative pruning at the same factor and the same bytes, with the claim's rule."""
    bytes_ = grid.pivot_table(index=[NET, FACTOR], columns=METHOD, values=BYTES)
    extra = "; ".join(f"{n} {_frac(f)}: pruning stores {r['pruning'] / r['hfh']:.2f}× HFH's bytes at the same factor, "
                      f"{r[PRUNING_BYTES] / r['hfh']:.2f}× at 'equal bytes'" for (n, f), r in bytes_.iterrows()
                      if f < 1 and "hfh" in r and not np.isnan(r["hfh"]))
    return _say(hfh_vs_pruning_rows(grid)) + "\n" + extra


def describe_sweep(sweep: pd.DataFrame, grid: pd.DataFrame) -> str:
    """Does the error fall as U grows, and as g deepens, with the claims' rules."""
    return _say(more_hashes_rows(sweep, grid) + deeper_g_rows(sweep, grid))


def describe_llc(llc: pd.DataFrame) -> str:
    """How much smaller LLC + HFH is than the uncompressed baseline, and at what cost in error."""
    ref = llc[llc[METHOD] == "dense"].iloc[0]
    return "\n".join(
        f"LLC + HFH at factor {_frac(r.factor)}: {r.bytes / 1024:.1f} KiB = {ref.baseline_bytes / r.bytes:.1f}× "
        f"smaller than the dense CNN with a linear head ({ref.baseline_bytes / 1024:.1f} KiB); MHD error "
        f"{pct(r.error_mhd)} vs {pct(ref.baseline_error)} (dense linear) and {pct(ref.error_mhd)} (dense LLC)"
        for _, r in llc[llc[METHOD] == "hfh"].iterrows())


def describe_overhead(runs: pd.DataFrame) -> str:
    """The overhead claim's rule, and each method's median times relative to dense."""
    med = overhead_table(runs)
    lines = [f"{r.net} {r.model}: training step {r.train_rel:.2f}× dense, inference {r.infer_rel:.2f}×, "
             f"materialised inference {r.materialised_rel:.2f}×" for _, r in med[med.model != "dense"].iterrows()]
    return "\n".join(lines) + "\n" + _say(overhead_rows(runs))


def readings(tables: dict[str, pd.DataFrame], cfg: CompressionExperiment) -> str:
    """Every reading of the notebook, from the tables of :func:`run`."""
    grid = tables[COMPRESSION]
    return "\n".join([describe_epochs(tables[EPOCHS]), describe_lrs(tables[LRS]), describe_hfh_vs_hashednets(grid), describe_hfh_vs_pruning(grid),
                      describe_sweep(tables[SWEEP], grid), describe_llc(tables[LLC_TABLE]),
                      describe_overhead(tables[OVERHEAD_RUNS])])
