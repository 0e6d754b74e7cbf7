"""TUNIT: guiding network, IIC and contrastive losses, queue, augmentation, the method, the style plot."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from i2ibench.methods.tunit_guiding import (AugmentConfig, GuidingNetwork, KeyQueue, augment, contrastive_loss,
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


# --------------------------------------------------------------------------- the method

from i2ibench.config import build_run_config  # noqa: E402
from i2ibench.errors import I2IError, TrainingError  # noqa: E402
from i2ibench.method import Batch, DataInfo  # noqa: E402
from i2ibench.registry import create_method, get_method_class  # noqa: E402

K = 3
IMG = 16


def make_method(seed=0, **overrides):
    cfg = build_run_config("tunit", "fashion10", "smoke", {"train.img_size": IMG, **overrides})
    torch.manual_seed(seed)
    return create_method("tunit", cfg, DataInfo("fashion10", ["a", "b", "c"][:K], IMG), "cpu")


def make_batch(n=4, seed=1, labelled=None):
    g = torch.Generator().manual_seed(seed)
    img = lambda: torch.rand(n, 3, IMG, IMG, generator=g) * 2 - 1  # noqa: E731
    return Batch(img(), torch.randint(0, K, (n,), generator=g), img(), img(), torch.randint(0, K, (n,), generator=g),
                 labelled=labelled)


def snapshot(module):
    return [p.detach().clone() for p in module.parameters()]


def changed(before, module):
    return any(not torch.equal(a, b) for a, b in zip(before, module.parameters()))


def test_registered_with_clusters_and_reference_mode_only():
    cls = get_method_class("tunit")
    assert cls.label_kind == "clusters" and cls.modes == ("reference",)
    assert set(cls.presets) >= {"paper", "cpu", "smoke"}
    for preset in cls.presets:  # every preset key is a valid config key
        build_run_config("tunit", "fashion10", preset)
    paper = build_run_config("tunit", "fashion10", "paper")
    assert (paper.train.img_size, paper.train.batch_size, paper.train.total_iters) == (128, 32, 200_000)
    assert (paper.model.separated_iters, paper.model.ema_start_iters) == (65_000, 66_000)


@pytest.mark.parametrize("preset", ["cpu", "smoke"])
def test_small_presets_match_stargan2_backbone_and_evaluation(preset):
    t = build_run_config("tunit", "fashion10", preset)
    s = build_run_config("stargan2", "fashion10", preset)
    for key in ("dim_in", "max_conv_dim", "style_dim"):
        assert getattr(t.model, key) == getattr(s.model, key), key
    assert t.train.img_size == s.train.img_size
    assert t.eval == s.eval  # same sample counts: tables compare methods
    # guiding network alone first, then joint; G EMA starts shortly after the joint phase
    m = t.model
    assert 0 < m.separated_iters < m.ema_start_iters < t.train.total_iters
    assert m.ema_start_iters - m.separated_iters <= max(1, t.train.total_iters // 100)


def test_nets_sizes_and_clusters_default_to_domains():
    m = make_method()
    assert m.num_clusters == K
    assert m.nets["guiding"].cluster_head.out_features == K
    assert m.nets["discriminator"].all_logits(torch.zeros(2, 3, IMG, IMG)).shape == (2, K)
    assert make_method(**{"model.num_clusters": 5}).num_clusters == 5
    assert set(m.nets_ema.keys()) == {"generator", "guiding"}
    assert isinstance(m.optims["guiding"], torch.optim.Adam)
    assert isinstance(m.optims["generator"], torch.optim.RMSprop)
    assert m.optims["guiding"].param_groups[0]["weight_decay"] == 1e-3


def test_separated_phase_trains_only_the_guiding_network():
    m = make_method(**{"model.separated_iters": 10, "model.ema_start_iters": 11})
    g, d, c = snapshot(m.nets["generator"]), snapshot(m.nets["discriminator"]), snapshot(m.nets["guiding"])
    g_ema = snapshot(m.nets_ema["generator"])
    losses = m.training_step(make_batch(), step=0)
    assert not changed(g, m.nets["generator"]) and not changed(d, m.nets["discriminator"])
    assert not changed(g_ema, m.nets_ema["generator"])
    assert changed(c, m.nets["guiding"])
    assert len(m.queue) == 4  # first step: the queue starts from this batch's keys only
    assert set(losses) == {"C/moco", "C/iic", "C/loss", "joint"} and losses["joint"] == 0.0
    assert losses["C/loss"] == pytest.approx(losses["C/moco"] + 5.0 * losses["C/iic"], rel=1e-5)


def test_joint_step_changes_g_d_c_and_queue():
    m = make_method(**{"model.separated_iters": 0, "model.ema_start_iters": 0})
    m.training_step(make_batch(seed=3), step=0)
    queue_before = m.queue.keys.clone()
    before = {n: snapshot(net) for n, net in m.nets.items()}
    ema_c = snapshot(m.nets_ema["guiding"])
    losses = m.training_step(make_batch(seed=4), step=1)
    for name, net in m.nets.items():
        assert changed(before[name], net), name
    assert changed(ema_c, m.nets_ema["guiding"])
    assert len(m.queue) == 8 and torch.equal(m.queue.keys[:4], queue_before)  # FIFO: old keys first, new last
    assert {"D/adv", "D/gp", "G/adv", "G/rec", "G/vec", "C/loss"} <= set(losses) and losses["joint"] == 1.0
    # joint phase: the guiding network's own loss is scaled by 0.1
    assert losses["C/loss"] == pytest.approx(0.1 * (losses["C/moco"] + 5.0 * losses["C/iic"]), rel=1e-5)


def test_generator_ema_starts_as_a_copy_before_its_first_step_then_averages():
    m = make_method(**{"model.separated_iters": 0, "model.ema_start_iters": 1})
    m.training_step(make_batch(), step=0)
    assert not m.g_ema_started and m.evaluation_note()  # before the EMA starts: the live generator, said so
    x = torch.rand(2, 3, IMG, IMG) * 2 - 1
    torch.testing.assert_close(m.translate(x, None, ref=x.flip(0)),
                               m.nets["generator"](x, m.style_codes(x.flip(0))).clamp(-1, 1))
    g_before_step = snapshot(m.nets["generator"])
    m.training_step(make_batch(seed=2), step=1)
    assert m.g_ema_started and m.evaluation_note() == ""
    # official: copied at the start of step 1 (before its update), then one EMA update
    beta = m.mcfg.ema_beta
    for e, g0, p in zip(m.nets_ema["generator"].parameters(), g_before_step, m.nets["generator"].parameters()):
        torch.testing.assert_close(e, g0 + (1 - beta) * (p - g0))
    before = snapshot(m.nets_ema["generator"])
    m.training_step(make_batch(seed=5), step=2)
    for e0, e1, p in zip(before, m.nets_ema["generator"].parameters(), m.nets["generator"].parameters()):
        torch.testing.assert_close(e1, e0 + (1 - beta) * (p - e0))


def test_guiding_ema_has_its_own_momentum():
    # The generator EMA's beta (shortened by the cpu preset) must not change the MoCo keys' EMA.
    m = make_method(**{"model.separated_iters": 0, "model.ema_start_iters": 0,
                       "model.ema_beta": 0.5, "model.c_ema_beta": 0.9})
    m.training_step(make_batch(), step=0)
    before = snapshot(m.nets_ema["guiding"])
    m.training_step(make_batch(seed=3), step=1)
    for e0, e1, p in zip(before, m.nets_ema["guiding"].parameters(), m.nets["guiding"].parameters()):
        torch.testing.assert_close(e1, e0 + (1 - 0.9) * (p - e0))
    cpu = build_run_config("tunit", "fashion10", "cpu").model
    assert (cpu.c_ema_beta, cpu.ema_beta) == (0.999, 0.998)


def test_unsupervised_step_does_not_read_ground_truth():
    torch.manual_seed(0)
    a = make_method(**{"model.separated_iters": 0, "model.ema_start_iters": 0})
    b = make_method(**{"model.separated_iters": 0, "model.ema_start_iters": 0})
    batch = make_batch()
    other = Batch(batch.x_src, (batch.y_src + 1) % K, batch.x_src.flip(0), batch.x_ref2, (batch.y_ref + 2) % K)
    torch.manual_seed(9)
    la = a.training_step(batch, 0)
    torch.manual_seed(9)
    lb = b.training_step(other, 0)
    assert la == lb


def test_semi_supervised_uses_labels_of_labelled_images():
    m = make_method(**{"model.labelled_fraction": 0.5})
    with pytest.raises(TrainingError):
        m.training_step(make_batch(), 0)
    labelled = torch.tensor([True, True, False, False])
    losses = m.training_step(make_batch(labelled=labelled), 0)
    assert {"C/ce", "C/iic", "C/moco"} <= set(losses)
    # the labels of labelled images change the loss, those of unlabelled ones do not
    def loss_with(y):
        mm = make_method(**{"model.labelled_fraction": 0.5})
        b = make_batch(labelled=labelled)
        torch.manual_seed(3)
        return mm.training_step(Batch(b.x_src, y, b.x_ref, b.x_ref2, b.y_ref, labelled=labelled), 0)["C/loss"]

    y = make_batch().y_src
    y_unl = y.clone()
    y_unl[2:] = (y[2:] + 1) % K
    y_lab = y.clone()
    y_lab[:2] = (y[:2] + 1) % K
    assert loss_with(y) == loss_with(y_unl)
    assert loss_with(y) != loss_with(y_lab)


def test_translate_reference_only_and_labels():
    m = make_method()
    x = torch.rand(3, 3, IMG, IMG) * 2 - 1
    ref = torch.rand(3, 3, IMG, IMG) * 2 - 1
    t = torch.zeros(3, dtype=torch.long)
    with pytest.raises(I2IError, match="not applicable"):
        m.translate(x, t, z=torch.randn(3, 4))
    with pytest.raises(I2IError):
        m.translate(x, t)
    y = m.translate(x, t, ref=ref)
    assert y.shape == x.shape and y.abs().max() <= 1
    # the style of the reference matters
    assert not torch.allclose(y, m.translate(x, t, ref=ref.flip(0)))
    labels = m.domain_labels(x)
    assert labels.dtype == torch.long and labels.shape == (3,) and int(labels.max()) < K
    assert m.style_codes(x).shape == (3, m.mcfg.style_dim)


def _round_trip(state):
    import io

    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def test_state_dict_round_trip_is_exact_including_queue():
    cfg = {"model.separated_iters": 1, "model.ema_start_iters": 1}
    m = make_method(**cfg)
    for s in range(3):
        m.training_step(make_batch(seed=s), s)
    restored = make_method(seed=99, **cfg)
    restored.load_state_dict(_round_trip(m.state_dict()))
    assert torch.equal(restored.queue.keys, m.queue.keys) and restored.g_ema_started
    x = torch.rand(2, 3, IMG, IMG) * 2 - 1
    ref = torch.rand(2, 3, IMG, IMG) * 2 - 1
    assert torch.equal(m.translate(x, torch.zeros(2, dtype=torch.long), ref=ref),
                       restored.translate(x, torch.zeros(2, dtype=torch.long), ref=ref))
    assert torch.equal(m.domain_labels(x), restored.domain_labels(x))
    for mm in (m, restored):  # continuing from the same RNG state gives the same weights
        torch.manual_seed(11)
        mm.training_step(make_batch(seed=7), 3)
    for name in m.nets:
        for a, b in zip(m.nets[name].state_dict().values(), restored.nets[name].state_dict().values()):
            assert torch.equal(a, b), name
    assert torch.equal(m.queue.keys, restored.queue.keys)


def test_clustering_accuracy_of_permuted_labels_is_one():
    from i2ibench.metrics.labels import clustering_accuracy

    gt = torch.arange(10).repeat(5)
    perm = torch.randperm(10)
    assert clustering_accuracy(perm[gt], gt) == pytest.approx(1.0)
    wrong = perm[gt].clone()
    wrong[:5] = perm[(gt[:5] + 1) % 10]  # 5 of 50 moved to another cluster
    assert clustering_accuracy(wrong, gt) == pytest.approx(0.9)


def test_domain_labels_follow_the_guiding_network_clusters():
    # Put the EMA clustering head on a known rule: the cluster is the argmax of three
    # pooled-feature channels; images built to light one channel each get that cluster.
    from i2ibench.metrics.labels import clustering_accuracy

    m = make_method()
    net = m.nets_ema["guiding"]
    with torch.no_grad():
        net.cluster_head.weight.zero_()
        net.cluster_head.bias.zero_()
    feats = torch.zeros(K, net.feat_dim)
    feats[:, :K] = torch.eye(K) * 5
    original = net.embed
    net.embed = lambda x: feats[x[:, 0, 0, 0].long()]  # image -> its own feature row
    try:
        gt = torch.tensor([2, 0, 1, 1, 2, 0])
        x = torch.zeros(6, 3, IMG, IMG)
        x[:, 0, 0, 0] = gt.float()
        with torch.no_grad():
            net.cluster_head.weight[:, :K].copy_(torch.eye(K)[[1, 2, 0]])  # features 1, 2, 0 -> clusters 0, 1, 2
        pred = m.domain_labels(x)
        assert pred.tolist() == [1, 2, 0, 0, 1, 2]
        assert clustering_accuracy(pred, gt) == 1.0
    finally:
        net.embed = original


# --------------------------------------------------------------------------- style plot


def test_style_plot_writes_png_with_label_colours(tmp_path):
    import matplotlib.image as mpimg

    from i2ibench.evaluation.style_plot import PALETTE, embed_2d, plot_style_codes

    g = torch.Generator().manual_seed(0)
    centres = torch.randn(3, 8, generator=g) * 10
    gt = torch.arange(3).repeat_interleave(10)
    styles = centres[gt] + torch.randn(30, 8, generator=g)
    clusters = (gt + 1) % 3
    for embedding in ("tsne", "pca"):
        path = plot_style_codes(styles, gt, clusters, tmp_path / f"style_{embedding}.png", embedding=embedding, dpi=50)
        img = mpimg.imread(path)
        assert img.shape[:2] == (225, 450)  # two 4.5 x 4.5 in panels at 50 dpi
        rgb = (img[..., :3] * 255).round().astype(int).reshape(-1, 3)
        present = {tuple(c) for c in rgb.tolist()}
        for k in range(3):
            hexc = PALETTE[k].lstrip("#")
            assert tuple(int(hexc[i:i + 2], 16) for i in (0, 2, 4)) in present, (embedding, k)
        hexc = PALETTE[3].lstrip("#")
        assert tuple(int(hexc[i:i + 2], 16) for i in (0, 2, 4)) not in present
    one = plot_style_codes(styles, None, clusters, tmp_path / "clusters_only.png", embedding="pca", dpi=50)
    assert mpimg.imread(one).shape[:2] == (225, 225)
    with pytest.raises(ValueError):
        plot_style_codes(styles, gt[:5], clusters, tmp_path / "bad.png")
    # well-separated blobs stay separated in the 2-D map
    xy, used = embed_2d(styles.numpy(), "pca")
    centroids = torch.stack([torch.tensor(xy[gt.numpy() == k]).mean(0) for k in range(3)])
    spread = max(torch.tensor(xy[gt.numpy() == k]).std(0).norm() for k in range(3))
    assert used == "pca" and torch.cdist(centroids, centroids).masked_fill(torch.eye(3, dtype=torch.bool), 1e9).min() > 2 * spread


def test_plot_method_style_codes_uses_method_styles_and_clusters(tmp_path, monkeypatch):
    import i2ibench.evaluation.style_plot as sp

    m = make_method()

    class TinySet:
        labels = torch.tensor([0, 1, 2, 0, 1, 2, 0])
        domains = ["a", "b", "c"]

        def images(self, idx):
            return torch.rand(len(idx), 3, IMG, IMG, generator=torch.Generator().manual_seed(int(idx[0]))) * 2 - 1

    seen = {}

    def fake_plot(styles, gt, clusters, path, **kw):
        seen.update(styles=styles, gt=gt, clusters=clusters, names=kw.get("gt_names"))
        return path

    monkeypatch.setattr(sp, "plot_style_codes", fake_plot)
    sp.plot_method_style_codes(m, TinySet(), [6, 1, 2, 3], tmp_path / "s.png", batch_size=3)
    ds = TinySet()
    x = torch.cat([ds.images(torch.tensor([6, 1, 2])), ds.images(torch.tensor([3]))])
    torch.testing.assert_close(seen["styles"], m.style_codes(x))
    assert torch.equal(seen["clusters"], m.domain_labels(x))
    assert seen["gt"].tolist() == [0, 1, 2, 0] and seen["names"] == ["a", "b", "c"]
