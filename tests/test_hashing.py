"""Hashing heads (llcpkg.hashing): hand-computed losses, continuation, gradients, a toy retrieval run."""
import math

import numpy as np
import pytest
import torch
from torch import nn

from llcpkg.hashing import HASHERS, HashingConfig, build_head, greedyhash_loss, hashnet_loss, train_hashing
from llcpkg.models import Classifier, GreedyHashHead, HashNetHead, ModelConfig, SmallCNN
from llcpkg.ranking import evaluate_retrieval
from llcpkg.train import TrainConfig, predict, train_baseline


def identity_model(head: nn.Module) -> Classifier:
    """Features = inputs (B, 1); projector weight 1, bias 0, so z = x."""
    with torch.no_grad():
        head.projector.weight.fill_(1.0)
        head.projector.bias.zero_()
    return Classifier(nn.Identity(), head)


def test_hashnet_loss_hand_computed():
    head = HashNetHead(1, 1, gamma=0.0, alpha=1.0)  # β stays 1
    model = identity_model(head).train()
    h = torch.tensor([0.5, 0.5, -0.25])
    x = torch.atanh(h)[:, None]
    y = torch.tensor([0, 1, 1])
    # ordered pairs i != j: 6; similar: (1,2), (2,1) -> weight 6/2; dissimilar 4 -> weight 6/4
    ip = {(0, 1): 0.25, (0, 2): -0.125, (1, 2): -0.125}
    sim = {(0, 1): 0, (0, 2): 0, (1, 2): 1}
    total = sum(2 * (3.0 if sim[p] else 1.5) * (math.log1p(math.exp(v)) - sim[p] * v) for p, v in ip.items())
    assert float(hashnet_loss(model, x, y, TrainConfig()).detach()) == pytest.approx(total / 6, rel=1e-6)


def test_hashnet_continuation_counts_training_steps_only():
    head = build_head(HashingConfig("hashnet", 4, beta_final=5.0), dim=3, num_classes=2, total_steps=10)
    assert head.alpha == pytest.approx(10 / 4) and head.beta == 1.0
    x = torch.randn(2, 3)
    head.eval()(x)
    assert int(head.step) == 0
    head.train()
    for _ in range(10):
        out = head(x)
    assert int(head.step) == 10 and head.beta == pytest.approx(5.0)
    assert torch.allclose(out, torch.tanh(5.0 * head.bit_logits(x)))
    assert "step" in head.state_dict()  # a cached model keeps its β


def test_greedyhash_forward_is_sign_and_loss_hand_computed():
    head = GreedyHashHead(1, 1, num_classes=2, penalty=2.0)
    with torch.no_grad():
        head.classifier.weight.copy_(torch.tensor([[1.0], [-1.0]]))
    model = identity_model(head)
    x = torch.tensor([[0.5], [-3.0]])
    assert torch.equal(model(x), torch.tensor([[1.0, -1.0], [-1.0, 1.0]]))  # W sign(z)
    y = torch.tensor([0, 0])
    ce = (math.log1p(math.exp(-2.0)) + math.log1p(math.exp(2.0))) / 2
    cubic = (0.5 ** 3 + 2.0 ** 3) / 2  # | |z| - 1 |^3 for z = 0.5 and -3
    loss = greedyhash_loss(model, x, y, TrainConfig(label_smoothing=0.0))
    assert float(loss.detach()) == pytest.approx(ce + 2.0 * cubic, rel=1e-6)


@pytest.mark.parametrize("method", sorted(HASHERS))
def test_every_parameter_gets_a_gradient(method):
    torch.manual_seed(0)
    backbone = SmallCNN(1, 4)
    model = Classifier(backbone, build_head(HashingConfig(method, 6), backbone.out_dim, 3, total_steps=5)).train()
    x, y = torch.randn(8, 1, 8, 8), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    loss = HASHERS[method](model, x, y, TrainConfig())
    loss.backward()
    assert torch.isfinite(loss)
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_unknown_method_raises():
    with pytest.raises(ValueError):
        build_head(HashingConfig("lsh", 8), 4, 2)


TOY_CFG = TrainConfig(epochs=3, lr=0.05, batch_size=32)


@pytest.fixture(scope="module")
def toy_baseline(tmp_path_factory):
    from llcpkg.data import toy_bundle

    data = toy_bundle(n_train=256, n_test=128, num_classes=4, seed=0)
    return data, train_baseline(data, ModelConfig(width=4), TOY_CFG, tmp_path_factory.mktemp("base"))


@pytest.mark.parametrize("method", sorted(HASHERS))
def test_toy_codes_retrieve_their_class(method, toy_baseline, tmp_path):
    toy_bundle, base = toy_baseline
    cfg = TOY_CFG
    trained = train_hashing(toy_bundle, HashingConfig(method, 8), cfg, base, tmp_path)
    again = train_hashing(toy_bundle, HashingConfig(method, 8), cfg, base, tmp_path)  # from the cache
    db, q = predict(trained.model, toy_bundle.train), predict(trained.model, toy_bundle.test)
    np.testing.assert_array_equal(predict(again.model, toy_bundle.test)["bit_logits"], q["bit_logits"])
    res = evaluate_retrieval(q["bit_logits"], db["bit_logits"], q["labels"], db["labels"], R=50)
    assert res.map_at_R > 0.9 and res.map > 0.8
