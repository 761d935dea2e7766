"""Notebook 05: the taxonomy hidden in the learnt class codes (Kusupati et al. 2021, §4.5).

The scores (agreement of a code tree with a known hierarchy, permutation p-values, instance
code statistics) are the library's :mod:`llcpkg.hierarchy`; this module loads the cached
LLC runs, builds the comparison codebooks, draws the figures and reads the tables.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.cluster.hierarchy import dendrogram

from ..codebooks import build_codebook, code_length, to_bits
from ..data import subset
from ..decode import signs_to_bits
from ..hierarchy import code_tree, codebook_agreement, instance_code_stats, radius_distribution
from ..metrics import llc_outputs
from ..pipeline import load_bundle, run_llc
from ..profiles import Profile
from ..verdicts import FAILS, HOLDS, PARTLY, Rule, Tables, collect

__all__ = ["TaxonomyExperiment", "TaxonomyResult", "run_taxonomy", "plot_code_dendrogram", "plot_radius_histogram", "describe_agreement",
           "describe_instance_codes", "SIGNIFICANCE", "run_all", "tables", "run", "TAXONOMY", "INSTANCE_CODES", "LLC_LEARNT", "CLAIMS",
           "verdicts"]

SIGNIFICANCE = 0.05  # level of the permutation tests in the verdicts
TAXONOMY, INSTANCE_CODES = "taxonomy", "taxonomy_instance_codes"  # tables (results/tables/<name>.csv)
LLC_LEARNT = "LLC learnt"  # the learnt codebook's row (column "codebook")


@dataclass
class TaxonomyResult:
    """What :func:`run_taxonomy` returns for one data set."""

    dataset: str
    class_names: list[str]
    groups: np.ndarray  # (L,) group index of each class
    group_names: list[str]
    codebooks: dict[str, np.ndarray]  # name → (L, k) {0, 1}: the learnt codes, then SVD and CCA
    agreement: pd.DataFrame  # codebook_agreement rows, with dataset / classes / bits columns
    instance: dict[str, float]  # instance_code_stats of the phase-2 test instance codes
    radius: np.ndarray  # (k + 1,) radius_distribution of the same


def run_taxonomy(name: str, profile: Profile, seed: int = 0, bits: int | None = None, n_perm: int = 1000,
                 n_random: int = 100, cca_samples: int | None = 10_000) -> TaxonomyResult:
    """Reuse (or train) the cached LLC run of ``pipeline.run_llc`` on data set ``name`` at
    k = ``bits`` (default: 2·ceil(log2 L), the run notebook 01 caches) and measure its
    class codes against the data set's groups, beside SVD codes (from the baseline's
    classifier weights) and CCA codes (from its features of at most ``cca_samples`` training
    images, drawn with ``seed``); then describe the phase-2 instance codes of the test split."""
    data = load_bundle(name, profile)
    groups = data.class_to_group()
    if groups is None:
        raise ValueError(f"{name} has no known class groups to compare the code tree with")
    k = code_length(data.num_classes, bits)
    run = run_llc(data, profile, k, seed)
    test = llc_outputs(run.phase2, data, "test", device=profile.device)
    train_feats = llc_outputs(run.baseline, subset(data, cca_samples, None, seed), "train", device=profile.device)
    L = data.num_classes
    codebooks = {
        LLC_LEARNT: test["class_bits"],
        "SVD": to_bits(build_codebook("svd", L, k, seed=seed, weights=run.baseline.model.head.fc.weight)),
        "CCA": to_bits(build_codebook("cca", L, k, seed=seed, features=train_feats["features"],
                                      labels=train_feats["labels"])),
    }
    agreement = codebook_agreement(codebooks, groups, n_perm=n_perm, n_random=n_random, seed=seed)
    agreement.insert(0, "bits", k), agreement.insert(0, "groups", len(data.groups)), agreement.insert(0, "classes", L)
    agreement.insert(0, "dataset", name)
    inst = signs_to_bits(test["bit_logits"])
    return TaxonomyResult(name, data.class_names, groups, list(data.groups), codebooks, agreement,
                          {"dataset": name, **instance_code_stats(inst, test["labels"], test["class_bits"])},
                          radius_distribution(inst, test["labels"], test["class_bits"]))


# ----------------------------------------------------------------------------- figures
def plot_code_dendrogram(codes: np.ndarray, class_names: list[str], groups: np.ndarray, group_names: list[str],
                         title: str, method: str = "average", show_names: bool = True):
    """Dendrogram of the class codes (Hamming distance in bits), leaves marked by group colour;
    class names under the leaves when ``show_names`` (else only the coloured marks)."""
    import matplotlib.pyplot as plt

    groups = np.asarray(groups)
    L = len(groups)
    fig, ax = plt.subplots(figsize=(max(7, min(24, 0.09 * L + 5)), 4.8))
    d = dendrogram(code_tree(codes, method), ax=ax, labels=list(class_names) if show_names else None,
                   no_labels=not show_names, color_threshold=0, above_threshold_color="0.35", leaf_rotation=90)
    cmap = plt.get_cmap("tab10" if len(group_names) <= 10 else "tab20")
    leaves = np.asarray(d["leaves"])
    xs = 5 + 10 * np.arange(L)
    for g, gname in enumerate(group_names):
        sel = groups[leaves] == g
        ax.scatter(xs[sel], np.zeros(sel.sum()), marker="s", s=30 if L < 50 else 9, color=cmap(g % cmap.N),
                   label=gname, zorder=3, clip_on=False)
    if show_names:
        for tick, leaf in zip(ax.get_xticklabels(), leaves):
            tick.set_color(cmap(groups[leaf] % cmap.N))
    ax.set_ylabel(f"Hamming distance between class codes (bits, {method} linkage)")
    ax.set_xlabel("classes (leaf colour = known group)")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), title="known group", title_fontsize=7)
    fig.tight_layout()
    return fig


def plot_radius_histogram(dists: dict[str, np.ndarray]):
    """Share of test instances at each Hamming radius from their class code, one bar set per data set."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(dists), figsize=(5 * len(dists), 3.6), squeeze=False)
    for ax, (name, share) in zip(axes[0], dists.items()):
        ax.bar(np.arange(len(share)), share, color="tab:blue")
        ax.set_xlabel(f"Hamming radius from the class code (bits, k = {len(share) - 1})")
        ax.set_ylabel("share of test instances")
        ax.set_title(f"{name}: instance codes around their class code")
    fig.tight_layout()
    return fig


def describe_agreement(agreement: pd.DataFrame, level: float = SIGNIFICANCE) -> str:
    """Verdicts from the agreement table: does the learnt code tree follow the known groups
    (a permutation p-value below ``level``), against random, SVD and CCA codes."""
    lines = []
    for name, t in agreement.groupby("dataset", sort=False):
        rows = t.set_index("codebook")
        llc, rnd = rows.loc[LLC_LEARNT], rows.iloc[-1]
        verdict = "follows" if llc["p ARI"] < level or llc["p spearman tree"] < level else "does NOT measurably follow"
        lines.append(f"{name}: the learnt code tree {verdict} the known groups — ARI {llc['ARI']:.3f} (p = {llc['p ARI']:.3f}; "
                     f"random codes {rnd['ARI']:.3f}), Spearman(tree, hierarchy) {llc['spearman tree']:.3f} "
                     f"(p = {llc['p spearman tree']:.3f}), Hamming distance within groups {llc['within']:.2f} vs across "
                     f"{llc['across']:.2f} bits (p = {llc['p gap']:.3f}).")
        for cb in ("SVD", "CCA"):
            o = rows.loc[cb]
            better = "more" if o["ARI"] > llc["ARI"] else "less"
            lines.append(f"  {cb} codes agree {better} than the learnt ones: ARI {o['ARI']:.3f} (p = {o['p ARI']:.3f}), "
                         f"Spearman(tree) {o['spearman tree']:.3f} (p = {o['p spearman tree']:.3f}), gap {o['gap']:.2f} bits.")
    return "\n".join(lines)


def describe_instance_codes(instance: pd.DataFrame) -> str:
    """Reading of the instance-code table: concentration, distance to the class codes, balance."""
    return "\n".join(
        f"{s['dataset']}: {s['distinct instance codes']} distinct codes among {s['instances']} test instances "
        f"(uniform random {s['bits']}-bit codes would give {s['distinct if uniform']:.0f}), so they are "
        f"{'concentrated' if s['distinct instance codes'] < 0.5 * s['distinct if uniform'] else 'spread out'}; "
        f"{100 * s['on own class code']:.1f}% sit exactly on their class code and "
        f"{100 * s['on any class code']:.1f}% on some class code; median radius {s['radius median']:.0f} bits, "
        f"{100 * s['radius >= 3']:.1f}% at 3 or more; bits are off balance by {s['bit balance mean']:.3f} on "
        f"average (worst {s['bit balance max']:.3f}) and pairs of bits correlate with |r| {s['bit |corr| mean']:.3f} "
        f"on average (worst {s['bit |corr| max']:.3f})." for _, s in instance.iterrows())


@dataclass(frozen=True)
class TaxonomyExperiment:
    """Notebook 05's parameters."""

    profile: Profile  # scale of the run (the cached LLC runs of notebook 01)
    datasets: tuple[str, ...] = ("fashion_mnist", "omniglot")  # data sets with known class groups
    seed: int = 0  # the cached LLC run (seed 0), permutations and random codebooks
    n_perm: int = 1000  # group permutations for each p-value
    n_random: int = 100  # random codebooks of the same size, the "random codes" reference

    @classmethod
    def for_profile(cls, profile: Profile, **params) -> "TaxonomyExperiment":
        """The notebook's parameters (lists become tuples) on ``profile``."""
        return cls(profile, **{k: tuple(v) if isinstance(v, list) else v for k, v in params.items()})


def run_all(cfg: TaxonomyExperiment) -> dict[str, TaxonomyResult]:
    """:func:`run_taxonomy` on every data set of ``cfg`` (its figures read these), by data set."""
    return {name: run_taxonomy(name, cfg.profile, seed=cfg.seed, n_perm=cfg.n_perm, n_random=cfg.n_random)
            for name in cfg.datasets}


def tables(results: dict[str, TaxonomyResult]) -> dict[str, pd.DataFrame]:
    """The notebook's tables from :func:`run_all`'s results, by file name (``results/tables/<name>.csv``)."""
    return {TAXONOMY: pd.concat([r.agreement for r in results.values()], ignore_index=True),
            INSTANCE_CODES: pd.DataFrame([r.instance for r in results.values()])}


def run(cfg: TaxonomyExperiment) -> dict[str, pd.DataFrame]:
    """Every table of notebook 05, by file name."""
    return tables(run_all(cfg))


# ----------------------------------------------------------------------------- claims
def claim_taxonomy(t: Tables) -> list[dict]:
    """The learnt codes' tree recovers the known hierarchy. Holds: ARI and tree Spearman both
    significant (p < 0.05, permutation of group labels); partly: one of them."""
    df = t(TAXONOMY)
    rows = []
    for _, r in df[df["codebook"] == LLC_LEARNT].iterrows():
        sig = [r["p ARI"] < 0.05, r["p spearman tree"] < 0.05]
        rows.append({"claim": "Clustering the class codes recovers semantic groups",
                     "paper": "ImageNet: qualitative (e.g. frogs grouped); no score", "dataset": r["dataset"],
                     "ours": f"ARI {r['ARI']:.2f} (p={r['p ARI']:.3f}), tree Spearman {r['spearman tree']:.2f} "
                             f"(p={r['p spearman tree']:.3f})",
                     "verdict": HOLDS if all(sig) else PARTLY if any(sig) else FAILS})
    return rows


CLAIMS: dict[str, Rule] = {"LLC: taxonomy from codes": claim_taxonomy}


def verdicts(tables: Tables) -> list[dict]:
    """The claims rows of notebook 05's tables (a missing table: one ``not run`` row per claim)."""
    return collect(CLAIMS, tables)
