"""Notebook 04: out-of-distribution detection with LLC codes against tuned score-based
detectors (Kusupati et al. 2021, §4.4).

The detectors (scorer registry), the split and the metrics are the library's
:mod:`llcpkg.detectors`; this module runs the experiment, draws its figures and reads the
tables (:func:`describe_ood`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..codebooks import code_length
from ..detectors import (DetectorScores, OODSplit, choose_held_out, create_scorer, evaluate_detector, ood_split,
                         samples_to_match, score_dataset)
from ..pipeline import load_bundle, run_llc
from ..profiles import Profile
from ..verdicts import FAILS, HOLDS, PARTLY, Rule, Tables, collect

__all__ = ["OODExperiment", "OODConfig", "OODResult", "run_ood", "plot_f1_vs_samples", "plot_distance_histogram", "describe_ood",
           "describe_run", "run_all", "tables", "run", "OOD", "MATCH", "F1_FLAG_ALL", "CLAIMS", "verdicts"]

# tables (results/tables/<name>.csv) and the column this module adds (the rest are llcpkg.detectors')
OOD, MATCH = "ood", "ood_samples_to_match"
F1_FLAG_ALL = "F1 flag-all"  # F1 of flagging every test image as OOD, the floor


@dataclass
class OODConfig:
    """One OOD experiment on one data set."""

    dataset: str  # a name in llcpkg.data.DATASETS
    n_held_out: int = 3  # classes (or, with by_group, groups) held out as OOD, drawn with `seed`
    by_group: bool = False  # hold out whole groups (Omniglot: alphabets)
    held_out: list[int] | None = None  # explicit held-out classes (overrides n_held_out)
    val_size: int | float = 3000  # held-back in-distribution train images (float = fraction)
    bits: int | None = None  # LLC code length; None = 2·ceil(log2 L_in), the paper's ratio
    detectors: tuple[str, ...] = ("llc_ed", "llc_hamming", "msp", "energy", "odin")  # names in SCORERS
    n_tune: tuple[int, ...] = (10, 30, 100, 300, 1000, 3000)  # OOD (and ID) samples for tuning
    repeats: int = 5  # draws of the tuning samples per n
    seed: int = 0  # held-out choice, validation cut, training and tuning draws
    scorer_kw: dict[str, dict] = field(default_factory=dict)  # per-detector settings, e.g. {"odin": {"epsilon": 0}}


@dataclass
class OODResult:
    """What :func:`run_ood` returns; ``table`` also gives the F1 of the trivial detector that
    flags every image OOD (2·n_out / (2·n_out + n_in)), the floor any detector must beat."""

    table: pd.DataFrame  # evaluate_detector rows of every detector, with data-set columns
    scores: dict[str, DetectorScores]
    split: OODSplit
    held_out_names: list[str]
    bits: int


def run_ood(cfg: OODConfig, profile: Profile) -> OODResult:
    """Load the data set for ``profile``, split it, train (cached) baseline and LLC on the
    in-distribution classes with ``run_llc``, score every detector and evaluate it."""
    bundle = load_bundle(cfg.dataset, profile)
    held = cfg.held_out if cfg.held_out is not None else choose_held_out(bundle, cfg.n_held_out, cfg.by_group, cfg.seed)
    split = ood_split(bundle, held, cfg.val_size, cfg.seed)
    bits = code_length(split.ind.num_classes, cfg.bits)
    run = run_llc(split.ind, profile, bits, cfg.seed)
    models = {"baseline": run.baseline.model, "llc": run.phase2.model}
    scores, tables = {}, []
    for name in cfg.detectors:
        scorer = create_scorer(name, **cfg.scorer_kw.get(name, {}))
        model = models[scorer.model_kind]
        pools = {p: score_dataset(scorer, model, ds, device=profile.device)
                 for p, ds in [("val_in", split.val_in), ("val_out", split.val_out),
                               ("test_in", split.ind.test), ("test_out", split.test_out)]}
        s = DetectorScores(name, scorer.fixed_threshold, *(pools[p][1] for p in ("val_in", "val_out", "test_in", "test_out")),
                           pools["test_in"][0], pools["test_in"][2])
        scores[name] = s
        tables.append(evaluate_detector(s, list(cfg.n_tune), cfg.repeats, cfg.seed))
    table = pd.concat(tables, ignore_index=True)
    n_in, n_out = len(split.ind.test), len(split.test_out)
    info = {"dataset": cfg.dataset, "classes in": split.ind.num_classes, "classes out": len(held), "bits": bits,
            "test in": n_in, "test out": n_out, "positive": "OOD", F1_FLAG_ALL: 2 * n_out / (2 * n_out + n_in)}
    table = pd.concat([pd.DataFrame([info] * len(table)), table], axis=1)
    names = [bundle.class_names[c] for c in held]
    return OODResult(table, scores, split, names, bits)


# ----------------------------------------------------------------------------- figures
def plot_f1_vs_samples(table: pd.DataFrame, reference: str = "llc_ed"):
    """F1 (mean ± std over draws) against the number of tuning samples per class (in and out),
    log x axis, one panel per data set; the reference detector as a horizontal line."""
    import matplotlib.pyplot as plt

    sets = list(dict.fromkeys(table["dataset"]))
    fig, axes = plt.subplots(1, len(sets), figsize=(5.5 * len(sets), 4), squeeze=False)
    for ax, ds in zip(axes[0], sets):
        t = table[table["dataset"] == ds]
        for det, d in t[t["detector"] != reference].groupby("detector", sort=False):
            ax.errorbar(d["n_tune"], d["F1 mean"], yerr=d["F1 std"], marker="o", capsize=3, label=det)
        ref = t[t["detector"] == reference]
        if len(ref):
            ax.axhline(float(ref["F1 mean"].iloc[0]), color="k", ls="--", label=f"{reference} (no tuning)")
        ax.set_xscale("log")
        ax.set_xlabel("tuning samples n (n OOD + n in-distribution)")
        ax.set_ylabel("test F1 of the in/out decision (OOD = positive)")
        ax.set_title(f"{ds}: F1 vs tuning samples")
        ax.set_ylim(0, 1)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_distance_histogram(results: dict[str, OODResult], detector: str = "llc_hamming"):
    """Share of test images at each Hamming distance from g(x) to the nearest class code,
    in-distribution vs held-out classes, one panel per data set."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5.5 * len(results), 3.8), squeeze=False)
    for ax, (ds, res) in zip(axes[0], results.items()):
        s = res.scores[detector]
        top = int(max(s.test_in.max(), s.test_out.max())) + 1
        for i, (vals, label) in enumerate([(s.test_in, "in-distribution"), (s.test_out, "held-out classes (OOD)")]):
            share = np.bincount(vals.astype(np.int64), minlength=top + 1)[:top + 1] / max(len(vals), 1)
            ax.bar(np.arange(top + 1) + (i - 0.5) * 0.4, share, width=0.4, label=label)
        ax.set_xticks(np.arange(top + 1))
        ax.set_xlabel(f"Hamming distance to the nearest class code (bits, k = {res.bits})")
        ax.set_ylabel("share of test images")
        ax.set_title(f"{ds}: instance codes vs class codes\n(distance 0 = accepted by ED)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


@dataclass(frozen=True)
class OODExperiment:
    """Notebook 04's parameters: one :class:`OODConfig` per data set (:meth:`configs`)."""

    profile: Profile  # scale of the run
    seed: int = 0  # held-out choice, validation cut, training and tuning draws
    fmnist_held_out: int = 3  # Fashion-MNIST classes held out as OOD (drawn with seed)
    omniglot_held_out: int = 2  # Omniglot alphabets held out as OOD (whole alphabets)
    n_tune: tuple[int, ...] = (10, 30, 100, 300, 1000, 3000)  # OOD (and as many ID) samples to tune a threshold
    repeats: int = 5  # draws of the tuning samples per n
    odin: dict | None = None  # ODIN settings (temperature, epsilon); None: the scorer's defaults
    fmnist_val: int = 3000  # Fashion-MNIST in-distribution train images kept aside for tuning
    omniglot_val: float = 0.2  # Omniglot's share kept aside (its splits are small)

    @classmethod
    def for_profile(cls, profile: Profile, **params) -> "OODExperiment":
        """The notebook's parameters (lists become tuples) on ``profile``."""
        return cls(profile, **{k: tuple(v) if isinstance(v, list) else v for k, v in params.items()})

    def configs(self) -> list[OODConfig]:
        """Fashion-MNIST (classes held out) and Omniglot (whole alphabets held out)."""
        kw = dict(n_tune=tuple(self.n_tune), repeats=self.repeats, seed=self.seed,
                  scorer_kw={"odin": dict(self.odin)} if self.odin else {})
        return [OODConfig("fashion_mnist", n_held_out=self.fmnist_held_out, val_size=self.fmnist_val, **kw),
                OODConfig("omniglot", n_held_out=self.omniglot_held_out, by_group=True, val_size=self.omniglot_val, **kw)]


def describe_run(results: dict[str, OODResult]) -> str:
    """What each run held out, its code length and the sizes of its pools."""
    lines = []
    for name, res in results.items():
        shown = res.held_out_names if len(res.held_out_names) <= 10 else sorted({n.split("/")[0] for n in res.held_out_names})
        lines.append(f"{name}: held out {shown}; LLC k = {res.bits} bits; validation pools {len(res.split.val_in)} in / "
                     f"{len(res.split.val_out)} out; test {len(res.split.ind.test)} in / {len(res.split.test_out)} out")
    return "\n".join(lines)


def describe_ood(table: pd.DataFrame, match: pd.DataFrame) -> str:
    """The verdicts: LLC-ED's F1 against the flag-all floor, and how many OOD samples each
    tuned detector needs to reach it (from :func:`run_ood`'s table and ``samples_to_match``)."""
    lines = []
    for name, t in table.groupby("dataset", sort=False):
        ed = t[t["detector"] == "llc_ed"].iloc[0]
        lines.append(f"{name}: LLC-ED F1 {ed['F1 mean']:.3f} (flag-all floor {ed['F1 flag-all']:.3f}; "
                     f"{'above' if ed['F1 mean'] > ed['F1 flag-all'] else 'NOT above'} it), AUROC of the Hamming distance "
                     f"{ed['AUROC']:.3f}, in-distribution accuracy when ED rejects {ed['id_accuracy mean']:.3f}.")
        for _, m in match[match["dataset"] == name].iterrows():
            reach = (f"reaches it with n = {int(m['n to match'])} OOD samples" if m["n to match"] == m["n to match"]
                     else "never reaches it within the n tried")
            auroc = t.loc[t["detector"] == m["detector"], "AUROC"].iloc[0]
            lines.append(f"  {m['detector']}: best mean F1 {m['best']:.3f} (at n = {m['n at best']}), {reach}; "
                         f"AUROC {auroc:.3f}.")
    return "\n".join(lines)


def run_all(cfg: OODExperiment) -> dict[str, OODResult]:
    """:func:`run_ood` on every data set of ``cfg`` (its figures read these), by data set."""
    return {c.dataset: run_ood(c, cfg.profile) for c in cfg.configs()}


def tables(results: dict[str, OODResult]) -> dict[str, pd.DataFrame]:
    """The notebook's tables from :func:`run_all`'s results, by file name (``results/tables/<name>.csv``)."""
    table = pd.concat([r.table for r in results.values()], ignore_index=True)
    return {OOD: table, MATCH: samples_to_match(table)}


def run(cfg: OODExperiment) -> dict[str, pd.DataFrame]:
    """Every table of notebook 04, by file name."""
    return tables(run_all(cfg))


# ----------------------------------------------------------------------------- claims
def claim_ood(t: Tables) -> list[dict]:
    """ED-based OOD detection with no samples matches MSP tuned on samples (F1, OOD positive).
    Holds: LLC-ED's F1 ≥ MSP's F1 at the largest tuning budget − 0.01; partly: ≥ MSP at the smallest budget."""
    df = t(OOD)
    rows = []
    for name, g in df.groupby("dataset"):
        ed = g[g["detector"] == "llc_ed"]["F1 mean"].iloc[0]
        msp = g[(g["detector"] == "msp") & (g["n_tune"] > 0)].sort_values("n_tune")
        if msp.empty:
            continue
        lo, hi = msp.iloc[0], msp.iloc[-1]
        rows.append({"claim": "LLC-ED flags OOD without samples as well as tuned MSP",
                     "paper": "ImageNet: ED matches MSP tuned on ≈3,000 samples (F1)", "dataset": name,
                     "ours": f"F1 (OOD positive): LLC-ED {ed:.3f}; MSP {lo['F1 mean']:.3f} at n={int(lo['n_tune'])}, "
                             f"{hi['F1 mean']:.3f} at n={int(hi['n_tune'])}; flag-all {g[F1_FLAG_ALL].iloc[0]:.3f}",
                     "verdict": HOLDS if ed >= hi["F1 mean"] - 0.01 else PARTLY if ed >= lo["F1 mean"] else FAILS})
    return rows


CLAIMS: dict[str, Rule] = {"LLC: OOD without samples": claim_ood}


def verdicts(tables: Tables) -> list[dict]:
    """The claims rows of notebook 04's tables (a missing table: one ``not run`` row per claim)."""
    return collect(CLAIMS, tables)
