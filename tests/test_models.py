"""Models: the straight-through sign, heads and shape checks."""
import pytest
import torch

from llcpkg.models import LLCHead, ModelConfig, SmallCNN, build_model, sign_ste


def test_sign_ste_forward_is_sign_with_zero_positive():
    x = torch.tensor([-2.0, -0.0, 0.0, 0.5, 3.0])
    assert sign_ste(x).tolist() == [-1.0, 1.0, 1.0, 1.0, 1.0]


def test_sign_ste_backward_is_identity():
    x = torch.randn(5, 3, requires_grad=True)
    w = torch.randn(5, 3)
    (sign_ste(x) * w).sum().backward()
    assert torch.equal(x.grad, w)  # d/dx of sum(w * sign(x)) under the identity rule is w


def test_llc_logits_are_projection_times_binary_codebook():
    torch.manual_seed(0)
    head = LLCHead(dim=6, num_classes=5, bits=4, logit_scale="none")
    f = torch.randn(3, 6)
    z = head.projector(f)
    expected = z @ torch.sign(head.codebook.detach()).t()
    assert torch.allclose(head(f), expected)
    assert set(head.class_codes().unique().tolist()) <= {-1.0, 1.0}


def test_codebook_gets_straight_through_gradient():
    torch.manual_seed(0)
    head = LLCHead(dim=6, num_classes=5, bits=4, logit_scale="none")
    f = torch.randn(3, 6)
    head(f).sum().backward()
    z = head.projector(f).detach()
    # logits[b, c] = sum_j z[b, j] * sign(C[c, j]); identity STE → dL/dC[c, j] = sum_b z[b, j]
    assert torch.allclose(head.codebook.grad, z.sum(0).expand(5, 4))


@pytest.mark.parametrize("bits", [0, -3])
def test_bits_must_be_positive(bits):
    with pytest.raises(ValueError, match="bits"):
        LLCHead(dim=4, num_classes=3, bits=bits)


def test_codebook_shape_is_checked():
    with pytest.raises(ValueError, match="codebook"):
        LLCHead(dim=4, num_classes=3, bits=2, codebook=torch.zeros(3, 5))


def test_wrong_image_shape_is_a_clear_error():
    net = SmallCNN(in_channels=1, width=4)
    with pytest.raises(ValueError, match="expects images"):
        net(torch.zeros(2, 3, 28, 28))
    with pytest.raises(ValueError, match="expects images"):
        net(torch.zeros(28, 28))


@pytest.mark.parametrize("head,bits,out", [("linear", 0, 10), ("llc", 8, 10)])
def test_build_model_shapes_and_all_params_get_gradients(head, bits, out):
    model = build_model(ModelConfig(width=4, head=head, bits=bits), in_channels=1, num_classes=10)
    y = model(torch.randn(3, 1, 28, 28))
    assert y.shape == (3, out) and torch.isfinite(y).all()
    y.square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_sqrt_logit_scale_divides_logits_by_sqrt_k():
    torch.manual_seed(0)
    a = LLCHead(dim=6, num_classes=5, bits=4, logit_scale="none")
    b = LLCHead(dim=6, num_classes=5, bits=4, codebook=a.codebook.detach(), logit_scale="sqrt")
    b.load_state_dict(a.state_dict())
    f = torch.randn(3, 6)
    assert torch.allclose(b(f), a(f) / 2.0)
    with pytest.raises(ValueError, match="logit_scale"):
        LLCHead(dim=6, num_classes=5, bits=4, logit_scale="cube")


def test_init_projector_projects_linear_logits_onto_the_codebook_span():
    from llcpkg.models import LinearHead
    from llcpkg.train import init_projector

    torch.manual_seed(0)
    lin = LinearHead(6, 5)
    codes = torch.tensor([[1., 1, 1], [1, -1, 1], [-1, 1, 1], [-1, -1, -1], [1, 1, -1]])
    head = LLCHead(dim=6, num_classes=5, bits=3, codebook=codes, logit_scale="sqrt")
    init_projector(head, lin)
    f = torch.randn(4, 6)
    target = lin(f)  # (4, 5)
    # least squares: the residual is orthogonal to the span of B(C)'s columns
    resid = (target - head(f)).detach()
    assert torch.allclose(resid @ codes, torch.zeros(4, 3), atol=1e-4)
