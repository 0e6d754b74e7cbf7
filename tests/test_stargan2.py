"""The stargan2 method: losses, schedule, one training step, EMA, determinism, translation."""

import copy

import pytest
import torch

from i2ibench.config import build_run_config
from i2ibench.errors import ConfigError
from i2ibench.train.losses import adv_loss, linear_decay, r1_penalty
from i2ibench.method import Batch, DataInfo
from i2ibench.registry import create_method

K = 3
IMG = 16


def make_method(seed=0, **overrides):
    cfg = build_run_config("stargan2", "fashion10", "smoke", {"train.img_size": IMG, **overrides})
    torch.manual_seed(seed)
    return create_method("stargan2", cfg, DataInfo("fashion10", ["a", "b", "c"][:K], IMG), "cpu")


def make_batch(n=4, seed=1):
    g = torch.Generator().manual_seed(seed)
    img = lambda: torch.rand(n, 3, IMG, IMG, generator=g) * 2 - 1  # noqa: E731
    return Batch(img(), torch.randint(0, K, (n,), generator=g), img(), img(), torch.randint(0, K, (n,), generator=g))


def params(module):
    return [p.detach().clone() for p in module.parameters()]


# --------------------------------------------------------------------------- losses

def test_r1_of_linear_discriminator_is_half_squared_weight_norm():
    w = torch.randn(3, 4, 4, requires_grad=True)
    x = torch.randn(5, 3, 4, 4, requires_grad=True)
    out = (x * w).flatten(1).sum(1) + 2.0  # dD/dx_i = w for every image
    penalty = r1_penalty(out, x)
    torch.testing.assert_close(penalty, 0.5 * w.detach().pow(2).sum())
    penalty.backward()  # the penalty keeps its graph (it trains D): d/dw 0.5 ||w||^2 = w
    torch.testing.assert_close(w.grad, w.detach())


def test_adv_loss_values():
    logits = torch.tensor([0.0, 2.0])
    torch.testing.assert_close(adv_loss(logits, True), torch.log1p(torch.exp(-logits)).mean())
    torch.testing.assert_close(adv_loss(logits, False), torch.log1p(torch.exp(logits)).mean())
    # weighted (multi-hot) mean ignores zero-weight entries
    weighted = adv_loss(torch.tensor([[0.0, 50.0]]), True, weight=torch.tensor([[1.0, 0.0]]))
    torch.testing.assert_close(weighted, torch.log(torch.tensor(2.0)))


def test_diversity_weight_decays_linearly_to_zero():
    assert linear_decay(2.0, 0, 100) == 2.0
    assert linear_decay(2.0, 25, 100) == pytest.approx(1.5)
    assert linear_decay(2.0, 99, 100) == pytest.approx(0.02)
    assert linear_decay(2.0, 100, 100) == 0.0
    assert linear_decay(2.0, 10_000, 100) == 0.0
    with pytest.raises(ValueError):
        linear_decay(1.0, 0, 0)


# --------------------------------------------------------------------------- training step

def test_training_step_updates_every_net_and_ema_follows():
    m = make_method()
    before = {n: params(net) for n, net in m.nets.items()}
    ema_before = {n: params(net) for n, net in m.nets_ema.items()}
    losses = m.training_step(make_batch(), step=1)
    for name, net in m.nets.items():
        changed = [not torch.equal(a, b) for a, b in zip(before[name], net.parameters())]
        assert any(changed), f"{name} did not change"
    beta = m.mcfg.ema_beta
    for name, net in m.nets_ema.items():
        for e0, e1, p in zip(ema_before[name], net.parameters(), m.nets[name].parameters()):
            torch.testing.assert_close(e1, e0 + (1 - beta) * (p - e0))
    expected = {f"D/{b}_{k}" for b in ("latent", "ref") for k in ("real", "fake", "reg")}
    expected |= {f"G/{b}_{k}" for b in ("latent", "ref") for k in ("adv", "sty", "ds", "cyc")}
    assert set(losses) == expected | {"G/lambda_ds"}
    assert all(isinstance(v, float) and v == v and abs(v) != float("inf") for v in losses.values())
    assert losses["G/lambda_ds"] == linear_decay(1.0, 1, m.mcfg.ds_iter)


def test_update_order_is_official():
    m = make_method()
    calls = []
    orig = m.optimize
    m.optimize = lambda loss, names: (calls.append(list(names)), orig(loss, names))  # noqa: E731
    m.training_step(make_batch(), step=0)
    assert calls == [["discriminator"], ["discriminator"],
                     ["generator", "mapping_network", "style_encoder"], ["generator"]]
    assert all(p.requires_grad for p in m.nets.parameters())  # nothing left frozen


def test_mapping_network_uses_its_own_learning_rate():
    m = make_method(**{"model.f_lr": 0.5e-6, "model.lr": 3e-4})
    assert m.optims["mapping_network"].param_groups[0]["lr"] == 0.5e-6
    assert m.optims["generator"].param_groups[0]["lr"] == 3e-4
    assert m.optims["discriminator"].param_groups[0]["betas"] == (0.0, 0.99)
    assert m.optims["style_encoder"].param_groups[0]["weight_decay"] == 1e-4


@pytest.mark.parametrize("latent_target", ["ref", "uniform"])
def test_same_seed_gives_identical_weights(latent_target):
    runs = []
    for _ in range(2):
        m = make_method(seed=3, **{"model.latent_target": latent_target})
        torch.manual_seed(11)
        for step in range(2):
            m.training_step(make_batch(seed=step), step)
        runs.append(m.state_dict())
    for part in ("nets", "nets_ema"):
        for k, v in runs[0][part].items():
            assert torch.equal(v, runs[1][part][k]), k
    # and a different seed gives different weights (the test can fail)
    m = make_method(seed=4, **{"model.latent_target": latent_target})
    assert not torch.equal(m.nets["generator"].from_rgb.weight, runs[0]["nets"]["generator.from_rgb.weight"])


def test_bad_latent_target_is_a_config_error():
    with pytest.raises(ConfigError, match="latent_target"):
        make_method(**{"model.latent_target": "random"})


# --------------------------------------------------------------------------- inference

def test_translate_latent_and_reference():
    m = make_method()
    m.training_step(make_batch(), 0)
    x = torch.rand(4, 3, IMG, IMG) * 2 - 1
    y = torch.tensor([0, 1, 2, 0])
    z = torch.randn(4, m.mcfg.latent_dim)
    out = m.translate(x, y, z=z)
    assert out.shape == x.shape and out.min() >= -1 and out.max() <= 1
    # EMA generator with the EMA mapping network's style
    s = m.nets_ema["mapping_network"](z, y)
    torch.testing.assert_close(out, m.nets_ema["generator"](x, s).clamp(-1, 1))
    ref = torch.rand(4, 3, IMG, IMG) * 2 - 1
    out_ref = m.translate(x, y, ref=ref)
    torch.testing.assert_close(out_ref, m.nets_ema["generator"](x, m.nets_ema["style_encoder"](ref, y)).clamp(-1, 1))
    # multi-hot target: the mean style of the active domains
    mh = torch.nn.functional.one_hot(y, K).float()
    torch.testing.assert_close(m.translate(x, mh, z=z), out)
    with pytest.raises(ValueError, match="exactly one"):
        m.translate(x, y)


def test_domain_labels_is_not_applicable():
    with pytest.raises(TypeError, match="ground-truth"):
        make_method().domain_labels(torch.zeros(1, 3, IMG, IMG))


def test_state_dict_round_trip_restores_training_exactly():
    m = make_method()
    m.training_step(make_batch(seed=5), 0)
    state = copy.deepcopy(m.state_dict())
    other = make_method(seed=9)
    other.load_state_dict(state)
    for mm in (m, other):
        torch.manual_seed(2)
        mm.training_step(make_batch(seed=6), 1)
    for k, v in m.state_dict()["nets"].items():
        assert torch.equal(v, other.state_dict()["nets"][k]), k


def test_failed_step_leaves_every_net_trainable():
    m = make_method()
    bad = make_batch()
    bad.y_src = torch.full_like(bad.y_src, K + 5)  # no such domain: the discriminator indexing fails
    with pytest.raises(IndexError):
        m.training_step(bad, 0)
    assert all(p.requires_grad for p in m.nets.parameters())


def test_ema_copies_are_taken_before_he_initialisation_as_officially():
    from i2ibench.nets.stargan2 import build_backbone

    m = make_method(seed=3)
    torch.manual_seed(3)
    default_init = build_backbone(m.mcfg, IMG, K, he_init=False)  # the same draws, without He init
    for name in ("generator", "mapping_network", "style_encoder"):
        for e, d, p in zip(m.nets_ema[name].parameters(), default_init[name].parameters(), m.nets[name].parameters()):
            assert torch.equal(e, d), name
        assert any(not torch.equal(e, p) for e, p in zip(m.nets_ema[name].parameters(), m.nets[name].parameters()))


def test_multi_label_data_is_a_one_line_config_error():
    cfg = build_run_config("stargan2", "celebahq", "smoke", {"train.img_size": IMG})
    with pytest.raises(ConfigError, match="multi-label"):
        create_method("stargan2", cfg, DataInfo("celebahq", ["bangs", "smiling"], IMG, multi_label=True), "cpu")
