"""Hierarchy scores of class codes (LLC, §4.5): a code tree measured against a known
hierarchy (the experiment that shows and measures it: :mod:`llcpkg.experiments.taxonomy`).

Kusupati et al. (NeurIPS 2021) cluster LLC's class codes agglomeratively and show that the
tree groups semantically related classes. Here the tree is also *scored* against a known
two-level hierarchy (class → group: Omniglot's alphabets, Fashion-MNIST's natural groups in
``llcpkg.data.FASHION_MNIST_GROUPS``):

* ``within`` / ``across``: mean Hamming distance between the codes of two classes of the
  same group / of different groups (pairs of distinct classes), and ``gap = across − within``;
* ``spearman tree``: Spearman correlation between the code tree's cophenetic distance and
  the known hierarchy's distance (1 for two classes of one group, 2 otherwise: path length
  in the two-level tree, halved); ``spearman codes``: the same with the raw Hamming distance;
* ``ARI``: adjusted Rand index between the groups and the code tree cut into as many
  clusters as there are groups (``fcluster(..., "maxclust")``).

Significance (:func:`agreement_pvalues`): a permutation test that shuffles which class
belongs to which group (group sizes kept), equivalent to shuffling the codes among the
classes; p = (1 + #{permuted ≥ observed}) / (1 + n_perm), one-sided (more agreement). The
tree (average linkage on Hamming distances in bits by default) is built by scipy; Hamming
distances between k-bit codes tie often, and scipy then merges in index order, so the tree
is one of several equally good ones.

Instance codes (:func:`instance_code_stats`): how many distinct codes occur, bit balance,
pairwise bit correlation and the Hamming radius of each instance from its class code.
Codes are {0, 1} arrays (L, k) / (N, k), bit 1 = sign +1 (``llcpkg.decode`` conventions).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.cluster.hierarchy import cophenet, fcluster, linkage
from scipy.spatial.distance import squareform
from scipy.stats import rankdata
from sklearn.metrics import adjusted_rand_score

from .codebooks import build_codebook, to_bits
from .decode import hamming_distances

__all__ = ["code_tree", "hierarchy_distance", "agreement_scores", "agreement_pvalues", "random_scores", "codebook_agreement",
           "instance_code_stats", "radius_distribution", "SCORES", "TESTED"]

SCORES = ("within", "across", "gap", "spearman tree", "spearman codes", "ARI")
TESTED = ("gap", "spearman tree", "spearman codes", "ARI")  # scores with a permutation p-value


def _condensed_hamming(codes: np.ndarray) -> np.ndarray:
    """Pairwise Hamming distances (bits) of codes (L, k) in scipy's condensed order (L(L−1)/2,)."""
    d = hamming_distances(codes, codes).astype(np.float64)
    return squareform(d, checks=False)


def code_tree(codes: np.ndarray, method: str = "average") -> np.ndarray:
    """Agglomerative clustering of class codes (L, k) {0, 1} on Hamming distance (bits):
    scipy linkage matrix (L − 1, 4)."""
    return linkage(_condensed_hamming(codes), method=method)


def hierarchy_distance(groups: np.ndarray) -> np.ndarray:
    """Condensed (L(L−1)/2,) distance in a two-level hierarchy: 1 for classes of one group, 2 otherwise."""
    g = np.asarray(groups)
    return squareform(np.where(g[:, None] == g[None, :], 1.0, 2.0), checks=False)


def _spearman_two_valued(x_ranks: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rho of x (given as its ranks) and a y taking at most two values: the Pearson
    correlation of rank(x) with y itself, since rank(y) is an increasing affine map of such a
    y. Equals ``scipy.stats.spearmanr(x, y)`` (tested) and is fast inside permutation loops."""
    if np.ptp(y) == 0:
        return np.nan
    return float(np.corrcoef(x_ranks, y)[0, 1])


def _scores(hd: np.ndarray, hd_ranks: np.ndarray, coph_ranks: np.ndarray, clusters: np.ndarray,
            groups: np.ndarray) -> dict[str, float]:
    known = hierarchy_distance(groups)
    same = known == 1
    within = float(hd[same].mean()) if same.any() else np.nan
    across = float(hd[~same].mean()) if (~same).any() else np.nan
    return {"within": within, "across": across, "gap": across - within,
            "spearman tree": _spearman_two_valued(coph_ranks, known),
            "spearman codes": _spearman_two_valued(hd_ranks, known),
            "ARI": float(adjusted_rand_score(groups, clusters))}


def _tree_parts(codes: np.ndarray, n_groups: int, method: str):
    """What the scores need from the codes alone (unchanged when groups are permuted)."""
    hd = _condensed_hamming(codes)
    z = linkage(hd, method=method)
    return hd, rankdata(hd), rankdata(cophenet(z)), fcluster(z, n_groups, criterion="maxclust")


def agreement_scores(codes: np.ndarray, groups: np.ndarray, method: str = "average") -> dict[str, float]:
    """Scores of the module docstring for class codes (L, k) {0, 1} and group labels (L,)."""
    groups = np.asarray(groups)
    return _scores(*_tree_parts(codes, len(np.unique(groups)), method), groups)


def agreement_pvalues(codes: np.ndarray, groups: np.ndarray, n_perm: int = 1000, seed: int = 0,
                      method: str = "average") -> dict[str, float]:
    """Permutation p-values of the ``TESTED`` scores: groups shuffled among classes ``n_perm`` times."""
    groups = np.asarray(groups)
    parts = _tree_parts(codes, len(np.unique(groups)), method)  # the tree does not change
    obs = _scores(*parts, groups)
    rng = np.random.default_rng(seed)
    hits = dict.fromkeys(TESTED, 0)
    for _ in range(n_perm):
        s = _scores(*parts, rng.permutation(groups))
        for key in TESTED:
            hits[key] += s[key] >= obs[key] - 1e-12
    return {f"p {key}": (1 + hits[key]) / (1 + n_perm) for key in TESTED}


def random_scores(L: int, k: int, groups: np.ndarray, n_random: int = 100, seed: int = 0,
                  method: str = "average") -> pd.DataFrame:
    """:func:`agreement_scores` of ``n_random`` random (L, k) codebooks
    (``build_codebook("random", seed=seed + 1 + i)``), one row each: the no-structure reference."""
    groups = np.asarray(groups)
    return pd.DataFrame([agreement_scores(to_bits(build_codebook("random", L, k, seed=seed + 1 + i)), groups, method)
                         for i in range(n_random)])


def codebook_agreement(codebooks: dict[str, np.ndarray], groups: np.ndarray, n_perm: int = 1000,
                       n_random: int = 100, seed: int = 0, method: str = "average",
                       rand: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per codebook ({0, 1} or ±1, (L, k)) plus a ``random (mean of n)`` row averaging
    ``n_random`` random codebooks of the same (L, k) (:func:`random_scores` with ``seed``; or
    ``rand``, its result computed once and shared, e.g. by the runs of several seeds).

    Columns: codebook, the ``SCORES``, ``p <score>`` (permutation p-value of each ``TESTED``
    score) and ``p ARI vs random`` / ``p spearman tree vs random``: (1 + number of random
    codebooks scoring at least as high) / (1 + n_random), a p-value against random codes.
    """
    groups = np.asarray(groups)
    bits = {n: (to_bits(c) if np.asarray(c).min() < 0 else np.asarray(c, np.uint8)) for n, c in codebooks.items()}
    L, k = next(iter(bits.values())).shape
    rand = random_scores(L, k, groups, n_random, seed, method) if rand is None else rand
    rows = []
    for name, c in bits.items():
        s = agreement_scores(c, groups, method)
        row = {"codebook": name, **s, **agreement_pvalues(c, groups, n_perm, seed, method)}
        for key in ("ARI", "spearman tree"):
            row[f"p {key} vs random"] = (1 + int((rand[key] >= s[key] - 1e-12).sum())) / (1 + len(rand))
        rows.append(row)
    rows.append({"codebook": f"random (mean of {len(rand)})", **rand.mean().to_dict()})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- instance codes
def instance_code_stats(inst: np.ndarray, labels: np.ndarray, class_codes: np.ndarray) -> dict[str, float]:
    """Instance codes (N, k) {0, 1} with their true labels (N,) against class codes (L, k).

    distinct instance codes and the number expected if N codes were uniform on {0,1}^k;
    share of instances exactly on their class's code / on any class code; bit balance
    (mean and max over bits of |share of ones − 1/2|); pairwise bit correlation (mean and
    max |Pearson r| over the k(k−1)/2 pairs of bits; constant bits count as 0); Hamming
    radius from the own class's code (mean, median, share at radius ≥ 3).
    """
    inst = np.asarray(inst, np.uint8)
    n, k = inst.shape
    radius = np.asarray(hamming_distances(inst, class_codes), np.int64)[np.arange(n), labels]
    on_any = hamming_distances(inst, class_codes).min(axis=1) == 0
    p = inst.mean(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.nan_to_num(np.corrcoef(inst.T.astype(np.float64)), nan=0.0)
    off = np.abs(corr[np.triu_indices(k, 1)]) if k > 1 else np.zeros(1)
    return {"instances": n, "bits": k, "distinct instance codes": int(len(np.unique(inst, axis=0))),
            "distinct if uniform": float(2.0**k * -np.expm1(n * np.log1p(-(2.0**-k)))),
            "on own class code": float((radius == 0).mean()), "on any class code": float(on_any.mean()),
            "bit balance mean": float(np.abs(p - 0.5).mean()), "bit balance max": float(np.abs(p - 0.5).max()),
            "bit |corr| mean": float(off.mean()), "bit |corr| max": float(off.max()),
            "radius mean": float(radius.mean()), "radius median": float(np.median(radius)),
            "radius >= 3": float((radius >= 3).mean())}


def radius_distribution(inst: np.ndarray, labels: np.ndarray, class_codes: np.ndarray) -> np.ndarray:
    """Share of instances at each Hamming radius 0..k from their own class's code: (k + 1,)."""
    k = np.asarray(inst).shape[1]
    radius = np.asarray(hamming_distances(inst, class_codes), np.int64)[np.arange(len(labels)), labels]
    return np.bincount(radius, minlength=k + 1) / max(len(radius), 1)
