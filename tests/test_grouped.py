"""Grouped bits (llcpkg.grouped): pair values, head maths, loss, enumeration and list decoding
against brute force over all 2^k codes (ties included), and a tiny end-to-end training."""
import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from llcpkg.decode import ed_decode
from llcpkg.grouped import (
    GroupedHead, grouped_curve, grouped_decode, grouped_loss, iter_codes, n_groups, pair_targets, pair_values,
    quantised_log_probs, top_codes, values_to_bits,
)
from llcpkg.models import Classifier, LLCHead
from llcpkg.train import TrainConfig, fit


# ------------------------------------------------------------------ brute-force references
def all_codes(k: int) -> tuple[np.ndarray, np.ndarray]:
    """Every k-bit code: integers (2^k,) and bits (2^k, k), bit j = (integer >> j) & 1."""
    ints = np.arange(2 ** k)
    return ints, ((ints[:, None] >> np.arange(k)) & 1).astype(np.uint8)


def code_scores(q: np.ndarray, bits: np.ndarray) -> np.ndarray:
    """Fixed-point score of each code for each query: (n, G, 4) x (c, k) -> (n, c) int64."""
    v = pair_values(bits)  # (c, G)
    return q[:, np.arange(v.shape[1])[None, :], v].sum(axis=2)


def brute_order(q_row: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """All codes of one query sorted by decreasing score, ties -> smaller integer: (scores, values)."""
    ints, bits = all_codes(k)
    s = code_scores(q_row[None], bits)[0]
    order = np.lexsort((ints, -s))
    return s[order], pair_values(bits)[order]


def random_logits(rng, n: int, k: int, kind: str) -> np.ndarray:
    """(n, G, 4) logits: normal, or small integers (many exact ties); odd k -> last group's 2, 3 = -inf."""
    G = n_groups(k)
    u = rng.normal(size=(n, G, 4)) if kind == "normal" else rng.integers(0, 2, (n, G, 4)).astype(float)
    if k % 2:
        u[:, -1, 2:] = -np.inf
    return u


def codes_of_classes(rng, L: int, k: int, duplicate: bool = True) -> np.ndarray:
    cb = rng.integers(0, 2, (L, k), dtype=np.uint8)
    if duplicate:
        cb[-1] = cb[0]  # the lowest index owns a shared code
    return cb


# ------------------------------------------------------------------ pair values
def test_pair_values_hand_made():
    bits = np.array([[1, 0, 0, 1, 1], [1, 1, 0, 0, 0], [0, 0, 1, 1, 0]], np.uint8)  # k = 5: groups (0,1) (2,3) (4)
    np.testing.assert_array_equal(pair_values(bits), [[1, 2, 1], [3, 0, 0], [0, 3, 0]])
    t = pair_targets(torch.as_tensor(bits), torch.tensor([2, 0, 0, 1]))
    assert t.dtype == torch.int64
    np.testing.assert_array_equal(t.numpy(), [[0, 3, 0], [1, 2, 1], [1, 2, 1], [3, 0, 0]])


@pytest.mark.parametrize("k", [1, 2, 5, 8])
def test_values_to_bits_inverts_pair_values(k):
    _, bits = all_codes(k)
    np.testing.assert_array_equal(values_to_bits(pair_values(bits), k), bits)


def test_pair_targets_rejects_bad_labels():
    with pytest.raises(ValueError):
        pair_targets(torch.zeros(3, 4, dtype=torch.long), torch.tensor([0, 3]))


# ------------------------------------------------------------------ enumeration vs brute force
@pytest.mark.parametrize("kind", ["normal", "ties"])
@pytest.mark.parametrize("k", [2, 4, 6, 7])
def test_enumeration_equals_brute_force_sort(k, kind):
    rng = np.random.default_rng(k)
    q = quantised_log_probs(random_logits(rng, 6, k, kind))
    for m in (1, 3, 2 ** k, 2 ** k + 5):
        scores, values, valid = top_codes(q, m)
        assert values.shape == (6, min(m, 2 ** k), n_groups(k)) and valid.all()
        for i in range(len(q)):
            s, v = brute_order(q[i], k)
            np.testing.assert_array_equal(values[i], v[:m])
            np.testing.assert_array_equal(scores[i], s[:m])
    for i in range(len(q)):
        s, v = brute_order(q[i], k)
        heap = list(iter_codes(q[i]))
        np.testing.assert_array_equal([sc for sc, _ in heap], s)
        np.testing.assert_array_equal(np.stack([vals for _, vals in heap]), v)


def test_ties_break_to_the_smaller_code():
    # two groups, every value equally likely: all 16 codes tie, so the order is 0, 1, ..., 15
    q = quantised_log_probs(np.zeros((1, 2, 4)))
    _, values, _ = top_codes(q, 16)
    ints = values[0] @ np.array([1, 4])
    np.testing.assert_array_equal(ints, np.arange(16))


# ------------------------------------------------------------------ decoding
def test_one_lookup_is_ed_on_the_argmax_code():
    rng = np.random.default_rng(1)
    k, u = 6, rng.normal(size=(40, 3, 4))
    cb = codes_of_classes(rng, 12, k)
    v = u.argmax(axis=2)  # (n, G)
    argmax_bits = np.stack([v % 2, v // 2], axis=2).reshape(40, k).astype(np.uint8)
    cb[:5] = argmax_bits[:5]  # make some queries hit
    res = grouped_decode(u, cb, max_lookups=1)
    np.testing.assert_array_equal(res.pred, ed_decode(argmax_bits, cb))
    np.testing.assert_array_equal(res.lookups, np.ones(40))
    assert (res.pred >= 0).sum() >= 5


@pytest.mark.parametrize("kind", ["normal", "ties"])
@pytest.mark.parametrize("k", [4, 7])
def test_all_codes_decode_to_the_best_scoring_class(k, kind):
    rng = np.random.default_rng(10 + k)
    u, cb = random_logits(rng, 30, k, kind), codes_of_classes(rng, 5, k)
    q = quantised_log_probs(u)
    s = code_scores(q, cb)  # (n, L)
    ints = cb.astype(np.int64) @ (1 << np.arange(k))
    expect = np.array([np.lexsort((np.arange(5), ints, -row))[0] for row in s])  # score, code, class index
    res = grouped_decode(u, cb, max_lookups=2 ** k)
    np.testing.assert_array_equal(res.pred, expect)
    assert (res.pred >= 0).all()


@pytest.mark.parametrize("k", [5, 6])
def test_first_hit_rank_and_lookups_equal_brute_force(k):
    rng = np.random.default_rng(20 + k)
    u, cb = random_logits(rng, 50, k, "ties"), codes_of_classes(rng, 3, k)
    q = quantised_log_probs(u)
    m = 9
    res = grouped_decode(u, cb, max_lookups=m, block=64)  # several query blocks
    for i in range(len(u)):
        _, v = brute_order(q[i], k)
        hits = [r for r, vals in enumerate(v[:m]) if (pair_values(cb) == vals).all(axis=1).any()]
        if hits:
            r = hits[0]
            cls = np.flatnonzero((pair_values(cb) == v[r]).all(axis=1))[0]
            assert (res.rank[i], res.lookups[i], res.pred[i]) == (r, r + 1, cls)
        else:
            assert (res.rank[i], res.lookups[i], res.pred[i]) == (-1, m, -1)


def test_curve_rows_equal_separate_decodes():
    rng = np.random.default_rng(3)
    k, u = 6, random_logits(rng, 80, 6, "normal")
    cb = codes_of_classes(rng, 8, k, duplicate=False)
    y = rng.integers(0, 8, 80)
    df = grouped_curve(u, cb, y, sizes=[1, 4, 64, 2])
    assert list(df["m"]) == [1, 2, 4, 64]
    for row in df.itertuples():
        r = grouped_decode(u, cb, row.m)
        assert row.accuracy == pytest.approx((r.pred == y).mean())
        assert row.unassigned == pytest.approx((r.pred < 0).mean())
        assert getattr(row, "_7") == pytest.approx(r.lookups.mean())  # "lookups per query"
    assert df["unassigned"].iloc[-1] == 0.0


def test_decode_rejects_inconsistent_groups():
    cb = np.zeros((2, 5), np.uint8)
    with pytest.raises(ValueError, match="groups"):
        grouped_decode(np.zeros((1, 2, 4)), cb, 4)
    with pytest.raises(ValueError, match="odd k"):
        grouped_decode(np.zeros((1, 3, 4)), cb, 4)  # the last group's values 2, 3 must be -inf


# ------------------------------------------------------------------ head and loss
def test_loss_equals_hand_computation():
    torch.manual_seed(0)
    cb = torch.tensor([[0, 1, 1], [1, 0, 0], [1, 1, 0]])  # k = 3: group 0 = bits (0, 1), group 1 = bit 2 alone
    head = GroupedHead(2, cb)
    w = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.5], [0.5, -2.0], [0.0, 0.0]])
    b = torch.tensor([0.1, -0.2, 0.0, 0.3, 0.0, 0.4])
    with torch.no_grad():
        head.projector.weight.copy_(w)
        head.projector.bias.copy_(b)
    model = Classifier(nn.Identity(), head)
    x, y = torch.tensor([[1.0, 2.0], [-0.5, 0.0]]), torch.tensor([0, 2])
    terms = []
    for xi, yi in zip(x.tolist(), y.tolist()):
        out = [sum(w[j, c].item() * xi[c] for c in range(2)) + b[j].item() for j in range(6)]
        g0, g1 = out[:4], out[4:]
        bits = cb[yi].tolist()
        t0, t1 = bits[0] + 2 * bits[1], bits[2]
        terms.append(math.log(sum(math.exp(a) for a in g0)) - g0[t0])
        terms.append(math.log(sum(math.exp(a) for a in g1)) - g1[t1])
    assert grouped_loss(model, x, y, None).item() == pytest.approx(sum(terms) / 4, rel=1e-6)


@pytest.mark.parametrize("k", [6, 7])
def test_from_llc_equals_independent_bits(k):
    torch.manual_seed(k)
    llc = LLCHead(5, 9, k)
    head = GroupedHead.from_llc(llc)
    f = torch.randn(20, 5)
    z = llc.bit_logits(f)
    torch.testing.assert_close(head.bit_logits(f), z, atol=1e-5, rtol=1e-5)
    p = torch.softmax(head.group_logits(f), dim=-1)  # (B, G, 4)
    vals = torch.arange(4)
    s = torch.sigmoid(torch.cat([z, z.new_zeros(20, 2 * n_groups(k) - k)], 1)).reshape(20, -1, 2)
    indep = torch.where((vals & 1).bool(), s[..., :1], 1 - s[..., :1]) * torch.where((vals >> 1).bool(), s[..., 1:], 1 - s[..., 1:])
    if k % 2:
        indep[:, -1] = torch.cat([1 - s[:, -1, :1], s[:, -1, :1], torch.zeros(20, 2)], 1)
    torch.testing.assert_close(p, indep, atol=1e-5, rtol=1e-5)
    u = head.group_logits(f).detach().numpy()
    top = values_to_bits(top_codes(quantised_log_probs(u), 1)[1][:, 0], k)
    np.testing.assert_array_equal(top, (z >= 0).numpy().astype(np.uint8))
    torch.testing.assert_close(head.class_codes(), llc.class_codes())


def test_bit_logits_are_marginal_log_odds():
    head = GroupedHead(1, torch.tensor([[0, 0, 1], [1, 1, 0]]))  # k = 3
    with torch.no_grad():
        head.projector.weight.zero_()
        head.projector.bias.copy_(torch.tensor([0.0, math.log(2), math.log(3), math.log(4), 0.5, -1.0]))
    z = head.bit_logits(torch.zeros(1, 1))[0]
    # group 0: P(v) = (1, 2, 3, 4) / 10, so P(bit 0) = P(1) + P(3) = 0.6 and P(bit 1) = P(2) + P(3) = 0.7
    expect = [math.log(0.6 / 0.4), math.log(0.7 / 0.3), -1.0 - 0.5]
    assert z.tolist() == pytest.approx(expect, rel=1e-6)


@pytest.mark.parametrize("k", [6, 7])
def test_every_parameter_gets_a_finite_gradient(k):
    torch.manual_seed(0)
    head = GroupedHead(4, torch.randint(0, 2, (5, k)))
    model = Classifier(nn.Identity(), head)
    x, y = torch.randn(16, 4), torch.randint(0, 5, (16,))
    (grouped_loss(model, x, y) + head.bit_logits(x).sum() + head(x).sum()).backward()
    for name, prm in head.named_parameters():
        assert torch.isfinite(prm.grad).all(), name
        assert (prm.grad.abs().sum(dim=-1) > 0).all(), name  # every one of the 2k outputs is used


def test_class_scores_argmax_matches_full_list_decoding():
    torch.manual_seed(1)
    cb = torch.randint(0, 2, (7, 6))
    cb[3] = 1 - cb[0]
    head = GroupedHead(3, cb)
    f = torch.randn(50, 3)
    res = grouped_decode(head.group_logits(f), cb, max_lookups=64)
    np.testing.assert_array_equal(res.pred, head(f).argmax(dim=1).numpy())


# ------------------------------------------------------------------ end to end
def test_grouped_phase2_learns_gaussian_clusters():
    """8 Gaussian clusters in 16-d, random distinct 6-bit class codes, a linear GroupedHead:
    320 SGD steps reach high exact-match (m = 1) accuracy on fresh samples, and the full list
    (m = 2^k, every query assigned) does better still (measured: 0.881 and 0.951)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rng = np.random.default_rng(0)
        L, d, k = 8, 16, 6
        cb = ((rng.choice(2 ** k, L, replace=False)[:, None] >> np.arange(k)) & 1).astype(np.uint8)
        means = rng.normal(size=(L, d)) * 1.5

        def sample(n):
            y = rng.integers(0, L, n)
            return torch.tensor(means[y] + rng.normal(size=(n, d)), dtype=torch.float32), torch.tensor(y)

        (xtr, ytr), (xte, yte) = sample(512), sample(512)
        torch.manual_seed(0)
        model = Classifier(nn.Identity(), GroupedHead(d, cb))
        cfg = TrainConfig(epochs=40, lr=0.1, batch_size=64, weight_decay=0.0, seed=0)
        history = fit(model, TensorDataset(xtr, ytr), grouped_loss, cfg, progress=False)
        with torch.no_grad():
            u = model.head.group_logits(xte)
        curve = grouped_curve(u, cb, yte.numpy(), sizes=[1, 64])
    finally:
        torch.set_num_threads(threads)
    assert history[-1] < history[0] / 3
    assert curve["accuracy"].iloc[0] > 0.8
    assert curve["accuracy"].iloc[1] > 0.9
    assert curve["unassigned"].iloc[1] == 0.0
