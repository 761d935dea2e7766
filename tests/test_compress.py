"""HashedNets / HFH compression: hashes, gradients, exactness, memory count, materialise, pruning."""
import numpy as np
import pytest
import torch
from torch import nn

from llcpkg.compress import (CompressionConfig, HashSpace, NetSpec, compress_model, hash_indices, materialise,
                             memory, mix_hash, overhead, prune_model, train_compressed)
from llcpkg.models import Classifier, LinearHead, LLCHead, SmallCNN
from llcpkg.train import TrainConfig

HASHED = [CompressionConfig("hashednets", 1 / 4), CompressionConfig("hfh", 1 / 4, hashes=4, depth=2),
          CompressionConfig("hfh", 1 / 4, hashes=2, depth=1), CompressionConfig("hfh", 1 / 4, hashes=4, depth=3)]


def _mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, 3))


def _cnn():
    torch.manual_seed(0)
    return Classifier(SmallCNN(1, 4), LinearHead(16, 3))


def _x(shape=(5, 1, 4, 4)):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(1))


# ----------------------------------------------------------------------------- hashing
def test_mix_hash_is_splitmix64():
    # splitmix64 seeded with 0 gives 0xE220A8397B1DCDAF as its first output
    assert int(mix_hash(0)) == 0xE220A8397B1DCDAF


def test_hash_indices_are_deterministic_in_range_and_balanced():
    n, buckets = 20_000, 97
    layer, (i, j) = np.zeros(n, dtype=np.int64), np.divmod(np.arange(n), 200)
    idx, sgn = hash_indices(layer, i, j, buckets, hashes=3, seed=7)
    idx2, sgn2 = hash_indices(layer, i, j, buckets, hashes=3, seed=7)
    assert idx.shape == sgn.shape == (3, n)
    assert torch.equal(idx, idx2) and torch.equal(sgn, sgn2)
    assert int(idx.min()) >= 0 and int(idx.max()) < buckets
    assert set(sgn.unique().tolist()) == {-1.0, 1.0}
    counts = torch.bincount(idx[0], minlength=buckets).float()
    assert counts.min() > 0.6 * n / buckets and counts.max() < 1.4 * n / buckets  # roughly uniform
    assert abs(float((sgn == 1).float().mean()) - 0.5) < 0.02
    assert (idx[0] != idx[1]).float().mean() > 0.9  # the U hash functions differ
    other, _ = hash_indices(layer, i, j, buckets, hashes=3, seed=8)
    assert not torch.equal(idx, other)


def test_bijective_hash_is_a_permutation_and_needs_factor_one():
    n = 50
    idx, _ = hash_indices(np.zeros(n, dtype=np.int64), np.arange(n), np.zeros(n, dtype=np.int64), n, 1, 0,
                          bijective=True)
    assert sorted(idx[0].tolist()) == list(range(n))
    with pytest.raises(ValueError):
        compress_model(_mlp(), CompressionConfig("hfh", 1 / 2, hashes=1, depth=0, bijective=True))


# ----------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("cfg", HASHED, ids=lambda c: f"{c.method}-U{c.hashes}-d{c.depth}")
@pytest.mark.parametrize("make", [_mlp, _cnn], ids=["mlp", "cnn"])
def test_every_parameter_gets_a_gradient(cfg, make):
    model = compress_model(make(), cfg)
    model(_x((4, 1, 8, 8)) if make is _cnn else _x()).square().sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    spaces = {id(m) for m in model.modules() if isinstance(m, HashSpace)}
    assert len(spaces) == (1 if cfg.method == "hfh" else len([m for m in make().modules()
                                                              if isinstance(m, (nn.Linear, nn.Conv2d))]))


# ----------------------------------------------------------------------------- exactness
@pytest.mark.parametrize("method", ["hfh", "hashednets"])
@pytest.mark.parametrize("dense", [nn.Linear(6, 4), nn.Conv2d(2, 3, 3, padding=1, stride=2)], ids=["linear", "conv"])
def test_factor_one_identity_reconstruction_reproduces_the_dense_layer(method, dense):
    cfg = CompressionConfig(method, 1.0, hashes=1, depth=0, sign=False, bijective=True)
    virtual = compress_model(nn.Sequential(dense), cfg)[0]
    with torch.no_grad():  # put the dense weights into the buckets the bijection assigns them
        scale = 1.0 if virtual.scale is None else float(virtual.scale)
        virtual.space.weights[virtual.index[0]] = dense.weight.flatten() / scale
    x = _x((3, 6)) if isinstance(dense, nn.Linear) else _x((2, 2, 5, 5))
    assert torch.allclose(virtual(x), dense(x), atol=1e-6)


# ----------------------------------------------------------------------------- memory
def test_memory_counts_buckets_reconstruction_and_scales():
    # 16·12 + 12·3 = 228 weights; biases 12 + 3 = 15
    hn = memory(compress_model(_mlp(), CompressionConfig("hashednets", 1 / 4)))
    assert hn["virtual"] == 228 and hn["weights"] == 48 + 9 and hn["other"] == 15
    assert hn["bytes"] == 4 * (57 + 15)
    model = compress_model(_mlp(), CompressionConfig("hfh", 1 / 4, hashes=4, depth=2))
    space = next(m for m in model.modules() if isinstance(m, HashSpace))
    g = 4 * 2 + 2 * 1  # U→U/2→1, no biases
    assert space.weights.numel() == 57 - g - 2  # round(228 / 4) − |g| − one scale per layer
    hfh = memory(model)
    assert hfh["weights"] == 57 and hfh["params"] == 72 and hfh["ratio"] == 57 / 228


def test_memory_of_pruned_and_llc_models():
    mlp = _mlp()
    with torch.no_grad():
        mlp[1].weight.fill_(0.01)
        mlp[1].weight[0, :5] = 1.0  # the 5 largest weights all lie in layer 1
    pruned = memory(prune_model(mlp, 5 / 228))
    # 5 nonzeros; positions: layer 1 min(4·5, ⌈192/8⌉) = 20 bytes, layer 2 min(0, ⌈36/8⌉) = 0
    assert pruned["weights"] == 5 and pruned["bytes"] == 4 * (5 + 15) + 20
    llc = memory(Classifier(nn.Linear(6, 5), LLCHead(5, 4, bits=3)))
    # backbone 30 + 5, projector 15 + 3, codebook 4·3 bits
    assert llc["code_bits"] == 12 and llc["params"] == 30 + 5 + 15 + 3 and llc["bytes"] == 4 * 53 + 12 / 8


# ----------------------------------------------------------------------------- materialise, pruning
@pytest.mark.parametrize("make", [_mlp, _cnn], ids=["mlp", "cnn"])
def test_materialise_gives_the_same_outputs(make):
    x = _x((4, 1, 8, 8)) if make is _cnn else _x()
    for model in [compress_model(make(), c) for c in HASHED] + [prune_model(make(), 1 / 8)]:
        model.eval()
        dense = materialise(model)
        assert not any(isinstance(m, HashSpace) for m in dense.modules())
        assert torch.allclose(dense(x), model(x), atol=1e-5)
        assert torch.allclose(model(x), model(x))  # the original still works after materialising


def test_pruned_weights_stay_zero_through_fine_tuning(toy_bundle):
    net = NetSpec("mlp", "mlp", hidden=(16,))
    cfg = TrainConfig(epochs=1, batch_size=64, lr=0.05)
    trained = train_compressed(toy_bundle, net, CompressionConfig("pruning", 1 / 8), cfg)
    dense = materialise(trained.model)
    nnz = sum(int((m.weight != 0).sum()) for m in dense.modules() if isinstance(m, nn.Linear))
    assert nnz == round((64 * 16 + 16 * 4) / 8)


def test_overhead_is_relative_to_the_dense_model():
    mlp = _mlp()
    df = overhead({"dense": mlp, "hfh": compress_model(mlp, HASHED[1])}, _x((8, 16)), torch.zeros(8, dtype=torch.long),
                  repeats=2)
    assert list(df["model"]) == ["dense", "hfh"] and df.loc[0, "train_rel"] == 1.0
    assert (df[["train_ms", "infer_ms", "infer_materialised_ms"]] > 0).all().all()


@pytest.mark.parametrize("cfg", HASHED[:2], ids=lambda c: c.method)
def test_every_virtual_layer_gets_the_same_clipped_gradient(cfg):
    """One clipping rule for HashedNets and HFH: each layer's dL/dV^l is scaled to norm MAX_GRAD_NORM
    before it reaches the stored numbers. Here dL/dV = 1e3 everywhere (norm 1e3 √n_l ≫ 1), so the
    buckets get what an unclipped dL/dV^l = MAX_GRAD_NORM / √n_l would give them."""
    from llcpkg.compress import MAX_GRAD_NORM, _Hashed

    def bucket_grads(model, loss_of):
        layers = [m for m in model.modules() if isinstance(m, _Hashed)]
        sum(loss_of(m) for m in layers).backward()
        return [m.space.weights.grad.clone() for m in layers]

    clipped = bucket_grads(compress_model(_mlp(), cfg), lambda m: 1e3 * m.virtual_weight().sum())
    reference = bucket_grads(compress_model(_mlp(), cfg), lambda m: MAX_GRAD_NORM / np.sqrt(np.prod(m.shape))
                             * m.space.reconstruct(m.slots, m.sign is not None, m.scale).sum())
    for a, b in zip(clipped, reference):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-7)
    small = compress_model(_mlp(), CompressionConfig("hashednets", 1 / 4))
    w = [m for m in small.modules() if isinstance(m, _Hashed)][0]
    (1e-4 * w.virtual_weight()).sum().backward()  # small gradients pass unchanged
    assert torch.allclose(w.space.weights.grad, torch.zeros_like(w.space.weights).index_add_(
        0, w.index[0], 1e-4 * w.sign[0]), atol=1e-9)


def test_pruning_schedule_and_equal_bytes_factor():
    from llcpkg.compress import equal_bytes_factor, pruning_schedule

    assert pruning_schedule(1 / 8) == (0.5, 0.25, 0.125)
    assert pruning_schedule(3 / 32) == (0.5, 0.25, 0.125, 3 / 32)
    assert pruning_schedule(1 / 64)[:3] == pruning_schedule(1 / 8)  # one chain for every factor
    # bytes of f' W floats + min(int32 positions, bitmap) = bytes of f W floats
    for f in (1 / 8, 1 / 16, 1 / 64):
        g = equal_bytes_factor(f)
        assert np.isclose(4 * g + min(4 * g, 1 / 8), 4 * f)
    assert equal_bytes_factor(1 / 64) == 1 / 128 and equal_bytes_factor(1 / 8) == 3 / 32


def test_iterative_pruning_prunes_the_pruned_net_further():
    mlp = _mlp()
    once = prune_model(mlp, 1 / 2)
    twice = prune_model(once, 1 / 4)
    masks = [m.parametrizations.weight[0].mask for m in twice.modules() if isinstance(m, nn.Linear)]
    kept = [m.parametrizations.weight[0].mask for m in once.modules() if isinstance(m, nn.Linear)]
    assert sum(int(k.sum()) for k in masks) == round(228 / 4)
    assert all(bool((m <= k).all()) for m, k in zip(masks, kept))  # only survivors of step 1 survive step 2
    assert memory(twice)["weights"] == round(228 / 4)


# ----------------------------------------------------------------------------- the fast step is the paper's step
def _reference_virtual_weight(layer) -> torch.Tensor:
    """The formula as first written: per layer, V = s · g(ξ ⊙ w[index]) with (n, U) rows,
    g a chain of F.linear / torch.tanh (its weights' gradients clipped per call), the virtual
    weight's gradient clipped per layer."""
    from llcpkg.compress import clip_grad

    v = layer.space.weights[layer.index.t()]  # (n, U)
    if layer.sign is not None:
        v = v * layer.sign.t()
    lins = layer.space.g.layers
    for k, lin in enumerate(lins):
        v = nn.functional.linear(v, clip_grad(lin.weight))
        if k < len(lins) - 1:
            v = torch.tanh(v)
    w = v[:, 0].view(layer.shape)
    return clip_grad(w if layer.scale is None else w * layer.scale)


@pytest.mark.parametrize("cfg", HASHED, ids=lambda c: f"{c.method}-U{c.hashes}-d{c.depth}")
def test_training_steps_match_the_reference_formula(cfg, monkeypatch):
    from llcpkg.compress import _Hashed

    def train(model, steps=6):
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        losses = []
        for t in range(steps):
            x = torch.randn(16, 1, 4, 4, generator=torch.Generator().manual_seed(t))
            y = torch.arange(16) % 3
            # ×50: gradients far above MAX_GRAD_NORM, so the per-call clipping is exercised
            loss = 50 * nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        return torch.tensor(losses), model

    fast_losses, fast = train(compress_model(_mlp(), cfg))
    monkeypatch.setattr(_Hashed, "virtual_weight", _reference_virtual_weight)
    ref_losses, ref = train(compress_model(_mlp(), cfg))
    assert torch.allclose(fast_losses, ref_losses, rtol=1e-4, atol=1e-5), (fast_losses, ref_losses)
    for (name, p), q in zip(fast.named_parameters(), ref.parameters()):
        assert torch.allclose(p, q, rtol=1e-4, atol=1e-6), name
