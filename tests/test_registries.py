"""Registry-wide contracts: every registered head and every registered compressor, with no
test code per entry (a new entry is tested by adding it to its registry)."""
import pytest
import torch
from torch import nn

from llcpkg.compress import COMPRESSORS, CompressionConfig, compress, memory
from llcpkg.models import HEADS, ModelConfig, build_head, build_model

DIM, L, K, B = 6, 5, 4, 3


@pytest.mark.parametrize("name", sorted(HEADS))
def test_every_head_builds_gives_finite_outputs_and_trains_every_parameter(name):
    torch.manual_seed(0)
    head = build_head(name, DIM, L, K)
    f = torch.randn(B, DIM)
    out = head.train()(f)
    assert out.dim() == 2 and out.shape[0] == B and torch.isfinite(out).all()
    assert out.shape[1] in (L, K)  # class logits, or (HashNet) the relaxed codes
    if hasattr(head, "bit_logits"):
        assert head.bit_logits(f).shape == (B, K)
    out.pow(2).sum().backward()
    for pname, p in head.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", sorted(HEADS))
def test_every_head_builds_a_classifier_from_a_config(name):
    bits = 0 if name == "linear" else K
    model = build_model(ModelConfig("smallcnn", 2, name, bits), 1, L)
    assert model(torch.randn(2, 1, 8, 8)).shape[0] == 2


def test_unknown_head_names_the_registry():
    with pytest.raises(ValueError, match="linear"):
        build_head("nope", DIM, L, K)


def _mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, 3))  # 228 weights, 15 biases


@pytest.mark.parametrize("name", sorted(COMPRESSORS))
def test_every_compressor_keeps_the_forward_and_stores_factor_times_the_weights(name):
    model, x = _mlp(), torch.randn(5, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    cfg = CompressionConfig(name, 1 / 4, hashes=2, depth=1)
    out = compress(model, cfg).eval()
    assert out(x).shape == (5, 3) and torch.isfinite(out(x)).all()
    mem = memory(out)
    assert mem["virtual"] == 228 and mem["other"] == 15
    # dense stores every weight; the others round(1/4 · 228) = 57 numbers (buckets + g + scales, or nonzeros)
    assert mem["weights"] == (228 if name == "dense" else 57)


@pytest.mark.parametrize("name", sorted(set(COMPRESSORS) - {"dense"}))
def test_every_compressor_leaves_skipped_layers_dense(name):
    model = _mlp()
    out = compress(model, CompressionConfig(name, 1 / 4, hashes=2, depth=1), skip=("3",))
    assert isinstance(out[3], nn.Linear) and not hasattr(out[3], "parametrizations")
    torch.testing.assert_close(out[3].weight, model[3].weight)
