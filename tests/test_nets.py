"""The StarGAN v2 backbone: official parameter counts, shapes, multi-hot styles, precision/layout."""

import pytest
import torch

from i2ibench.nets.stargan2 import (Discriminator, Generator, HighPass, MappingNetwork, StyleEncoder, init_weights,
                           official_dim_in, select_domain)


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# clovaai/stargan-v2 core/model.py, style_dim 64, latent 16 (../shared/notes/reference-facts.md)
OFFICIAL_COUNTS = [
    # img, K, w_hpf, generator, mapping, style encoder, discriminator
    (256, 2, 0, 33_892_995, 2_438_272, 20_916_928, 20_852_290),
    (256, 3, 0, 33_892_995, 3_259_072, 20_949_760, 20_852_803),
    (128, 10, 0, 33_632_003, 9_004_672, 21_062_400, 20_739_210),
    (256, 2, 1, 43_467_395, 2_438_272, 20_916_928, 20_852_290),
]


@pytest.mark.parametrize("img,k,w_hpf,n_g,n_f,n_e,n_d", OFFICIAL_COUNTS)
def test_parameter_counts_equal_official(img, k, w_hpf, n_g, n_f, n_e, n_d):
    with torch.device("meta"):  # no memory, no init cost
        assert count(Generator(img, 64, 512, w_hpf)) == n_g
        assert count(MappingNetwork(16, 64, k)) == n_f
        assert count(StyleEncoder(img, 64, k)) == n_e
        assert count(Discriminator(img, k)) == n_d


def test_explicit_dim_in_equal_to_official_rule_builds_same_net():
    with torch.device("meta"):
        assert count(Generator(128, 64, 512, 0, dim_in=official_dim_in(128))) == 33_632_003
        assert count(Discriminator(64, 3, 64, dim_in=8)) < count(Discriminator(64, 3, 64, dim_in=16))


def small_nets(img=16, k=3, w_hpf=0, style=8):
    torch.manual_seed(0)
    nets = dict(G=Generator(img, style, 16, w_hpf, dim_in=8), F=MappingNetwork(4, style, k, hidden=16),
                E=StyleEncoder(img, style, k, 16, dim_in=8), D=Discriminator(img, k, 16, dim_in=8))
    for n in nets.values():
        init_weights(n)
    return nets


def test_shapes():
    nets = small_nets()
    x, y, z = torch.randn(5, 3, 16, 16), torch.tensor([0, 1, 2, 1, 0]), torch.randn(5, 4)
    s = nets["F"](z, y)
    assert s.shape == (5, 8)
    assert nets["E"](x, y).shape == (5, 8)
    assert nets["G"](x, s).shape == (5, 3, 16, 16)
    assert nets["D"](x, y).shape == (5,)
    logits = nets["D"].all_logits(x)
    assert logits.shape == (5, 3)
    assert torch.equal(nets["D"](x, y), logits[torch.arange(5), y])
    assert len(nets["G"].encode) == 2  # 16 px: log2(16) - 4 = 0 downsampling blocks, + 2 bottleneck


def test_depth_follows_official_rule():
    with torch.device("meta"):
        assert len(Generator(256, w_hpf=0).encode) == 4 + 2
        assert len(Generator(256, w_hpf=1).encode) == 5 + 2
        down_blocks = [m for m in StyleEncoder(64).shared if m.__class__.__name__ == "ResBlk"]
        assert len(down_blocks) == 4  # log2(64) - 2: 64 px down to 4x4


@pytest.mark.parametrize("net", ["F", "E"])
def test_multi_hot_style_is_mean_of_active_domain_styles(net):
    nets = small_nets()
    inp = torch.randn(4, 4) if net == "F" else torch.randn(4, 3, 16, 16)
    multi_hot = torch.tensor([[1, 0, 1], [0, 1, 0], [1, 1, 1], [0, 0, 1]], dtype=torch.float32)
    got = nets[net](inp, multi_hot)
    singles = [nets[net](inp, torch.full((4,), d)) for d in range(3)]
    for i in range(4):
        active = [singles[d][i] for d in range(3) if multi_hot[i, d] > 0]
        torch.testing.assert_close(got[i], torch.stack(active).mean(0))
    # a bool multi-hot is the same labels
    torch.testing.assert_close(nets[net](inp, multi_hot.bool()), got)


def test_select_domain_rejects_wrong_label_shape():
    with pytest.raises(ValueError, match="multi-hot"):
        select_domain(torch.randn(2, 3, 4), torch.ones(2, 4))


def test_highpass_removes_constant_and_scales_with_w():
    x = torch.full((1, 2, 6, 6), 3.0)
    assert HighPass(1.0)(x)[..., 1:-1, 1:-1].abs().max() == 0
    ramp = torch.arange(36.0).view(1, 1, 6, 6) ** 2
    torch.testing.assert_close(HighPass(2.0)(ramp), HighPass(1.0)(ramp) / 2)


def test_high_pass_branch_uses_masks_only_when_given():
    nets = small_nets(img=32, w_hpf=1)
    G = nets["G"]
    x, s = torch.randn(2, 3, 32, 32), torch.randn(2, 8)
    zero = [torch.zeros(2, 1, 32, 32)] * 2
    ones = [torch.ones(2, 1, 32, 32)] * 2
    torch.testing.assert_close(G(x, s, masks=zero), G(x, s))  # zero mask = no skip
    assert not torch.allclose(G(x, s, masks=ones), G(x, s))


def test_channels_last_matches_contiguous():
    nets = small_nets()
    x, y, z = torch.randn(3, 3, 16, 16), torch.tensor([0, 2, 1]), torch.randn(3, 4)
    s = nets["F"](z, y)
    ref = (nets["G"](x, s), nets["E"](x, y), nets["D"](x, y))
    xc = x.contiguous(memory_format=torch.channels_last)
    for n in ("G", "E", "D"):
        nets[n].to(memory_format=torch.channels_last)
    got = (nets["G"](xc, s), nets["E"](xc, y), nets["D"](xc, y))
    for a, b in zip(got, ref):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_bf16_autocast_runs_and_stays_close_to_fp32():
    nets = small_nets(img=32, w_hpf=1)
    x, y, z = torch.randn(2, 3, 32, 32), torch.tensor([0, 2]), torch.randn(2, 4)
    masks = [torch.rand(2, 1, 32, 32)] * 2
    with torch.no_grad():
        ref = nets["G"](x, nets["F"](z, y), masks)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = nets["G"](x, nets["F"](z, y), masks)
            logits = nets["D"](out, y)
    assert torch.isfinite(out).all() and torch.isfinite(logits).all()
    # bf16 has ~3 significant digits; the output must still be the same image
    assert (out.float() - ref).abs().mean() < 0.05 * ref.abs().mean()
