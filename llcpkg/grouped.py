"""Grouped bits: phase 2 as k/2 four-class problems, and list decoding over the groups.

An intermediate decoder between ED and MHD (issue #17, item 7), for LLC (Kusupati et al.,
NeurIPS 2021, arXiv 2106.01487, Sec. 3.2-3.3). Phase 1's class codes B(C) are frozen as in
phase 2, but instead of k independent binary problems the bits are paired: bits (2g, 2g+1)
form group g, g = 0..G-1, G = ceil(k/2), and each group is one 4-way classification of the
bit pair, trained with cross-entropy against the true class's pair value.

Head maths (:class:`GroupedHead`)
---------------------------------
One linear projector Q (d -> 2k) on the features F(x); its outputs reshaped to
(B, G, 4) are the group logits u_g(v), v = 0..3 (``group_logits``). For odd k the last group
holds the single bit k-1: it is a 2-class problem, gets the last 2 outputs (so Q still has
exactly 2k outputs) and its logits for v = 2, 3 are -inf (log-probability -inf, never
enumerated). :meth:`GroupedHead.from_llc` warm-starts Q from an LLC head's projector P with
u_g(v) = (s_a z_a + s_b z_b) / 2, z = P F(x), s = +-1 the signs of v's two bits: then the
4-way softmax factorises into the two independent sigmoids of phase 2 exactly, its argmax
code is the sign code and ``bit_logits`` equals z.

Conventions (as :mod:`llcpkg.decode`)
-------------------------------------
* Bits are {0, 1}, 1 = sign +1. The pair value of group g is v_g = bit_{2g} + 2 * bit_{2g+1}
  (odd k: v_{G-1} = bit_{k-1}). A code's integer is sum_j bit_j 2^j = sum_g v_g 4^g, the value
  of its little-endian packing (:func:`llcpkg.decode.pack_bits`).
* ``bit_logits`` are the marginal log-odds of each bit under the group softmax,
  log P(bit = 1) - log P(bit = 0); their signs need not equal the argmax code (they do for
  a head warm-started by ``from_llc`` before training).

Score and tie policy of the enumeration
---------------------------------------
A code's score is sum_g log_softmax(u_g)(v_g), summed in fixed point: each log-probability
is clipped to [-2^20, 0] and rounded to a multiple of 2^-30 (int64, :func:`quantised_log_probs`),
so sums are exact and order-independent; codes whose scores differ by less than that are
ties. Codes are visited by decreasing score; equal scores -> the smaller code integer first.
This is a total order on all 2^k codes; :func:`iter_codes` (a heap, one query) and
:func:`top_codes` (vectorised, exact top-m by merging groups) both produce it exactly.

Decoding: look the visited codes up in the class-code hash table
(:class:`llcpkg.decode.CodeTable`) and stop at the first hit (its lowest class index, as ED)
or after ``max_lookups`` codes (-> -1, unassigned). m = 1 is ED on the argmax code; m = 2^k
always hits: the class whose code has the highest score.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from .data import check_labels
from .decode import CodeTable, PackedCodes, _as_bits, _to_numpy

__all__ = ["n_groups", "pair_values", "values_to_bits", "pair_targets", "GroupedHead", "grouped_loss",
           "quantised_log_probs", "iter_codes", "top_codes", "GroupedResult", "grouped_decode", "default_sizes",
           "grouped_curve", "SCORE_SCALE", "LOG_PROB_FLOOR"]

SCORE_SCALE = 2.0 ** 30  # fixed-point resolution of log-probabilities: 2^-30
LOG_PROB_FLOOR = -2.0 ** 20  # log-probabilities below this count as this (keeps sums in int64)
_BLOCK = 1 << 18  # enumerated codes (queries x m) held at once by grouped_decode
_IMPOSSIBLE = np.iinfo(np.int64).min  # fixed-point log-probability of an impossible value


# ------------------------------------------------------------------ bits <-> pair values
def n_groups(k: int) -> int:
    """Number of groups G = ceil(k/2) for k bits."""
    return -(-k // 2)


def pair_values(bits):
    """(n, k) {0,1} bits (numpy or torch) -> (n, G) pair values v_g = bit_2g + 2 bit_2g+1 in {0..3}.

    Odd k: the last group is the single bit k-1 (value 0 or 1).
    """
    if isinstance(bits, torch.Tensor):
        b = bits.long()
        if b.shape[1] % 2:
            b = torch.cat([b, b.new_zeros(b.shape[0], 1)], dim=1)
    else:
        b = _as_bits(bits).astype(np.int64)
        if b.shape[1] % 2:
            b = np.concatenate([b, np.zeros((len(b), 1), np.int64)], axis=1)
    return b[:, 0::2] + 2 * b[:, 1::2]


def values_to_bits(values: np.ndarray, k: int) -> np.ndarray:
    """Inverse of :func:`pair_values`: (..., G) values in {0..3} -> (..., k) uint8 bits."""
    v = np.asarray(values, np.int64)
    if v.shape[-1] != n_groups(k):
        raise ValueError(f"k = {k} bits need {n_groups(k)} groups; got {v.shape[-1]}")
    bits = np.stack([v & 1, v >> 1], axis=-1).reshape(*v.shape[:-1], 2 * v.shape[-1])
    return bits[..., :k].astype(np.uint8)


def pair_targets(class_bits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Group targets of labels y (B,) under class codes (L, k) {0,1} -> (B, G) int64 in {0..3}."""
    check_labels(y, class_bits.shape[0])
    return pair_values(class_bits)[y]


# ------------------------------------------------------------------ head and loss
class GroupedHead(nn.Module):
    """Frozen class codes (L, k) {0,1} and a group projector Q (d -> 2k); see the module docstring.

    ``group_logits``: (B, d) -> (B, G, 4), -inf at the impossible values of an odd k's last group.
    ``bit_logits``: (B, d) -> (B, k) marginal log-odds of the bits.
    ``forward``/``class_scores``: (B, d) -> (B, L) total log-probability of each class's code
    (argmax = the class decoding with m = 2^k finds, up to ties).
    """

    def __init__(self, dim: int, class_bits):
        super().__init__()
        bits = torch.as_tensor(_as_bits(class_bits, "class_bits"), dtype=torch.long)
        if bits.shape[0] < 2:
            raise ValueError(f"need at least 2 classes, got {bits.shape[0]}")
        self.register_buffer("class_bits", bits)  # (L, k)
        self.register_buffer("class_values", pair_values(bits))  # (L, G)
        self.projector = nn.Linear(dim, 2 * bits.shape[1])

    @classmethod
    def from_llc(cls, head: nn.Module) -> "GroupedHead":
        """A head with the LLC head's class codes whose softmax equals its k independent sigmoids."""
        codes = head.class_codes()  # (L, k) +-1
        p = head.projector
        out = cls(p.in_features, (codes > 0).long()).to(p.weight.device)
        k, G = out.bits, out.groups
        signs = p.weight.new_tensor([[-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0], [1.0, 1.0]])  # (4 values, 2 bits)
        pad = p.weight.new_zeros(2 * G - k, p.in_features)  # odd k: a zero bit k, so the last group's values 0, 1
        # get logits -z/2, +z/2 (a sigmoid) and its values 2, 3 (dropped below) are never used
        w = torch.cat([p.weight.detach(), pad]).reshape(G, 2, -1)  # (G, 2 bits, d)
        b = torch.cat([p.bias.detach(), pad[:, 0]]).reshape(G, 2)
        with torch.no_grad():
            wq = torch.einsum("vc,gcd->gvd", signs, w) / 2  # (G, 4, d)
            bq = torch.einsum("vc,gc->gv", signs, b) / 2  # (G, 4)
            out.projector.weight.copy_(wq.reshape(4 * G, -1)[: 2 * k])
            out.projector.bias.copy_(bq.reshape(4 * G)[: 2 * k])
        return out

    @property
    def bits(self) -> int:
        return self.class_bits.shape[1]

    @property
    def groups(self) -> int:
        return n_groups(self.bits)

    def class_codes(self) -> torch.Tensor:
        """B(C): (L, k) in {-1, +1}, as :meth:`llcpkg.models.LLCHead.class_codes`."""
        return self.class_bits.float() * 2 - 1

    def group_logits(self, feats: torch.Tensor) -> torch.Tensor:
        q = self.projector(feats)  # (B, 2k)
        k, G = self.bits, self.groups
        if k % 2 == 0:
            return q.reshape(-1, G, 4)
        last = torch.cat([q[:, -2:], torch.full_like(q[:, -2:], -torch.inf)], dim=1)  # (B, 4)
        return torch.cat([q[:, :-2].reshape(-1, G - 1, 4), last[:, None]], dim=1)

    def bit_logits(self, feats: torch.Tensor) -> torch.Tensor:
        lp = F.log_softmax(self.group_logits(feats), dim=-1)  # (B, G, 4); values 0..3 = (b0, b1) 00, 10, 01, 11
        low = torch.logsumexp(lp[..., [1, 3]], -1) - torch.logsumexp(lp[..., [0, 2]], -1)  # (B, G) bit 2g
        h = self.bits // 2  # groups with a bit 2g+1 (an odd k's last has none: no all -inf logsumexp)
        high = torch.logsumexp(lp[:, :h, [2, 3]], -1) - torch.logsumexp(lp[:, :h, [0, 1]], -1)  # (B, h)
        pairs = torch.stack([low[:, :h], high], dim=-1).reshape(len(feats), 2 * h)
        return torch.cat([pairs, low[:, h:]], dim=1)  # (B, k)

    def class_scores(self, feats: torch.Tensor) -> torch.Tensor:
        lp = F.log_softmax(self.group_logits(feats), dim=-1)  # (B, G, 4)
        idx = self.class_values.t()[None].expand(len(feats), -1, -1)  # (B, G, L)
        return lp.gather(2, idx).sum(dim=1)  # (B, L)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.class_scores(feats)


def grouped_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg=None) -> torch.Tensor:
    """Grouped phase 2: mean over the batch and the G groups of CE(softmax(u_g), v_g(B(C)_y)).

    ``model.head`` must have ``group_logits`` and ``class_bits`` (a :class:`GroupedHead`);
    ``cfg`` is unused (no label smoothing, as for the k binary problems of ``bit_loss``:
    smoothing would put mass on the -inf values of an odd k's last group).
    """
    head = model.head
    u = head.group_logits(model.features(x))  # (B, G, 4)
    t = pair_targets(head.class_bits, y)  # (B, G)
    return F.cross_entropy(u.reshape(-1, 4), t.reshape(-1))


# ------------------------------------------------------------------ enumeration
def quantised_log_probs(group_logits) -> np.ndarray:
    """(n, G, 4) group logits (numpy or torch) -> (n, G, 4) int64 fixed-point log-softmax.

    round(clip(log_softmax, LOG_PROB_FLOOR, 0) * SCORE_SCALE); -inf logits (impossible values)
    stay impossible: they become int64 min.
    """
    u = _to_numpy(group_logits).astype(np.float64)
    if u.ndim != 3 or u.shape[2] != 4:
        raise ValueError(f"group_logits must have shape (n, G, 4); got {u.shape}")
    if np.isnan(u).any() or np.isposinf(u).any() or np.isneginf(u).all(axis=2).any():
        raise ValueError("group_logits must be finite (-inf only for impossible values)")
    top = u.max(axis=2, keepdims=True)
    lp = u - top - np.log(np.exp(u - top).sum(axis=2, keepdims=True))
    q = np.rint(np.clip(lp, LOG_PROB_FLOOR, 0.0) * SCORE_SCALE).astype(np.int64)
    return np.where(np.isneginf(u), _IMPOSSIBLE, q)


def iter_codes(log_probs: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """Best-first enumeration of all codes of ONE query: yields (score, values (G,)) in the order
    of the module docstring. ``log_probs``: (G, 4) from :func:`quantised_log_probs`.

    A heap over rank vectors r (r_g = rank of group g's value): the root is all-best; the
    children of r increment one rank r_j, j >= the last non-zero position of r, which makes a
    spanning tree along whose edges (-score, code integer) strictly increases.
    """
    q = np.asarray(log_probs, np.int64)
    G = len(q)
    order = np.argsort(-q.astype(np.float64), axis=-1, kind="stable")  # best value first, ties -> smaller
    count = (q > _IMPOSSIBLE).sum(axis=-1)
    qs = [[int(q[g, order[g, i]]) for i in range(count[g])] for g in range(G)]
    weight = [4 ** g for g in range(G)]

    def entry(r: tuple) -> tuple:
        vals = [int(order[g, r[g]]) for g in range(G)]
        return (-sum(qs[g][r[g]] for g in range(G)), sum(v * w for v, w in zip(vals, weight)), r, vals)

    heap = [entry((0,) * G)]
    while heap:
        neg, _, r, vals = heapq.heappop(heap)
        yield -neg, np.array(vals, np.int64)
        last = max((g for g in range(G) if r[g]), default=0)
        for j in range(last, G):
            if r[j] + 1 < count[j]:
                heapq.heappush(heap, entry(r[:j] + (r[j] + 1,) + r[j + 1:]))


def top_codes(log_probs: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact top-m codes of each query, in the order of the module docstring.

    (n, G, 4) fixed-point log-probs -> scores (n, M) int64, values (n, M, G) int64 and
    valid (n, M) bool (False past a query's last possible code), M = min(m, number of codes).
    Groups are merged one at a time, keeping the best m partial codes: candidates (prefix i,
    value v of the new group) sort by (-score, v, i), the global tie rule, since the new
    group is the most significant and the prefixes are already in order.
    """
    q = np.asarray(log_probs, np.int64)
    n, G, _ = q.shape
    if m < 1:
        raise ValueError(f"m must be >= 1; got {m}")
    possible = q > _IMPOSSIBLE  # (n, G, 4)
    score = np.zeros((n, 1), np.int64)
    valid = np.ones((n, 1), bool)
    vals = np.zeros((n, 1, 0), np.int64)
    for g in range(G):
        p = score.shape[1]
        ok = valid[:, :, None] & possible[:, None, g]  # (n, p, 4)
        cand = np.where(ok, score[:, :, None] + np.where(possible[:, g], q[:, g], 0)[:, None], 0).reshape(n, -1)
        v_key = np.broadcast_to(np.arange(4), (n, p, 4)).reshape(n, -1)  # candidate i * 4 + v
        i_key = np.broadcast_to(np.arange(p)[:, None], (n, p, 4)).reshape(n, -1)
        sel = np.lexsort((i_key, v_key, -cand, ~ok.reshape(n, -1)), axis=-1)[:, :m]
        pi, pv = np.take_along_axis(i_key, sel, 1), np.take_along_axis(v_key, sel, 1)
        score = np.take_along_axis(cand, sel, 1)
        valid = np.take_along_axis(ok.reshape(n, -1), sel, 1)
        vals = np.concatenate([np.take_along_axis(vals, pi[..., None], 1), pv[..., None]], axis=2)
    M = int(valid.any(axis=0).sum())  # impossible candidates sort last: drop all-impossible columns
    return score[:, :M], vals[:, :M], valid[:, :M]


# ------------------------------------------------------------------ decoding
@dataclass
class GroupedResult:
    """List decoding of n queries over the top ``max_lookups`` codes."""

    pred: np.ndarray  # (n,) int64 class of the first code found in the table, -1 = unassigned
    lookups: np.ndarray  # (n,) int64 codes looked up (stopping at the first hit)
    rank: np.ndarray  # (n,) int64 0-based position of the hit in the enumeration, -1 if none


def _check_groups(q: np.ndarray, k: int) -> None:
    if q.shape[1] != n_groups(k):
        raise ValueError(f"k = {k} bits need {n_groups(k)} groups; group_logits have {q.shape[1]}")
    if k % 2 and (q[:, -1, 2:] > _IMPOSSIBLE).any():
        raise ValueError(f"odd k = {k}: the last group holds one bit, so its values 2, 3 must be -inf")


def grouped_decode(group_logits, class_bits, max_lookups: int, block: int = _BLOCK) -> GroupedResult:
    """Visit each query's codes best-first and return the first one that is a class code.

    group_logits (n, G, 4) (numpy or torch; -inf = impossible value), class codes (L, k)
    {0,1} or a :class:`llcpkg.decode.CodeTable`; at most ``max_lookups`` lookups per query.
    Duplicate class codes -> the lowest class index (as ED). Queries go in blocks of about
    ``block`` enumerated codes.
    """
    table = class_bits if isinstance(class_bits, CodeTable) else CodeTable(class_bits)
    q = quantised_log_probs(group_logits)
    _check_groups(q, table.k)
    if max_lookups < 1:
        raise ValueError(f"max_lookups must be >= 1; got {max_lookups}")
    n = len(q)
    pred = np.full(n, -1, np.int64)
    rank = np.full(n, -1, np.int64)
    lookups = np.zeros(n, np.int64)
    step = max(1, block // min(max_lookups, 4 ** q.shape[1]))
    for s in range(0, n, step):
        _, vals, valid = top_codes(q[s:s + step], max_lookups)  # (b, M, G), (b, M)
        b, M, _ = vals.shape
        words = PackedCodes.from_bits(values_to_bits(vals, table.k).reshape(b * M, -1)).words
        ids = np.where(valid, table.lookup_ids(words).reshape(b, M), -1)
        hit = (ids >= 0).any(axis=1)
        first = (ids >= 0).argmax(axis=1)
        pred[s:s + b] = np.where(hit, table.owner[np.maximum(ids[np.arange(b), first], 0)], -1)
        rank[s:s + b] = np.where(hit, first, -1)
        lookups[s:s + b] = np.where(hit, first + 1, valid.sum(axis=1))
    return GroupedResult(pred, lookups, rank)


def default_sizes(k: int, largest: int = 4096) -> list[int]:
    """m = 1, 2, 4, ... up to min(2^k, largest)."""
    return [2 ** i for i in range(min(k, int(np.log2(largest))) + 1)]


def grouped_curve(group_logits, class_bits, labels, sizes: Sequence[int] | None = None) -> pd.DataFrame:
    """Accuracy, unassigned rate and lookups of list decoding vs the list size m.

    One row per m in ``sizes`` (default :func:`default_sizes`), with the columns of
    :func:`llcpkg.ablations.ball_table` (decoder ``list-m``; ``lookups per query`` is the mean
    over queries, each stopping at its first hit; ``max lookups`` = m), so the two concatenate
    into one accuracy-vs-lookups table. Decodes once with the largest m: the top-m list is a
    prefix of the top-M one.
    """
    codes = _as_bits(class_bits, "class_bits")
    y = _to_numpy(labels).astype(np.int64)
    check_labels(y, len(codes), "evaluation labels")
    k = codes.shape[1]
    sizes = default_sizes(k) if sizes is None else sorted(int(m) for m in sizes)
    res = grouped_decode(group_logits, codes, max(sizes))
    rows = []
    for m in sizes:
        found = (res.rank >= 0) & (res.rank < m)
        pred = np.where(found, res.pred, -1)
        rows.append({"bits": k, "classes": len(codes), "decoder": f"list-{m}", "m": m,
                     "accuracy": float((pred == y).mean()), "unassigned": float((pred < 0).mean()),
                     "lookups per query": float(np.minimum(res.lookups, m).mean()), "max lookups": m})
    return pd.DataFrame(rows)
