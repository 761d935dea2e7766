"""Notebook 03: retrieval with learnt binary codes, LLC against deep hashing (HashNet,
GreedyHash) and the real-valued baseline (Kusupati et al. 2021, §4.3).

The ranking metrics (AP over ties in closed form, top-R, Hamming and cosine levels) are the
library's :mod:`llcpkg.ranking`; this module trains the methods, builds the tables, the
figures and the readings.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import numpy as np
import pandas as pd

from .. import decode
from ..codebooks import default_bits
from ..data import DataBundle, take
from ..hashing import HASHERS, HashingConfig, train_hashing
from ..pipeline import load_bundle, run_llc, stage_configs
from ..profiles import Profile, llc_epoch_split, scaled_epochs, stage_epochs
from ..ranking import _unit, evaluate_retrieval, hamming_top_r
from ..timing import median_seconds
from ..train import Trained, predict, train_baseline
from ..verdicts import FAILS, HOLDS, PARTLY, Rule, Tables, collect

__all__ = ["RetrievalSetup", "RETRIEVAL_METHODS", "train_method", "METHOD_NAMES", "query_subset", "retrieval_table", "query_time_table",
           "plot_curves", "describe_retrieval", "run", "RetrievalExperiment", "query_times", "describe_query_time", "RETRIEVAL", "CURVES", "QUERY_TIME", "METHOD", "PAPER_R",
           "map_column", "CLAIMS", "verdicts"]

# tables (results/tables/<name>.csv) and the columns the claims read
RETRIEVAL, CURVES, QUERY_TIME = "retrieval", "retrieval_curves", "retrieval_query_time"
METHOD = "method"
PAPER_R = 1000  # the paper's cut-off, mAP@1000


def map_column(R: int) -> str:
    """The table's column of mAP at cut-off R."""
    return f"mAP@{R}"


@dataclass(frozen=True)
class RetrievalSetup:
    """What the retrieval experiment trains and how it measures it (build it with :meth:`for_profile`)."""

    epochs: int  # epochs after the baseline of every model at ``bits`` (profile units, scaled for small sets like LLC's stages); LLC splits them phase 1 : phase 2 (profiles.llc_epoch_split); for_profile: the profile's "retrieval" epoch rule
    bits: tuple[int, ...] = (16, 32, 64)  # code lengths of the main comparison (HashNet, GreedyHash, LLC)
    small_bits: tuple[str, ...] = ("paper ratio", "minimum")  # LLC at its own small k (keys of default_bits), notebook 01's recipe
    R: int = 1000  # cut-off of mAP@R
    max_queries: int | None = 2000  # a fixed random subset of the test split as queries (None or 0: all)
    seed: int = 0  # seeds training and the query subset

    @classmethod
    def for_profile(cls, profile: Profile, **overrides) -> "RetrievalSetup":
        """The preset of a profile, with the overrides that are not None.

        smoke: one code length, 1 epoch, 256 queries (CI); cpu: 16/32/64 bits, 3 epochs
        (LLC 2 + 1), 2,000 queries; gpu: as long as LLC's own phases 1 + 2, every query.
        """
        presets = {"smoke": dict(bits=(16,), small_bits=("paper ratio",), max_queries=256),
                   "gpu": dict(max_queries=None)}
        kw = {"epochs": stage_epochs(profile, "retrieval"), **presets.get(profile.name, {}),
              **{k: v for k, v in overrides.items() if v is not None}}
        if "bits" in kw:
            kw["bits"] = tuple(int(k) for k in kw["bits"])
        return cls(**kw)


Trainer = Callable[[DataBundle, Profile, int | None, RetrievalSetup], tuple[Trained, int]]  # (model, epochs after the baseline)


def _train_llc_full(data: DataBundle, profile: Profile, bits: int | None, setup: RetrievalSetup) -> tuple[Trained, int]:
    """Notebook 01's recipe (the same cache entries)."""
    cfgs = stage_configs(profile, len(data.train), setup.seed)
    return run_llc(data, profile, bits, setup.seed).phase2, cfgs["phase1"].epochs + cfgs["phase2"].epochs


def _train_llc(data: DataBundle, profile: Profile, bits: int | None, setup: RetrievalSetup) -> tuple[Trained, int]:
    """Phases 1 + 2 within ``setup.epochs`` (split by :func:`llc_epoch_split`)."""
    n = len(data.train)
    cfgs = stage_configs(profile, n, setup.seed)
    e1, e2 = (scaled_epochs(e, n, profile.epoch_reference, profile.epoch_cap) for e in llc_epoch_split(setup.epochs))
    short = {**cfgs, "phase1": replace(cfgs["phase1"], epochs=e1), "phase2": replace(cfgs["phase2"], epochs=e2)}
    return run_llc(data, profile, bits, setup.seed, configs=short).phase2, e1 + e2


def _baseline(data: DataBundle, profile: Profile, setup: RetrievalSetup) -> Trained:
    cfgs = stage_configs(profile, len(data.train), setup.seed)
    return train_baseline(data, profile.model_config(), cfgs["baseline"], profile.cache_dir)


def _train_baseline(data: DataBundle, profile: Profile, bits: int | None, setup: RetrievalSetup) -> tuple[Trained, int]:
    """The real-valued baseline (no epochs after itself)."""
    return _baseline(data, profile, setup), 0


def _hasher(method: str) -> Trainer:
    """``setup.epochs`` of the hashing head ``method`` from the baseline's backbone, phase 1's optimiser settings."""
    def train(data: DataBundle, profile: Profile, bits: int | None, setup: RetrievalSetup) -> tuple[Trained, int]:
        n = len(data.train)
        base = _baseline(data, profile, setup)
        cfg = replace(stage_configs(profile, n, setup.seed)["phase1"],
                      epochs=scaled_epochs(setup.epochs, n, profile.epoch_reference, profile.epoch_cap))
        return train_hashing(data, HashingConfig(method, bits), cfg, base, profile.cache_dir), cfg.epochs
    return train


RETRIEVAL_METHODS: dict[str, Trainer] = {"baseline": _train_baseline, "llc": _train_llc, "llc-full": _train_llc_full,
                                         **{h: _hasher(h) for h in HASHERS}}


def train_method(method: str, data: DataBundle, profile: Profile, bits: int | None,
                 setup: RetrievalSetup) -> tuple[Trained, int]:
    """Train (or load from the cache) one retrieval method of ``RETRIEVAL_METHODS``: (model, its
    epochs after the baseline).

    ``llc``: phases 1 + 2 within ``setup.epochs``; ``llc-full``: notebook 01's recipe (the
    same cache entries); ``hashnet`` / ``greedyhash``: ``setup.epochs`` from the baseline's
    backbone with phase 1's optimiser settings; ``baseline``: the real-valued baseline.
    """
    if method not in RETRIEVAL_METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {sorted(RETRIEVAL_METHODS)}")
    return RETRIEVAL_METHODS[method](data, profile, bits, setup)


METHOD_NAMES = {"baseline": "real features (cosine)", "llc": "LLC", "llc-full": "LLC (notebook-01 recipe)",
                "hashnet": "HashNet", "greedyhash": "GreedyHash"}


def query_subset(n_test: int, max_queries: int | None, seed: int = 0) -> np.ndarray:
    """Sorted indices of a fixed random subset of ``max_queries`` test images (all if None or more)."""
    if not max_queries or max_queries >= n_test:
        return np.arange(n_test)
    return np.sort(np.random.default_rng(seed).permutation(n_test)[:max_queries])


def retrieval_table(data: DataBundle, profile: Profile, setup: RetrievalSetup) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train every method and rank the database (train split) for the test queries.

    Rows: the real-valued baseline (cosine on its d-dim features), then for each k in
    ``setup.bits`` HashNet, GreedyHash and LLC (instance codes), then LLC with notebook 01's
    recipe at its own small k (``setup.small_bits``, e.g. 8 and 4 bits for 10 classes). Returns (table, curves): the table has mAP@R, mAP
    (over the whole database), precision@R, training epochs after the baseline and the
    number of queries; curves has mean precision and recall at each cut-off.
    """
    qi = query_subset(len(data.test), setup.max_queries, setup.seed)
    queries = take(data.test, qi)
    plan = [("baseline", None)] + [(m, k) for k in setup.bits for m in ("hashnet", "greedyhash", "llc")]
    ks = default_bits(data.num_classes)
    plan += [("llc-full", ks[name]) for name in setup.small_bits]
    rows, curves = [], []
    for method, k in plan:
        trained, epochs = train_method(method, data, profile, k, setup)
        db, qs = (predict(trained.model, d, device=profile.device) for d in (data.train, queries))
        key = "features" if method == "baseline" else "bit_logits"
        res = evaluate_retrieval(qs[key], db[key], qs["labels"], db["labels"],
                                 "cosine" if method == "baseline" else "hamming", setup.R)
        row = {"dataset": data.name, METHOD: METHOD_NAMES[method], "bits": k,
               "dims": db["features"].shape[1] if method == "baseline" else k,
               "ranking": "cosine" if method == "baseline" else "Hamming", "epochs": epochs,
               map_column(setup.R): res.map_at_R, "mAP": res.map, f"P@{setup.R}": res.precision_at(min(setup.R, len(db["labels"]))),
               "queries": len(qi), "database": len(db["labels"])}
        rows.append(row)
        curves.append(pd.DataFrame({"dataset": data.name, "method": row["method"], "bits": k, "cutoff": res.cutoffs,
                                    "precision": res.precision, "recall": res.recall}))
    table = pd.DataFrame(rows).astype({"bits": "Int64"})
    return table, pd.concat(curves, ignore_index=True).astype({"bits": "Int64"})


def query_time_table(data: DataBundle, profile: Profile, setup: RetrievalSetup, bits: int,
                     queries: int = 50) -> pd.DataFrame:
    """Seconds per query to rank the whole database (distances + top-R selection), one query
    at a time: Hamming on packed LLC codes (:func:`hamming_top_r`: uint8 levels and a counting
    selection, ties as the ``expected`` policy defines them) vs float32 cosine on the
    baseline's features (unit-normalised once, offline; matvec + ``np.argpartition``).
    Medians over ``queries`` queries."""
    llc, _ = train_method("llc", data, profile, bits, setup)
    base, _ = train_method("baseline", data, profile, None, setup)
    db_c, q_c = (decode.signs_to_bits(predict(llc.model, d, device=profile.device)["bit_logits"]) for d in (data.train, data.test))
    db_f, q_f = (_unit(predict(base.model, d, device=profile.device)["features"]) for d in (data.train, data.test))
    packed = decode.PackedCodes.from_bits(db_c)
    R = min(setup.R, len(db_c) - 1)
    it = {"h": 0, "c": 0}

    def hamming():
        i = it["h"] = (it["h"] + 1) % queries
        hamming_top_r(q_c[i:i + 1], packed, R)

    def cosine():
        i = it["c"] = (it["c"] + 1) % queries
        np.argpartition(-(db_f @ q_f[i]), R)

    rows = [{"dataset": data.name, "ranking": "Hamming, packed codes", "bits": bits, "bytes per item": packed.nbytes,
             "seconds per query": median_seconds(hamming, queries)},
            {"dataset": data.name, "ranking": "cosine, float32 features", "bits": None,
             "bytes per item": db_f.shape[1] * 4, "seconds per query": median_seconds(cosine, queries)}]
    df = pd.DataFrame(rows).astype({"bits": "Int64"})
    df["relative to cosine"] = df["seconds per query"] / df["seconds per query"].iloc[-1]
    return df


def plot_curves(curves: pd.DataFrame, dataset: str, x: str = "recall", y: str = "precision", logx: bool = False):
    """One panel per code length: a line per method, the real-valued reference dashed in each."""
    import matplotlib.pyplot as plt

    d = curves[curves["dataset"] == dataset]
    ref = d[d["bits"].isna()]
    ks = sorted(int(k) for k in d["bits"].dropna().unique())
    fig, axes = plt.subplots(1, len(ks), figsize=(4.2 * len(ks), 3.6), sharey=True, squeeze=False)
    for ax, k in zip(axes[0], ks):
        for label, g in d[d["bits"] == k].groupby("method", sort=False):
            ax.plot(g[x], g[y], label=f"{label} ({k} bits)")
        for label, g in ref.groupby("method", sort=False):
            ax.plot(g[x], g[y], "k--", label=label)
        ax.set_title(f"{dataset}, {k} bits")
        ax.set_xlabel({"recall": "recall", "cutoff": "items retrieved R"}.get(x, x))
        if logx:
            ax.set_xscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel({"precision": "precision (same class)"}.get(y, y))
    fig.tight_layout()
    return fig


def describe_retrieval(table: pd.DataFrame, R: int = 1000) -> str:
    """Plain-language reading of a ``retrieval_table`` against the paper's retrieval claims
    (differences in mAP@R points, method minus reference)."""
    col = f"mAP@{R}"
    lines = []
    for name, d in table.groupby("dataset", sort=False):
        def get(method, k=None):
            g = d[(d["method"] == METHOD_NAMES[method]) & ((d["bits"] == k) if k is not None else d["bits"].isna())]
            return float(g[col].iloc[0]) if len(g) else None

        ks = sorted(int(k) for k in d.loc[d["method"] == METHOD_NAMES["llc"], "bits"])
        small = sorted(int(k) for k in d.loc[d["method"] == METHOD_NAMES["llc-full"], "bits"])
        ref = get("baseline")
        lines.append(f"{name}: real-valued features (cosine, {int(d.loc[d['bits'].isna(), 'dims'].iloc[0])} dims) "
                     f"mAP@{R} {100 * ref:.2f}.")
        k0 = ks[0] if ks else None
        if k0 is not None and get("hashnet", k0) is not None:
            h0 = get("hashnet", k0)
            for k in small:
                diff = 100 * (get("llc-full", k) - h0)
                lines.append(f"  LLC with {k} bits (notebook-01 recipe) vs {k0}-bit HashNet: {diff:+.2f} points "
                             f"(paper: 10-bit LLC ≈ +2) → {'holds' if diff > 0 else 'does not hold'} here.")
        for k in ks:
            llc, hn, gh = get("llc", k), get("hashnet", k), get("greedyhash", k)
            lines.append(f"  {k} bits: LLC {100 * llc:.2f}, HashNet {100 * hn:.2f}, GreedyHash {100 * gh:.2f}; "
                         f"LLC − HashNet {100 * (llc - hn):+.2f} (paper at 16 bits ≈ +15), "
                         f"GreedyHash − HashNet {100 * (gh - hn):+.2f} (paper: GreedyHash the stronger baseline → "
                         f"{'holds' if gh > hn else 'does not hold'}), LLC − real features {100 * (llc - ref):+.2f}.")
    return "\n".join(lines)


@dataclass(frozen=True)
class RetrievalExperiment:
    """Notebook 03's parameters: the data sets and the :class:`RetrievalSetup` on a profile."""

    profile: Profile  # scale of the run
    setup: RetrievalSetup  # what is trained and measured
    datasets: tuple[str, ...] = ("fashion_mnist", "omniglot")  # names in llcpkg.data.DATASETS

    @classmethod
    def for_profile(cls, profile: Profile, datasets=("fashion_mnist", "omniglot"), **params) -> "RetrievalExperiment":
        """The notebook's parameters on ``profile`` (``None``: the profile's preset, :meth:`RetrievalSetup.for_profile`)."""
        return cls(profile, RetrievalSetup.for_profile(profile, **params), tuple(datasets))


def run(cfg: RetrievalExperiment) -> dict[str, pd.DataFrame]:
    """The retrieval table and its curves over ``cfg.datasets``, by file name (``results/tables/<name>.csv``)."""
    tables, curves = [], []
    for name in cfg.datasets:
        t, c = retrieval_table(load_bundle(name, cfg.profile), cfg.profile, cfg.setup)
        tables.append(t)
        curves.append(c)
    return {RETRIEVAL: pd.concat(tables, ignore_index=True), CURVES: pd.concat(curves, ignore_index=True)}


def query_times(cfg: RetrievalExperiment) -> pd.DataFrame:
    """:func:`query_time_table` on the first data set at the first code length."""
    data = load_bundle(cfg.datasets[0], cfg.profile)
    return query_time_table(data, cfg.profile, cfg.setup, bits=cfg.setup.bits[0])


def describe_query_time(times: pd.DataFrame, table: pd.DataFrame) -> str:
    """How much longer cosine ranking takes than Hamming ranking (rows of :func:`query_time_table`;
    the database size from the retrieval ``table``)."""
    name = times["dataset"].iloc[0]
    database = int(table.loc[table["dataset"] == name, "database"].iloc[0])
    ratio = times["seconds per query"].iloc[1] / times["seconds per query"].iloc[0]
    return (f"{name}: cosine over {database} items takes {ratio:.1f}x the time of Hamming ranking "
            f"on {times['bytes per item'].iloc[0]}-byte codes ({times['bytes per item'].iloc[1]} bytes per float vector).")


# ----------------------------------------------------------------------------- claims
def claim_few_bits(t: Tables) -> list[dict]:
    """LLC's own small codes beat 16-bit HashNet in mAP@1000. Holds: the smallest-k LLC row
    beats HashNet-16; partly: LLC at 16 bits beats HashNet-16."""
    df, col = t(RETRIEVAL), map_column(PAPER_R)
    rows = []
    for name, g in df.groupby("dataset"):
        hn = g[(g[METHOD] == METHOD_NAMES["hashnet"]) & (g["bits"] == 16)][col]
        llc = g[g[METHOD].str.startswith(METHOD_NAMES["llc"])].dropna(subset=["bits"])
        if hn.empty or llc.empty:
            continue
        small = llc.sort_values(["bits", col], ascending=[True, False]).iloc[0]
        same = llc[llc["bits"] == 16][col].max()
        rows.append({"claim": "LLC codes with few bits beat 16-bit HashNet in retrieval",
                     "paper": "ImageNet-100, mAP@1000: 10-bit LLC ≈ 2 points above 16-bit HashNet", "dataset": name,
                     "ours": f"LLC {int(small['bits'])} bits {small[col]:.3f} vs HashNet 16 bits {hn.iloc[0]:.3f}"
                             f" (LLC 16 bits {same:.3f})",
                     "verdict": HOLDS if small[col] > hn.iloc[0] else PARTLY if same > hn.iloc[0] else FAILS})
    return rows


CLAIMS: dict[str, Rule] = {"LLC: few bits beat HashNet": claim_few_bits}


def verdicts(tables: Tables) -> list[dict]:
    """The claims rows of notebook 03's tables (a missing table: one ``not run`` row per claim)."""
    return collect(CLAIMS, tables)
