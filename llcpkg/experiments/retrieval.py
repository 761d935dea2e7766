"""Notebook 03: retrieval with learnt binary codes, LLC against deep hashing (HashNet,
GreedyHash) and real-valued embeddings (Kusupati et al. 2021, §4.3).

Fair by construction (issue #17, item 4): every method after the real-valued baseline starts
from the same cached baseline backbone and trains for the same number of steps, one budget
(``RetrievalSetup.epochs``, the profile's ``"retrieval"`` epoch rule); LLC splits it between its
phases (:func:`llcpkg.profiles.llc_epoch_split`). HashNet's pairwise loss gets class-balanced
batches (``TrainConfig.per_class``), so every batch holds positive pairs.

Seeds (issue #16): the headline table ``retrieval`` has one row per seed, method, code length
and data set; ``retrieval_summary`` holds the mean and 95% t-interval over seeds. The claims
compare methods by paired intervals over seeds (:func:`llcpkg.stats.paired_interval`) and are
gated on the baseline's test accuracy (:func:`llcpkg.references.gate`) where a reference exists.
Diagnostic rows (``diagnostic_bits``) and the query-time table are on the first seed only.

The ranking metrics (AP over ties in closed form, top-R, Hamming and cosine levels) are the
library's :mod:`llcpkg.ranking`; this module trains the methods, builds the tables, figures,
readings and the claims' rules.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np
import pandas as pd
import torch

from .. import decode
from ..data import DataBundle, take
from ..hashing import HASHERS, HashingConfig, train_hashing
from ..models import Classifier, build_head
from ..pipeline import load_bundle, run_llc, stage_configs
from ..profiles import Profile, llc_epoch_split, scaled_epochs, stage_epochs
from ..ranking import RetrievalResult, _unit, evaluate_retrieval, hamming_top_r
from ..references import gate_baseline
from ..seeds import SEED, over_seeds, resolve_seeds, summary_table
from ..stats import Interval, paired_interval, require_columns, seed_interval
from ..timing import median_seconds
from ..train import TrainConfig, Trained, data_id, predict, run_stage, set_seed, stage_key, train_baseline
from ..verdicts import NOT_RUN, Rule, Tables, Verdict, at_least, claim_row, collect, combine, reader

__all__ = ["RetrievalSetup", "budget_epochs", "Method", "RETRIEVAL_METHODS", "METHOD_NAMES", "train_method", "few_bits", "cutoff_for",
           "query_subset", "method_plan", "baseline_outputs", "seed_tables", "query_time_table", "plot_curves", "plot_map",
           "describe_retrieval", "describe_query_time", "run", "RetrievalExperiment",
           "RETRIEVAL", "RETRIEVAL_SUMMARY", "CURVES", "QUERY_TIME", "METHOD", "BITS", "DIMS", "CLASSES", "R_COL",
           "MAP_AT_R", "BASE_TEST", "BASE_TRAIN", "PAPER_R", "PAPER_FEW_BITS", "PAPER_CLASSES", "HASHNET_BITS",
           "BEAT_MARGIN", "MATCH_TOL", "REFERENCE_ARCH", "CLAIM_HASHNET", "CLAIM_GREEDYHASH", "CLAIM_REAL",
           "CLAIMS", "verdicts"]

# ----------------------------------------------------------------------------- names and rules
# tables (results/tables/<name>.csv) and the columns the claims read
RETRIEVAL, CURVES, QUERY_TIME = "retrieval", "retrieval_curves", "retrieval_query_time"
RETRIEVAL_SUMMARY = "retrieval_summary"  # summary_name(RETRIEVAL), spelled out: table names are literals (test_single_home)
METHOD, BITS, DIMS, CLASSES, R_COL, MAP_AT_R = "method", "bits", "dims", "classes", "R", "mAP@R"
BASE_TEST, BASE_TRAIN = "baseline test acc", "baseline train acc"  # the shared backbone's adequacy, every row
PAPER_R = 1000  # the paper's cut-off, mAP@1000 (ImageNet-100: about 1,300 relevant items per query)
PAPER_FEW_BITS, PAPER_CLASSES = 10, 100  # the paper's "few bits": 10-bit LLC on ImageNet-100's 100 classes
HASHNET_BITS = 16  # the code length of the paper's comparison (16-bit HashNet; GreedyHash at equal bits)
BEAT_MARGIN = 0.0  # "beats": the paired mAP@R difference, LLC minus HashNet, lies above this (share, not points)
MATCH_TOL = 0.02  # "matches": LLC may fall short of the other method by at most 2 points of mAP@R
REFERENCE_ARCH = "smallcnn"  # the adequacy reference of the baseline: references.REFERENCES["smallcnn/<dataset>"]

METHOD_NAMES = {"baseline": "real features (cosine)", "real": "real embedding (cosine)", "llc": "LLC",
                "hashnet": "HashNet", "greedyhash": "GreedyHash"}


def few_bits(num_classes: int) -> int:
    """LLC's "few bits" on L classes: the paper's 10 bits for 100 classes at the same bits per
    log2 L, round(10 · log2 L / log2 100), at least 1 (Fashion-MNIST 5, the Omniglot subset 12)."""
    return max(1, round(PAPER_FEW_BITS * math.log2(num_classes) / math.log2(PAPER_CLASSES)))


def cutoff_for(db_labels: np.ndarray) -> int:
    """R of mAP@R on a database: the paper's 1000, or fewer when a class has fewer items in the
    database, R = min(1000, smallest class count among the classes present), so that mAP@R is
    never full mAP (the Omniglot subset: 15 items per class, R = 15, the "R = relevant items" of
    MAP@R; Fashion-MNIST: 1000)."""
    counts = np.bincount(np.asarray(db_labels))
    return int(min(PAPER_R, counts[counts > 0].min()))


@dataclass(frozen=True)
class RetrievalSetup:
    """What the retrieval experiment trains and how it measures it (build it with :meth:`for_profile`)."""

    epochs: int  # the one budget: epochs after the baseline of every method (profile units, scaled for small sets); LLC splits it phase 1 : phase 2 (profiles.llc_epoch_split); for_profile: the profile's "retrieval" epoch rule
    seeds: tuple[int, ...] = (0,)  # seeds of the headline table (initialisation and data order; llcpkg.seeds)
    bits: tuple[int, ...] = (HASHNET_BITS,)  # code lengths of the headline comparison, every seed (HashNet, GreedyHash, LLC)
    diagnostic_bits: tuple[int, ...] = ()  # further code lengths of the three, first seed only (gpu preset: 32, 64)
    R: int | None = None  # cut-off of mAP@R; None: cutoff_for the data set (1000, or the smallest class)
    max_queries: int | None = 2000  # a fixed random subset of the test split as queries (None or 0: all)
    per_class: int = 8  # HashNet's class-balanced batches: at least this many images per class (m classes × n)
    query_seed: int = 0  # the fixed query subset (never the run seed: every seed ranks the same queries)
    length: int = 1  # every method's stages after the baseline × this many epochs (notebook 08's compute trend)

    @classmethod
    def for_profile(cls, profile: Profile, seeds=None, **overrides) -> "RetrievalSetup":
        """The preset of a profile, with the overrides that are not None; ``seeds`` resolved by
        :func:`llcpkg.seeds.resolve_seeds` (cpu 0 1 2, smoke 0, ``$LLC_SEEDS``).

        smoke: 16 bits, a budget of 2 epochs (1 in the profile, LLC 1 + 1: :func:`budget_epochs`),
        256 queries (CI); cpu: 16 bits, 3 epochs (LLC 2 + 1), 2,000 queries; gpu: the profile's
        budget, every query, 32 and 64 bits as diagnostics.
        """
        presets = {"smoke": dict(max_queries=256), "gpu": dict(max_queries=None, diagnostic_bits=(32, 64))}
        kw = {"epochs": stage_epochs(profile, "retrieval"), **presets.get(profile.name, {}),
              **{k: v for k, v in overrides.items() if v is not None}}
        for name in ("bits", "diagnostic_bits"):
            if name in kw:
                kw[name] = tuple(int(k) for k in kw[name])
        return cls(seeds=resolve_seeds(profile, seeds), **kw)


# ----------------------------------------------------------------------------- methods
Trainer = Callable[[DataBundle, Profile, int | None, RetrievalSetup, int], tuple[Trained, int]]  # (model, epochs after the baseline)
Encoder = Callable[[Classifier, dict], np.ndarray]  # (model, predict()'s output) -> (N, dims) ranked vectors


@dataclass(frozen=True)
class Method:
    """A retrieval method: how it trains, what it ranks and by which metric."""

    train: Trainer  # (data, profile, k, setup, seed) -> (model, epochs after the baseline)
    encode: Encoder  # the vectors ranked: codes' real scores (signs taken) or real embeddings
    metric: str  # hamming | cosine


def _baseline(data: DataBundle, profile: Profile, seed: int) -> Trained:
    """The real-valued baseline of :func:`llcpkg.pipeline.run_llc` (the same cache entry as notebook 01)."""
    cfgs = stage_configs(profile, len(data.train), seed)
    return train_baseline(data, profile.model_config(), cfgs["baseline"], profile.cache_dir)


def budget_epochs(setup: RetrievalSetup) -> int:
    """The epochs every method gets after the baseline (profile units): LLC's two phases
    (:func:`llc_epoch_split` of ``setup.epochs``; each phase at least 1, so a budget of 1 is 2)."""
    return sum(llc_epoch_split(setup.epochs))


def _budget(data: DataBundle, profile: Profile, setup: RetrievalSetup, seed: int) -> TrainConfig:
    """Phase 1's optimiser settings for the whole budget, scaled to the data size like LLC's stages."""
    n = len(data.train)
    return replace(stage_configs(profile, n, seed)["phase1"],
                   epochs=setup.length * scaled_epochs(budget_epochs(setup), n, profile.epoch_reference, profile.epoch_cap))


def _train_baseline(data, profile, k, setup, seed) -> tuple[Trained, int]:
    """The real-valued baseline (no epochs after itself)."""
    return _baseline(data, profile, seed), 0


def _train_llc(data, profile, k, setup, seed) -> tuple[Trained, int]:
    """Phases 1 + 2 within the budget, split by :func:`llc_epoch_split` (phase 2 gets a third)."""
    n = len(data.train)
    cfgs = stage_configs(profile, n, seed)
    e1, e2 = (setup.length * scaled_epochs(e, n, profile.epoch_reference, profile.epoch_cap)
              for e in llc_epoch_split(setup.epochs))
    short = {**cfgs, "phase1": replace(cfgs["phase1"], epochs=e1), "phase2": replace(cfgs["phase2"], epochs=e2)}
    return run_llc(data, profile, k, seed, configs=short).phase2, e1 + e2


def _hasher(method: str) -> Trainer:
    """The budget of the hashing head ``method`` from the baseline's backbone (HashNet: class-balanced batches)."""
    def train(data, profile, k, setup, seed) -> tuple[Trained, int]:
        cfg = _budget(data, profile, setup, seed)
        cfg = replace(cfg, per_class=setup.per_class) if method == "hashnet" else cfg
        return train_hashing(data, HashingConfig(method, k), cfg, _baseline(data, profile, seed), profile.cache_dir), cfg.epochs
    return train


def _train_real(data, profile, k, setup, seed) -> tuple[Trained, int]:
    """A k-dim real embedding and a linear classifier on it (cross-entropy), the budget from the baseline's backbone."""
    cfg, base = _budget(data, profile, setup, seed), _baseline(data, profile, seed)
    key = stage_key(stage="embedding", data=data_id(data), dims=k, train=cfg, parent=base.key)
    set_seed(cfg.seed)
    backbone = copy.deepcopy(base.model.backbone)
    model = Classifier(backbone, build_head("embedding", backbone.out_dim, data.num_classes, k))
    return run_stage("embedding", key, model, data.train, "ce", cfg, profile.cache_dir), cfg.epochs


@torch.no_grad()
def _embedding(model: Classifier, out: dict) -> np.ndarray:
    return model.head.embedding(torch.as_tensor(out["features"])).numpy()


RETRIEVAL_METHODS: dict[str, Method] = {
    "baseline": Method(_train_baseline, lambda m, out: out["features"], "cosine"),
    "real": Method(_train_real, _embedding, "cosine"),
    "llc": Method(_train_llc, lambda m, out: out["bit_logits"], "hamming"),
    **{h: Method(_hasher(h), lambda m, out: out["bit_logits"], "hamming") for h in HASHERS},
}


def train_method(method: str, data: DataBundle, profile: Profile, k: int | None, setup: RetrievalSetup,
                 seed: int = 0) -> tuple[Trained, int]:
    """Train (or load from the cache) one method of ``RETRIEVAL_METHODS`` at k bits (``real``:
    k dims; ``baseline``: None): (model, its epochs after the baseline)."""
    if method not in RETRIEVAL_METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {sorted(RETRIEVAL_METHODS)}")
    return RETRIEVAL_METHODS[method].train(data, profile, k, setup, seed)


def query_subset(n_test: int, max_queries: int | None, seed: int = 0) -> np.ndarray:
    """Sorted indices of a fixed random subset of ``max_queries`` test images (all if None or more)."""
    if not max_queries or max_queries >= n_test:
        return np.arange(n_test)
    return np.sort(np.random.default_rng(seed).permutation(n_test)[:max_queries])


def method_plan(num_classes: int, setup: RetrievalSetup, diagnostics: bool) -> list[tuple[str, int | None]]:
    """(method, k) in table order, each once: the baseline; HashNet, GreedyHash, LLC at every
    ``setup.bits`` (and ``diagnostic_bits`` if ``diagnostics``); LLC at :func:`few_bits` and the
    real embedding of as many dimensions."""
    few = few_bits(num_classes)
    bits = setup.bits + (setup.diagnostic_bits if diagnostics else ())
    plan = [("baseline", None)] + [(m, k) for k in bits for m in ("hashnet", "greedyhash", "llc")]
    plan += [("llc", few), ("real", few)]
    return list(dict.fromkeys(plan))


# ----------------------------------------------------------------------------- tables
@dataclass
class _Encoded:
    """One method's ranked vectors: database (N, dims) and queries (q, dims)."""

    db: np.ndarray
    queries: np.ndarray


_BASELINE_OUTPUTS: dict[tuple[str, str], dict] = {}  # (baseline's cache key, split) -> predict()'s output


def baseline_outputs(base: Trained, data: DataBundle, device: str = "cpu") -> tuple[dict, dict]:
    """``predict`` of the shared baseline on ``data``'s train and test splits, computed once per
    process for each baseline: its cache key fixes its weights and ``data`` (the key holds the
    data's fingerprints), and every call of :func:`seed_tables` (each epoch factor of notebook 08's
    trend) ranks against the same baseline. The newest two baselines are kept."""
    out = []
    for split, ds in (("train", data.train), ("test", data.test)):
        key = (base.key, split)
        if key not in _BASELINE_OUTPUTS:
            _BASELINE_OUTPUTS[key] = predict(base.model, ds, device=device)
            while len(_BASELINE_OUTPUTS) > 4:
                del _BASELINE_OUTPUTS[next(iter(_BASELINE_OUTPUTS))]
        out.append(_BASELINE_OUTPUTS[key])
    return out[0], out[1]


def _accuracy(out: dict) -> float:
    return float((out["outputs"].argmax(1) == out["labels"]).mean())


def seed_tables(bundles: list[DataBundle], profile: Profile, setup: RetrievalSetup, seed: int,
                diagnostics: bool = False, methods: list[tuple[str, int | None]] | None = None
                ) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Train every method of :func:`method_plan` (or only ``methods``, (method, k) pairs, e.g. a
    claim's two sides) with ``seed`` and rank each data set's database (train split) for its
    queries (a fixed subset of the test split).

    Returns (table, curves, encoded): the table has per method and k mAP@R (R from
    :func:`cutoff_for` unless ``setup.R``), mAP over the whole database, precision@R, the epochs
    and steps after the baseline, queries and database size, and the baseline's train and test
    accuracy (the shared backbone's adequacy); curves has mean precision and recall at each
    cut-off; encoded maps (data set, method, k) to its :class:`_Encoded` vectors.
    """
    rows, curves, encoded = [], [], {}
    for data in bundles:
        qi = query_subset(len(data.test), setup.max_queries, setup.query_seed)
        queries = take(data.test, qi)
        base = _baseline(data, profile, seed)
        base_db, base_test = baseline_outputs(base, data, profile.device)
        base_q = {name: v[qi] for name, v in base_test.items()}  # the baseline's test accuracy is on the whole split
        R = setup.R or cutoff_for(base_db["labels"])
        steps_per_epoch = -(-len(data.train) // profile.batch_size)
        for method, k in methods or method_plan(data.num_classes, setup, diagnostics):
            spec = RETRIEVAL_METHODS[method]
            trained, epochs = train_method(method, data, profile, k, setup, seed)
            db, q = ((base_db, base_q) if method == "baseline" else
                     (predict(trained.model, d, device=profile.device) for d in (data.train, queries)))
            enc = _Encoded(spec.encode(trained.model, db), spec.encode(trained.model, q))
            encoded[(data.name, method, k)] = enc
            res = evaluate_retrieval(enc.queries, enc.db, q["labels"], db["labels"], spec.metric, R)
            code = spec.metric == "hamming"
            row = {"dataset": data.name, CLASSES: data.num_classes, METHOD: METHOD_NAMES[method],
                   BITS: k if code else None, DIMS: enc.db.shape[1], "ranking": spec.metric, "epochs": epochs,
                   "steps": epochs * steps_per_epoch, R_COL: R, MAP_AT_R: res.map_at_R, "mAP": res.map,
                   "P@R": res.precision_at(min(R, len(db["labels"]))), "queries": len(qi),
                   "database": len(db["labels"]), BASE_TRAIN: _accuracy(base_db), BASE_TEST: _accuracy(base_test)}
            rows.append(row)
            curves.append(_curve(row, res))
    table = pd.DataFrame(rows).astype({BITS: "Int64"})
    return table, pd.concat(curves, ignore_index=True).astype({BITS: "Int64"}), encoded


def _curve(row: dict, res: RetrievalResult) -> pd.DataFrame:
    return pd.DataFrame({"dataset": row["dataset"], METHOD: row[METHOD], BITS: row[BITS], DIMS: row[DIMS],
                         "cutoff": res.cutoffs, "precision": res.precision, "recall": res.recall})


def query_time_table(name: str, codes: _Encoded, features: _Encoded, bits: int, R: int,
                     queries: int = 50) -> pd.DataFrame:
    """Seconds per query to rank the whole database (distances + top-R selection), one query
    at a time: Hamming on packed codes (:func:`hamming_top_r`: uint8 levels and a counting
    selection) vs float32 cosine on real features (unit-normalised once, offline; matvec +
    ``np.argpartition``). Each time is the median over ``queries`` repeats (one query each)."""
    db_c, q_c = decode.signs_to_bits(codes.db), decode.signs_to_bits(codes.queries)
    db_f, q_f = _unit(features.db), _unit(features.queries)
    packed = decode.PackedCodes.from_bits(db_c)
    R = min(R, len(db_c) - 1)
    n = min(queries, len(q_c))
    it = {"h": 0, "c": 0}

    def hamming():
        i = it["h"] = (it["h"] + 1) % n
        hamming_top_r(q_c[i:i + 1], packed, R)

    def cosine():
        i = it["c"] = (it["c"] + 1) % n
        np.argpartition(-(db_f @ q_f[i]), R)

    rows = [{"dataset": name, "ranking": "Hamming, packed codes", BITS: bits, "bytes per item": packed.nbytes,
             "seconds per query": median_seconds(hamming, queries)},
            {"dataset": name, "ranking": "cosine, float32 features", BITS: None,
             "bytes per item": db_f.shape[1] * 4, "seconds per query": median_seconds(cosine, queries)}]
    df = pd.DataFrame(rows).astype({BITS: "Int64"})
    df["relative to cosine"] = df["seconds per query"] / df["seconds per query"].iloc[-1]
    return df


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


SUMMARY_BY = ["dataset", CLASSES, METHOD, BITS, DIMS, R_COL]
SUMMARY_VALUES = [MAP_AT_R, "mAP", "P@R", BASE_TEST, BASE_TRAIN]


def run(cfg: RetrievalExperiment) -> dict[str, pd.DataFrame]:
    """Tables by file name (``results/tables/<name>.csv``): ``retrieval`` per seed (the first seed
    with the diagnostic code lengths too), its summary, the curves per seed and the query times
    (first seed, first data set, LLC's codes at the first code length vs the baseline's features,
    reusing the vectors ranked for the table)."""
    bundles = [load_bundle(name, cfg.profile) for name in cfg.datasets]
    first, curves, encoded = cfg.setup.seeds[0], {}, {}

    def one_seed(seed: int) -> pd.DataFrame:
        table, curves[seed], enc = seed_tables(bundles, cfg.profile, cfg.setup, seed, diagnostics=seed == first)
        if seed == first:
            encoded.update(enc)
        return table

    table = over_seeds(one_seed, cfg.setup.seeds)
    curve = over_seeds(curves.__getitem__, cfg.setup.seeds)
    name, k = bundles[0].name, cfg.setup.bits[0]
    R = int(table.loc[table["dataset"] == name, R_COL].iloc[0])
    times = query_time_table(name, encoded[(name, "llc", k)], encoded[(name, "baseline", None)], k, R)
    return {RETRIEVAL: table, RETRIEVAL_SUMMARY: summary_table(table, SUMMARY_BY, SUMMARY_VALUES, RETRIEVAL),
            CURVES: curve, QUERY_TIME: times}


# ----------------------------------------------------------------------------- figures and readings
def _label(row) -> str:
    return f"{row[METHOD]} {int(row[BITS])} bits" if not pd.isna(row[BITS]) else f"{row[METHOD]} {int(row[DIMS])} dims"


def plot_map(summary: pd.DataFrame, dataset: str):
    """mAP@R of every method on ``dataset``: bars at the seed mean with 95% intervals (``retrieval_summary``)."""
    from ..plots import grouped_bars

    d = summary[summary["dataset"] == dataset].copy()
    d["method, size"] = d.apply(_label, axis=1)
    R = int(d[R_COL].iloc[0])
    fig = grouped_bars(d, "method, size", [MAP_AT_R], f"mAP@{R}",
                       f"{dataset}: mAP@{R}, mean over {int(d['seeds'].max())} seed(s), 95% interval",
                       ylim=(0, 1), summary=True)
    fig.axes[0].get_legend().remove()  # one column: the y label names it
    for label in fig.axes[0].get_xticklabels():
        label.set_rotation(25)
        label.set_horizontalalignment("right")
    fig.tight_layout()
    return fig


def plot_curves(curves: pd.DataFrame, dataset: str, x: str = "recall", y: str = "precision", logx: bool = False):
    """One panel per code length (a line per method at the seed mean, a band over the 95% interval of
    ``y``), the real-valued rows (baseline and embedding) dashed in each; ``curves`` per seed."""
    import matplotlib.pyplot as plt

    d = curves[curves["dataset"] == dataset]
    s = summary_table(d, ["dataset", METHOD, BITS, DIMS, "cutoff"], ["precision", "recall"], CURVES)
    ref = s[s[BITS].isna()]
    ks = sorted(int(k) for k in s[BITS].dropna().unique())
    fig, axes = plt.subplots(1, len(ks), figsize=(4.2 * len(ks), 3.6), sharey=True, squeeze=False)
    for ax, k in zip(axes[0], ks):
        for style, part in (("-", s[s[BITS] == k]), ("--", ref)):
            for (label, dims), g in part.groupby([METHOD, DIMS], sort=False):
                name = f"{label} ({k} bits)" if style == "-" else f"{label} ({dims} dims)"
                xs = g[x] if x == "cutoff" else g[f"{x} mean"]
                line, = ax.plot(xs, g[f"{y} mean"], style, label=name)
                ax.fill_between(xs, g[f"{y} lo"], g[f"{y} hi"], color=line.get_color(), alpha=0.2)
        ax.set_title(f"{dataset}, {k} bits")
        ax.set_xlabel({"recall": "recall", "cutoff": "items retrieved R"}.get(x, x))
        if logx:
            ax.set_xscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel({"precision": "precision (same class)"}.get(y, y))
    fig.tight_layout()
    return fig


def describe_retrieval(tables: dict[str, pd.DataFrame], results_dir=None) -> str:
    """Plain-language reading of a run's tables: each method's mAP@R (mean and 95% interval over
    seeds) and each claim's verdict by the rules of :data:`CLAIMS` (the same thresholds); tables not
    in ``tables`` (an adequacy reference's) are read from ``results_dir`` when given."""
    summary = tables[RETRIEVAL_SUMMARY]
    lines = []
    for name, d in summary.groupby("dataset", sort=False):
        R = int(d[R_COL].iloc[0])
        lines.append(f"{name} (mAP@{R}, {int(d['seeds'].max())} seed(s), few bits = {few_bits(int(d[CLASSES].iloc[0]))}):")
        for _, r in d.iterrows():
            lines.append(f"  {_label(r)}: {r[f'{MAP_AT_R} mean']:.3f} [{r[f'{MAP_AT_R} lo']:.3f}, {r[f'{MAP_AT_R} hi']:.3f}]")
    for row in verdicts(reader(tables, results_dir)):
        lines.append(f"{row['claim']} ({row['dataset']}): {row['verdict']}. {row['ours']}")
    return "\n".join(lines)


def describe_query_time(times: pd.DataFrame, table: pd.DataFrame) -> str:
    """How much longer cosine ranking takes than Hamming ranking (rows of :func:`query_time_table`;
    the database size from the retrieval ``table``)."""
    name = times["dataset"].iloc[0]
    database = int(table.loc[table["dataset"] == name, "database"].iloc[0])
    ratio = times["seconds per query"].iloc[1] / times["seconds per query"].iloc[0]
    return (f"{name}: cosine over {database} items takes {ratio:.1f}x the time of Hamming ranking "
            f"on {times['bytes per item'].iloc[0]}-byte codes ({times['bytes per item'].iloc[1]} bytes per float vector).")


# ----------------------------------------------------------------------------- claims
CLAIM_HASHNET = "LLC codes with few bits beat 16-bit HashNet in retrieval"
CLAIM_GREEDYHASH = "LLC codes match GreedyHash at equal bits in retrieval"
CLAIM_REAL = "LLC codes with few bits match real embeddings of as many dimensions"
_COLUMNS = ["dataset", SEED, CLASSES, METHOD, BITS, DIMS, R_COL, MAP_AT_R, BASE_TEST]


def _scores(g: pd.DataFrame, method: str, bits: int | None = None, dims: int | None = None) -> pd.Series:
    """mAP@R per seed (indexed by seed) of ``method`` at ``bits`` (or real-valued at ``dims``); empty if not run."""
    m = g[METHOD] == METHOD_NAMES[method]
    m &= (g[BITS] == bits).fillna(False) if bits is not None else g[BITS].isna()
    if dims is not None:
        m &= g[DIMS] == dims
    return g.loc[m].set_index(SEED)[MAP_AT_R].astype(float)


def _diff(a: pd.Series, b: pd.Series, threshold: float, what: str) -> tuple[Verdict, Interval]:
    iv = paired_interval(a, b)
    return at_least(iv, threshold, what), iv


def _gated(verdict: Verdict, g: pd.DataFrame, dataset: str, t: Tables) -> Verdict:
    """``verdict`` gated on the baseline's test accuracy over seeds (:func:`llcpkg.references.gate_baseline`)."""
    return gate_baseline(verdict, g.drop_duplicates(SEED)[BASE_TEST], REFERENCE_ARCH, dataset, t)


def _groups(t: Tables):
    df = t(RETRIEVAL)
    require_columns(df, _COLUMNS, RETRIEVAL)
    for name, g in df.groupby("dataset", sort=False):
        yield name, g, int(g[R_COL].iloc[0]), few_bits(int(g[CLASSES].iloc[0]))


def _not_run(what: str) -> Verdict:
    """The verdict of a claim (or part) whose method is missing from the table: ``not run``, saying which."""
    return Verdict(NOT_RUN, f"{what} not in table {RETRIEVAL!r}")


def claim_hashnet(t: Tables) -> list[dict]:
    """Two parts, each holding if the paired interval over seeds of LLC − HashNet-16 in mAP@R lies
    above :data:`BEAT_MARGIN`: LLC at :func:`few_bits`, and LLC at 16 bits; combined (partly names
    the failing part), gated on the baseline."""
    rows = []
    for name, g, R, few in _groups(t):
        hn = _scores(g, "hashnet", HASHNET_BITS)
        parts, ours = {}, []
        for k in dict.fromkeys((few, HASHNET_BITS)):
            llc = _scores(g, "llc", k)
            part = f"LLC {k} bits vs HashNet {HASHNET_BITS}"
            if hn.empty or llc.empty:  # a method missing from the table: the part says so, never dropped
                parts[part] = _not_run(f"LLC at {k} bits or HashNet at {HASHNET_BITS} bits")
                continue
            parts[part], iv = _diff(llc, hn, BEAT_MARGIN, f"LLC {k} bits − HashNet {HASHNET_BITS} bits (mAP@{R})")
            ours.append(f"LLC {k} bits {llc.mean():.3f} − HashNet {hn.mean():.3f} = {iv:+.3f}")
        rows.append(claim_row(CLAIM_HASHNET, "ImageNet-100, mAP@1000: 10-bit LLC ≈ 2 points and 16-bit LLC ≈ 15 "
                              "points above 16-bit HashNet", name, f"mAP@{R}: " + "; ".join(ours),
                              _gated(combine(parts), g, name, t)))
    return rows


def claim_greedyhash(t: Tables) -> list[dict]:
    """Holds if the paired interval of LLC − GreedyHash at 16 bits (mAP@R) lies at or above
    −:data:`MATCH_TOL`; gated on the baseline."""
    rows = []
    for name, g, R, _ in _groups(t):
        llc, gh = _scores(g, "llc", HASHNET_BITS), _scores(g, "greedyhash", HASHNET_BITS)
        if llc.empty or gh.empty:
            rows.append(claim_row(CLAIM_GREEDYHASH, "", name, "", _not_run(f"LLC or GreedyHash at {HASHNET_BITS} bits")))
            continue
        v, iv = _diff(llc, gh, -MATCH_TOL, f"LLC − GreedyHash at {HASHNET_BITS} bits (mAP@{R})")
        rows.append(claim_row(CLAIM_GREEDYHASH, "ImageNet-100: GreedyHash is the stronger deep-hashing baseline", name,
                              f"mAP@{R}, {HASHNET_BITS} bits: LLC {llc.mean():.3f} − GreedyHash {gh.mean():.3f} = {iv:+.3f}",
                              _gated(v, g, name, t)))
    return rows


def claim_real(t: Tables) -> list[dict]:
    """Holds if the paired interval of LLC at :func:`few_bits` minus the real embedding of as
    many dimensions (mAP@R) lies at or above −:data:`MATCH_TOL`; gated on the baseline."""
    rows = []
    for name, g, R, few in _groups(t):
        llc, real = _scores(g, "llc", few), _scores(g, "real", dims=few)
        if llc.empty or real.empty:
            rows.append(claim_row(CLAIM_REAL, "", name, "", _not_run(f"LLC at {few} bits or the {few}-dim real embedding")))
            continue
        v, iv = _diff(llc, real, -MATCH_TOL, f"LLC {few} bits − real {few}-dim embedding (mAP@{R})")
        rows.append(claim_row(CLAIM_REAL, "ImageNet-100: 10-bit LLC as accurate as 10-dim real representations", name,
                              f"mAP@{R}: LLC {few} bits {llc.mean():.3f} − real {few} dims {real.mean():.3f} = {iv:+.3f}",
                              _gated(v, g, name, t)))
    return rows


CLAIMS: dict[str, Rule] = {CLAIM_HASHNET: claim_hashnet, CLAIM_GREEDYHASH: claim_greedyhash, CLAIM_REAL: claim_real}


def verdicts(tables: Tables) -> list[dict]:
    """The claims rows of notebook 03's tables (a missing table: one ``not run`` row per claim)."""
    return collect(CLAIMS, tables)
