"""Notebook 05: the taxonomy hidden in the learnt class codes (Kusupati et al. 2021, §4.5).

The scores (agreement of a code tree with a known hierarchy, permutation p-values, instance
code statistics) are the library's :mod:`llcpkg.hierarchy`; this module loads the cached
LLC runs (notebook 01's: same data, profile, k and seed, so the same cache keys), builds the
comparison codebooks, draws the figures and reads the tables.

Over seeds (#16): each seed's baseline and phase-1 codes (phase 2 does not change the class
codes: it freezes B(C)) give one row per codebook; SVD and CCA codes are built from that seed's
baseline, so the comparison is paired by seed. The claim's rule (#17 item 6) tests an effect
size with its interval over seeds, the code tree's rank correlation with the known hierarchy
(:data:`EFFECT`), and compares the learnt codes with SVD and CCA codes, not significance
alone. The instance-code diagnostics (which need phase 2) stay on the first seed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.cluster.hierarchy import dendrogram

from ..codebooks import build_codebook, code_length, to_bits
from ..data import subset
from ..decode import signs_to_bits
from ..hierarchy import code_tree, codebook_agreement, instance_code_stats, radius_distribution, random_scores, SCORES
from ..metrics import llc_outputs
from ..pipeline import SPLIT_SEED, load_bundle, run_llc
from ..profiles import Profile
from ..references import gate_baseline
from ..seeds import SEED, over_seeds, resolve_seeds, summary_name, summary_table
from ..stats import paired_interval, require_columns, seed_interval
from .classification import standard_configs
from ..verdicts import Rule, Tables, at_least, claim_row, collect, combine

__all__ = ["TaxonomyExperiment", "TaxonomyResult", "run_taxonomy", "plot_code_dendrogram", "plot_radius_histogram",
           "plot_effect", "describe_agreement", "describe_instance_codes", "run_all", "tables", "run", "TAXONOMY",
           "TAXONOMY_SUMMARY", "INSTANCE_CODES", "LLC_LEARNT", "COMPARED", "EFFECT", "EFFECT_MIN", "TOLERANCE",
           "BASELINE_ACC", "CLAIM", "CLAIMS", "verdicts"]

TAXONOMY, INSTANCE_CODES = "taxonomy", "taxonomy_instance_codes"  # tables (results/tables/<name>.csv)
TAXONOMY_SUMMARY = summary_name(TAXONOMY)  # mean, std, 95% t-interval over seeds of every score
LLC_LEARNT = "LLC learnt"  # the learnt codebook's row (column "codebook")
COMPARED = ("SVD", "CCA")  # codebooks built from the baseline, compared with the learnt one
EFFECT = "spearman tree"  # the effect size: Spearman correlation of the tree's cophenetic distance with the hierarchy's
EFFECT_MIN = 0.1  # the smallest correlation that counts as recovering the groups (Cohen's "small" effect, r = 0.1)
TOLERANCE = 0.05  # "as well as SVD/CCA codes": the learnt codes' EFFECT at most this far below theirs
BASELINE_ACC = "baseline accuracy"  # test accuracy of the baseline the SVD/CCA codes are built from (the gate)
CLAIM = "Clustering the class codes recovers semantic groups (as well as SVD/CCA codes)"  # claims.csv "claim"
RANDOM_SEED = 0  # the random-codebook reference is drawn once per data set, the same for every seed


@dataclass
class TaxonomyResult:
    """What :func:`run_taxonomy` returns for one data set and seed."""

    dataset: str
    seed: int
    class_names: list[str]
    groups: np.ndarray  # (L,) group index of each class
    group_names: list[str]
    codebooks: dict[str, np.ndarray]  # name → (L, k) {0, 1}: the learnt codes, then SVD and CCA
    agreement: pd.DataFrame  # codebook_agreement rows, with dataset / classes / bits / baseline accuracy columns
    instance: dict[str, float] | None  # instance_code_stats of the phase-2 test instance codes (instance=True)
    radius: np.ndarray | None  # (k + 1,) radius_distribution of the same


def run_taxonomy(name: str, profile: Profile, seed: int = 0, bits: int | None = None, n_perm: int = 1000,
                 n_random: int = 100, cca_samples: int | None = 10_000, rand: pd.DataFrame | None = None,
                 instance: bool = True) -> TaxonomyResult:
    """Reuse (or train) the cached LLC run of ``pipeline.run_llc`` on data set ``name`` at
    k = ``bits`` (default: 2·ceil(log2 L), the run notebook 01 caches) and ``seed``, and measure
    its class codes against the data set's groups, beside SVD codes (from the baseline's classifier
    weights) and CCA codes (from its features of at most ``cca_samples`` training images, drawn
    with SPLIT_SEED). ``rand``: :func:`llcpkg.hierarchy.random_scores`, shared across seeds.
    ``instance``: also describe the phase-2 instance codes of the test split (trains or loads
    phase 2; without it only the baseline and phase 1 are needed). The stage configs are notebook 01's
    (:func:`llcpkg.experiments.classification.standard_configs`), so its cached runs are reused."""
    data = load_bundle(name, profile)
    groups = data.class_to_group()
    if groups is None:
        raise ValueError(f"{name} has no known class groups to compare the code tree with")
    k = code_length(data.num_classes, bits)
    configs = standard_configs(profile, data, seed)
    run = run_llc(data, profile, k, seed, until="phase2" if instance else "phase1", configs=configs)
    base = llc_outputs(run.baseline, data, "test", device=profile.device)
    train_feats = llc_outputs(run.baseline, subset(data, cca_samples, None, SPLIT_SEED), "train", device=profile.device)
    L = data.num_classes
    codebooks = {
        LLC_LEARNT: (run.phase1.model.head.class_codes().cpu().numpy() > 0).astype(np.uint8),
        "SVD": to_bits(build_codebook("svd", L, k, seed=seed, weights=run.baseline.model.head.fc.weight)),
        "CCA": to_bits(build_codebook("cca", L, k, seed=seed, features=train_feats["features"],
                                      labels=train_feats["labels"])),
    }
    rand = random_scores(L, k, groups, n_random, RANDOM_SEED) if rand is None else rand
    agreement = codebook_agreement(codebooks, groups, n_perm=n_perm, seed=seed, rand=rand)
    agreement.insert(0, "bits", k), agreement.insert(0, "groups", len(data.groups)), agreement.insert(0, "classes", L)
    agreement.insert(0, "dataset", name)
    agreement[BASELINE_ACC] = float((base["outputs"].argmax(1) == base["labels"]).mean())
    stats = radius = None
    if instance:
        test = llc_outputs(run.phase2, data, "test", device=profile.device)
        inst = signs_to_bits(test["bit_logits"])
        stats = {"dataset": name, **instance_code_stats(inst, test["labels"], test["class_bits"])}
        radius = radius_distribution(inst, test["labels"], test["class_bits"])
    return TaxonomyResult(name, seed, data.class_names, groups, list(data.groups), codebooks, agreement, stats, radius)


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


def plot_effect(summary: pd.DataFrame) -> list:
    """The effect size (:data:`EFFECT`) and ARI of every codebook, mean over seeds with the 95%
    interval as error bars, one figure per data set; the EFFECT_MIN line."""
    from ..plots import grouped_bars

    sets = list(dict.fromkeys(summary["dataset"]))
    figs = []
    for ds in sets:
        d = summary[summary["dataset"] == ds]
        fig = grouped_bars(d, "codebook", [EFFECT, "ARI"], "agreement with the known hierarchy",
                           f"{ds}: code tree vs known groups ({int(d['seeds'].iloc[0])} seeds, 95% interval)",
                           summary=True)
        fig.axes[0].axhline(EFFECT_MIN, color="k", ls=":", lw=1, label=f"{EFFECT} ≥ {EFFECT_MIN}: recovers groups")
        fig.axes[0].legend(fontsize=8, loc="upper right")
        figs.append(fig)
    return figs


def _effect_by_seed(df: pd.DataFrame, dataset: str, codebook: str) -> pd.Series:
    d = df[(df["dataset"] == dataset) & (df["codebook"] == codebook)]
    if d.empty:
        raise IndexError(f"table {TAXONOMY!r} has no rows of codebook {codebook!r} on {dataset}")
    return d.set_index(SEED)[EFFECT]


def taxonomy_verdict(df: pd.DataFrame, dataset: str, t: Tables | None = None):
    """The claim's verdict on one data set from the per-seed table (the one rule; :func:`claim_taxonomy`).

    Parts: ``effect size``: the 95% t-interval over seeds of the learnt codes' :data:`EFFECT` at
    or above :data:`EFFECT_MIN`; ``vs SVD`` / ``vs CCA``: the paired interval of learnt − SVD (CCA)
    EFFECT at or above −:data:`TOLERANCE`, each gated on the baseline the SVD/CCA codes come from
    (:func:`llcpkg.references.gate_baseline`, ``smallcnn/<dataset>``; ``t`` reads a longer-run reference);
    combined with :func:`llcpkg.verdicts.combine`.
    """
    llc = _effect_by_seed(df, dataset, LLC_LEARNT)
    parts = {"effect size": at_least(seed_interval(llc), EFFECT_MIN, f"the learnt code tree's {EFFECT} with the "
                                                                      "known hierarchy")}
    base = df[(df["dataset"] == dataset) & (df["codebook"] == LLC_LEARNT)].set_index(SEED)[BASELINE_ACC]
    for cb in COMPARED:
        v = at_least(paired_interval(llc, _effect_by_seed(df, dataset, cb)), -TOLERANCE,
                     f"the learnt − {cb} codes' {EFFECT}, paired by seed")
        parts[f"vs {cb}"] = gate_baseline(v, base, "smallcnn", dataset, t)
    return combine(parts)


def describe_agreement(per_seed: pd.DataFrame) -> str:
    """The readings, from the per-seed table with the claim's own rule (:func:`taxonomy_verdict`):
    the effect size of each codebook with its interval over seeds, and the verdict."""
    lines = []
    for name, d in per_seed.groupby("dataset", sort=False):
        llc = _effect_by_seed(d, name, LLC_LEARNT)
        v = taxonomy_verdict(d, name)
        lines.append(f"{name} ({len(llc)} seeds): {EFFECT} of the learnt code tree {seed_interval(llc):.3f} "
                     f"(recovers the groups if ≥ {EFFECT_MIN}); ARI {seed_interval(d.loc[d['codebook'] == LLC_LEARNT, 'ARI']):.3f}"
                     f" → {v.verdict}.")
        for cb in COMPARED:
            diff = paired_interval(llc, _effect_by_seed(d, name, cb))
            lines.append(f"  {cb} codes: {EFFECT} {seed_interval(_effect_by_seed(d, name, cb)):.3f}; learnt − {cb} "
                         f"{diff:+.3f} (as well as if ≥ {-TOLERANCE:+.2f}).")
        rnd = d[d["codebook"].str.startswith("random")]
        if len(rnd):
            lines.append(f"  random codes of the same size: {EFFECT} {rnd[EFFECT].mean():.3f}, ARI {rnd['ARI'].mean():.3f}.")
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
    seeds: tuple[int, ...] = (0,)  # the cached LLC runs (one per seed) and the permutation draws
    datasets: tuple[str, ...] = ("fashion_mnist", "omniglot")  # data sets with known class groups
    n_perm: int = 1000  # group permutations for each p-value
    n_random: int = 100  # random codebooks of the same size, the "random codes" reference (drawn once)

    @classmethod
    def for_profile(cls, profile: Profile, seeds=None, **params) -> "TaxonomyExperiment":
        """The notebook's parameters (lists become tuples) on ``profile``; ``seeds`` resolved by
        :func:`llcpkg.seeds.resolve_seeds`."""
        return cls(profile, resolve_seeds(profile, seeds),
                   **{k: tuple(v) if isinstance(v, list) else v for k, v in params.items()})


def run_all(cfg: TaxonomyExperiment) -> dict[str, dict[int, TaxonomyResult]]:
    """:func:`run_taxonomy` on every data set and seed of ``cfg``, by data set then seed; the
    instance codes on the first seed only, the random reference drawn once per data set."""
    out: dict[str, dict[int, TaxonomyResult]] = {}
    for name in cfg.datasets:
        data = load_bundle(name, cfg.profile)
        L = data.num_classes
        rand = random_scores(L, code_length(L), data.class_to_group(), cfg.n_random, RANDOM_SEED)
        out[name] = {seed: run_taxonomy(name, cfg.profile, seed=seed, n_perm=cfg.n_perm, rand=rand, instance=i == 0)
                     for i, seed in enumerate(cfg.seeds)}
    return out


def tables(results: dict[str, dict[int, TaxonomyResult]]) -> dict[str, pd.DataFrame]:
    """The notebook's tables from :func:`run_all`'s results, by file name: the per-seed agreement
    table (``seed`` first), its summary over seeds and the first seed's instance codes."""
    seeds = list(next(iter(results.values())))
    per_seed = over_seeds(lambda s: pd.concat([r[s].agreement for r in results.values()], ignore_index=True), seeds)
    summary = summary_table(per_seed, ["dataset", "codebook"], [*SCORES, BASELINE_ACC], TAXONOMY)
    first = [next(iter(r.values())) for r in results.values()]
    return {TAXONOMY: per_seed, TAXONOMY_SUMMARY: summary,
            INSTANCE_CODES: pd.DataFrame([r.instance for r in first])}


def run(cfg: TaxonomyExperiment) -> dict[str, pd.DataFrame]:
    """Every table of notebook 05, by file name."""
    return tables(run_all(cfg))


# ----------------------------------------------------------------------------- claims
def claim_taxonomy(t: Tables) -> list[dict]:
    """The learnt codes' tree recovers the known hierarchy, as well as SVD/CCA codes do
    (:func:`taxonomy_verdict`, one row per data set)."""
    df = t(TAXONOMY)
    require_columns(df, [SEED, "dataset", "codebook", EFFECT, "ARI", BASELINE_ACC], TAXONOMY)
    rows = []
    for name, d in df.groupby("dataset", sort=False):
        llc = _effect_by_seed(d, name, LLC_LEARNT)
        others = ", ".join(f"{cb} {seed_interval(_effect_by_seed(d, name, cb)):.2f}" for cb in COMPARED)
        ours = (f"{EFFECT} over {len(llc)} seeds: learnt {seed_interval(llc):.2f}; {others}; "
                f"ARI learnt {seed_interval(d.loc[d['codebook'] == LLC_LEARNT, 'ARI']):.2f}")
        rows.append(claim_row(CLAIM,
                              "ImageNet: qualitative (e.g. frogs grouped); no score", name, ours,
                              taxonomy_verdict(d, name, t)))
    return rows


CLAIMS: dict[str, Rule] = {"LLC: taxonomy from codes": claim_taxonomy}


def verdicts(tables: Tables) -> list[dict]:
    """The claims rows of notebook 05's tables (a missing table: one ``not run`` row per claim)."""
    return collect(CLAIMS, tables)
