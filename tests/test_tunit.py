"""TUNIT: guiding network, IIC and contrastive losses, queue, augmentation, the method, the style plot."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from i2ibench.guiding import (AugmentConfig, GuidingNetwork, KeyQueue, augment, contrastive_loss,
                              iic_loss, joint_distribution, mutual_information)

# --------------------------------------------------------------------------- IIC


@pytest.mark.parametrize("k", [2, 5, 10])
def test_iic_perfect_balanced_assignment_is_minus_log_k(k):
    # Every image confidently in its own cluster, clusters balanced, the view agrees.
    p = torch.eye(k).repeat(3, 1)
    assert mutual_information(joint_distribution(p, p)).item() == pytest.approx(math.log(k), rel=1e-6)
    assert iic_loss(p, p).item() == pytest.approx(-math.log(k), rel=1e-6)  # loss = -MI


def test_iic_constant_assignment_is_zero():
    p = torch.zeros(12, 6)
    p[:, 2] = 1.0
    assert iic_loss(p, p).item() == pytest.approx(0.0, abs=1e-7)


def test_iic_uniform_soft_assignment_is_zero_and_disagreement_is_not_rewarded():
    k = 4
    uniform = torch.full((8, k), 1.0 / k)
    assert iic_loss(uniform, uniform).item() == pytest.approx(0.0, abs=1e-6)
    p = torch.eye(k).repeat(2, 1)
    shuffled = p[torch.randperm(p.size(0))]
    # the view assigned independently of the image: less information than agreeing views
    assert iic_loss(p, shuffled).item() > iic_loss(p, p).item() + 0.5


def test_joint_distribution_is_symmetric_and_normalised():
    p = torch.softmax(torch.randn(16, 5), 1)
    q = torch.softmax(torch.randn(16, 5), 1)
    joint = joint_distribution(p, q)
    assert torch.allclose(joint, joint.t())
    assert joint.sum().item() == pytest.approx(1.0, abs=1e-6)
    # equals the mean of the outer products, symmetrised
    ref = torch.einsum("ni,nj->ij", p, q) / 16
    assert torch.allclose(joint, (ref + ref.t()) / 2, atol=1e-6)


def test_iic_gradient_is_finite_at_hard_assignments():
    logits = torch.zeros(6, 3)
    logits[torch.arange(6), torch.arange(6) % 3] = 30.0
    logits.requires_grad_(True)
    p = torch.softmax(logits, 1)
    iic_loss(p, p).backward()
    assert torch.isfinite(logits.grad).all()


# --------------------------------------------------------------------------- queue & contrastive


def test_queue_is_fifo_with_capacity():
    q = KeyQueue(dim=2, capacity=5)
    assert len(q) == 0
    q.enqueue(torch.tensor([[0.0, 0], [1, 1], [2, 2]]))
    q.enqueue(torch.tensor([[3.0, 3], [4, 4]]))
    assert q.keys[:, 0].tolist() == [0, 1, 2, 3, 4]
    q.enqueue(torch.tensor([[5.0, 5], [6, 6]]))
    assert q.keys[:, 0].tolist() == [2, 3, 4, 5, 6]  # the two oldest dropped, newest last
    q.enqueue(torch.arange(14.0).view(7, 2) + 100)
    assert q.keys[:, 0].tolist() == [104, 106, 108, 110, 112]


def test_contrastive_loss_lower_for_matching_key():
    torch.manual_seed(1)
    query = F.normalize(torch.randn(8, 16), dim=1) * 2
    queue = F.normalize(torch.randn(64, 16), dim=1) * 2
    matching = contrastive_loss(query, query.clone(), queue)
    random_key = contrastive_loss(query, F.normalize(torch.randn(8, 16), dim=1) * 2, queue)
    assert matching.item() < random_key.item() - 1.0
    # value check against the definition on one row
    logits = torch.cat([(query[:1] * query[:1]).sum(1, keepdim=True), query[:1] @ queue.t()], 1) / 0.07
    assert contrastive_loss(query[:1], query[:1], queue).item() == pytest.approx(
        (torch.logsumexp(logits, 1) - logits[:, 0]).item(), rel=1e-5)


def test_contrastive_loss_does_not_backprop_into_key_or_queue():
    query = torch.randn(4, 8, requires_grad=True)
    key = torch.randn(4, 8, requires_grad=True)
    queue = torch.randn(10, 8, requires_grad=True)
    contrastive_loss(query, key, queue).backward()
    assert query.grad is not None and key.grad is None and queue.grad is None


# --------------------------------------------------------------------------- guiding network


@pytest.mark.parametrize("img_size,pools", [(32, 3), (64, 4), (128, 5)])
def test_guiding_network_shapes_and_pools(img_size, pools):
    net = GuidingNetwork(img_size, num_clusters=7, style_dim=12, dim=4, max_dim=16)
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in net.modules()) == pools
    x = torch.randn(3, 3, img_size, img_size)
    logits, style = net(x)
    assert logits.shape == (3, 7) and style.shape == (3, 12)
    net.eval()
    assert torch.allclose(net.cluster_logits(x), net(x)[0]) and torch.allclose(net.style(x), net(x)[1])


def test_guiding_network_official_size_is_vgg11_bn():
    # At 128 px with the default widths the trunk is torchvision's VGG11-BN features, layer for layer.
    import torchvision

    with torch.device("meta"):  # shapes only: skips the slow initialisation of 9 M weights
        ref = torchvision.models.vgg11_bn(weights=None).features
        net = GuidingNetwork(128, num_clusters=10, style_dim=128)
    assert [type(m) for m in net.features] == [type(m) for m in ref]
    assert [p.shape for p in net.features.parameters()] == [p.shape for p in ref.parameters()]
    assert net.feat_dim == 512
    heads = 512 * 10 + 10 + 512 * 128 + 128
    assert sum(p.numel() for p in net.parameters()) == sum(p.numel() for p in ref.parameters()) + heads


# --------------------------------------------------------------------------- augmentation

_IDENTITY = dict(degrees=0.0, translate=0.0, shear=0.0, crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0),
                 brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0, flip=0.0)


def test_augment_deterministic_under_seed_and_random_across_draws():
    x = torch.rand(6, 3, 32, 32) * 2 - 1
    torch.manual_seed(5)
    a = augment(x)
    torch.manual_seed(5)
    b = augment(x)
    c = augment(x)
    assert torch.equal(a, b)
    assert not torch.allclose(b, c)
    assert a.shape == x.shape and a.min() >= -1 and a.max() <= 1


def test_augment_identity_and_flip():
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    assert torch.allclose(augment(x, AugmentConfig(**_IDENTITY)), x, atol=1e-6)
    flip = dict(_IDENTITY, flip=1.0)
    assert torch.allclose(augment(x, AugmentConfig(**flip)), x.flip(3), atol=1e-6)


def test_augment_translation_fills_black_and_hue_keeps_gray():
    x = torch.ones(2, 3, 20, 20)  # a white image
    shifted = augment(x, AugmentConfig(**dict(_IDENTITY, translate=0.3)))
    assert shifted.min().item() == pytest.approx(-1.0)  # black enters from the border
    gray = (torch.rand(3, 1, 16, 16) * 2 - 1).expand(-1, 3, -1, -1)
    out = augment(gray, AugmentConfig(**dict(_IDENTITY, hue=0.5)))
    assert torch.allclose(out, gray, atol=1e-5)
    colour = torch.rand(3, 3, 16, 16) * 2 - 1
    assert not torch.allclose(augment(colour, AugmentConfig(**dict(_IDENTITY, hue=0.5))), colour, atol=1e-2)
