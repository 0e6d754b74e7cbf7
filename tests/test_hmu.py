"""HMU / HMS (Saxena & Teli 2024; i2ibench's reading): each of the four changes to StarGAN v2
is pinned here, and both methods run end to end on cmnist through the CLI."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import run_cli
from i2ibench.config import build_run_config
from i2ibench.data.catalog import available, get_spec
from i2ibench.errors import ConfigError
from i2ibench.method import Batch, DataInfo
from i2ibench.metrics import keys as mk
from i2ibench.names import COLOUR_PROTOCOL, DETERMINISTIC, LATENT, REFERENCE, UNIMODAL_PROTOCOL
from i2ibench.registry import create_method
from i2ibench.report import records as R
from i2ibench.train.batches import paired_subset

import importlib

hmu_mod = importlib.import_module("i2ibench.methods.hmu")

GRAY, COLOUR = 0, 1
INFO = DataInfo("cmnist", ["gray", "color"], 32, unimodal=(GRAY,))


def build(name: str = "hmu", preset: str = "smoke", seed: int = 0, **over):
    cfg = build_run_config(name, "cmnist", preset, {k: str(v) for k, v in over.items()})
    torch.manual_seed(seed)
    return create_method(name, cfg, INFO, "cpu")


def images(n: int, seed: int = 0, gray: bool = False) -> torch.Tensor:
    x = torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    return x[:, :1].expand(-1, 3, -1, -1).clone() if gray else x


# --------------------------------------------------------------------------- 1. per-domain layers, shapes

def test_per_domain_input_and_output_layers_and_shapes():
    m = build()
    G, E, D = (m.nets[k] for k in ("generator", "style_encoder", "discriminator"))
    assert [c.in_channels for c in G.from_rgb] == [1, 3]  # gray enters as one channel
    assert [seq[-1].out_channels for seq in G.to_rgb] == [1, 3]
    assert [c.in_channels for c in D.from_rgb] == [1, 3]
    assert [c.in_channels for c in E.from_rgb] == [3]  # no style encoder input for the uni-modal domain
    x = images(4, gray=False)
    src, trg = torch.tensor([COLOUR, COLOUR, GRAY, GRAY]), torch.tensor([GRAY, GRAY, COLOUR, COLOUR])
    s = m.nets["mapping_network"](torch.randn(4, m.mcfg.latent_dim), trg)
    y = G(x, s, src, trg)
    assert y.shape == (4, 3, 32, 32)
    assert torch.equal(y[:2, 0], y[:2, 1]) and torch.equal(y[:2, 0], y[:2, 2])  # into gray: one channel repeated
    assert not torch.equal(y[2:, 0], y[2:, 1])
    # the gray input layer sees the channel mean: a colour image and its mean-gray version enter alike
    gray_x = x.mean(1, keepdim=True).expand(-1, 3, -1, -1)
    assert torch.allclose(G(x, s, torch.full((4,), GRAY), trg), G(gray_x, s, torch.full((4,), GRAY), trg), atol=1e-5)
    assert D(x, trg).shape == (4,)
    # stargan2 keeps the shared 3-channel layers
    base = build("stargan2")
    assert base.nets["generator"].from_rgb.in_channels == 3 and base.nets["generator"].to_rgb[-1].out_channels == 3


def test_unimodal_channels_3_keeps_three_channel_layers():
    m = build(**{"model.unimodal_channels": 3})
    assert [c.in_channels for c in m.nets["generator"].from_rgb] == [3, 3]
    with pytest.raises(ConfigError, match="unimodal_channels"):
        build(**{"model.unimodal_channels": 2})


def test_same_backbone_size_as_stargan2():
    count = lambda m: sum(p.numel() for p in m.nets.parameters())  # noqa: E731
    for preset in ("smoke", "cpu"):
        hmu, base = build(preset=preset), build("stargan2", preset=preset)
        assert hmu.mcfg.style_dim == base.mcfg.style_dim and hmu.mcfg.max_conv_dim == base.mcfg.max_conv_dim
        # smaller only by the gray mapping/style heads and the input/output layers (cpu: 1.89 M vs 1.96 M)
        assert 0 < count(base) - count(hmu) < 0.05 * count(base), preset
        assert len(hmu.nets["mapping_network"].unshared) == len(base.nets["mapping_network"].unshared) - 1


def test_demodulation_flag_replaces_adain_in_the_decoder():
    from i2ibench.nets.hmu import ModResBlk, ModulatedConv2d
    from i2ibench.nets.stargan2 import AdainResBlk

    on, off = build(), build(**{"model.demodulate": "false"})
    assert on.mcfg.demodulate is True  # on in the presets
    assert all(isinstance(b, ModResBlk) for b in on.nets["generator"].decode)
    assert all(isinstance(b, AdainResBlk) for b in off.nets["generator"].decode)
    conv = ModulatedConv2d(4, 5, 3)
    x, s = torch.randn(2, 4, 8, 8), torch.randn(2, 3)
    w = conv.weight[None] * conv.affine(s)[:, None, :, None, None]
    w = w / w.pow(2).sum((2, 3, 4), keepdim=True).add(1e-8).sqrt()
    want = torch.stack([torch.nn.functional.conv2d(x[i:i + 1], w[i], conv.bias, padding=1)[0] for i in range(2)])
    assert torch.allclose(conv(x, s), want, atol=1e-5)


# --------------------------------------------------------------------------- 2. zero style into gray

def test_zero_style_into_the_unimodal_domain():
    m = build()
    F_, E = m.nets["mapping_network"], m.nets["style_encoder"]
    assert len(F_.unshared) == 1 and len(E.unshared) == 1  # heads for colour only
    z = torch.randn(3, m.mcfg.latent_dim)
    assert torch.equal(F_(z, torch.full((3,), GRAY)), torch.zeros(3, m.mcfg.style_dim))
    assert F_(z, torch.full((3,), COLOUR)).abs().sum() > 0
    assert torch.equal(E(images(3), torch.full((3,), GRAY)), torch.zeros(3, m.mcfg.style_dim))
    x, src, to_gray = images(3, 1), torch.full((3,), COLOUR), torch.full((3,), GRAY)
    det = m.translate(x, to_gray, src=src)
    assert torch.equal(m.translate(x, to_gray, z=torch.randn(3, m.mcfg.latent_dim), src=src), det)
    assert torch.equal(m.translate(x, to_gray, ref=images(3, 2), src=src), det)
    to_colour = torch.full((3,), COLOUR)
    a = m.translate(images(3, 1, gray=True), to_colour, z=torch.randn(3, m.mcfg.latent_dim), src=to_gray)
    b = m.translate(images(3, 1, gray=True), to_colour, z=torch.randn(3, m.mcfg.latent_dim), src=to_gray)
    assert not torch.equal(a, b)  # into colour the latent code matters
    with pytest.raises(ValueError, match="uni-modal"):
        m.translate(x, to_colour, src=src)
    with pytest.raises(ValueError, match="src"):
        m.translate(x, to_gray)


def test_serves_gray_deterministic_and_colour_with_style():
    m = build()
    assert set(m.modes) == {LATENT, REFERENCE, DETERMINISTIC}
    assert m.serves(COLOUR, GRAY, DETERMINISTIC) and not m.serves(COLOUR, GRAY, LATENT)
    assert not m.serves(COLOUR, GRAY, REFERENCE)
    assert m.serves(GRAY, COLOUR, LATENT) and m.serves(GRAY, COLOUR, REFERENCE)
    assert not m.serves(GRAY, COLOUR, DETERMINISTIC) and not m.serves(GRAY, GRAY, DETERMINISTIC)


def test_no_style_reconstruction_into_gray():
    m = build()
    y = torch.full((4,), GRAY)
    x = images(4)
    s = m.nets["mapping_network"](torch.randn(4, m.mcfg.latent_dim), y)
    _, parts = m._g_loss(x, torch.full((4,), COLOUR), y, s, s, 1.0)
    assert float(parts["sty"]) == 0.0 and float(parts["ds"]) == 0.0


# --------------------------------------------------------------------------- 3. diversity only into multi-modal

def test_diversity_term_only_over_multimodal_targets():
    fake, fake2 = torch.zeros(4, 3, 2, 2), torch.zeros(4, 3, 2, 2)
    fake2[0] = 1.0  # differs only in row 0
    into_multi = torch.tensor([False, True, True, True])
    assert float(hmu_mod.diversity_term(fake, fake2, into_multi)) == 0.0  # row 0 goes into gray: not counted
    into_multi[0] = True
    assert float(hmu_mod.diversity_term(fake, fake2, into_multi)) == pytest.approx(0.25)
    assert float(hmu_mod.diversity_term(fake, fake2, torch.zeros(4, dtype=torch.bool))) == 0.0


def test_generator_step_into_colour_has_a_diversity_term():
    m = build()
    y = torch.full((4,), COLOUR)
    F_ = m.nets["mapping_network"]
    s1, s2 = F_(torch.randn(4, m.mcfg.latent_dim), y), F_(torch.randn(4, m.mcfg.latent_dim), y)
    _, parts = m._g_loss(images(4, gray=True), torch.full((4,), GRAY), y, s1, s2, 1.0)
    assert float(parts["ds"].detach()) > 0 and float(parts["sty"].detach()) > 0


# --------------------------------------------------------------------------- 4. supervised term on pairs only

def test_supervised_term_uses_aligned_pairs_only():
    m = build("hms")
    assert m.uses_pairs and m.paired_fraction == pytest.approx(0.1) and m.mcfg.lambda_sup == 1.0
    G = m.nets["generator"]
    x = images(4, 3)
    y = torch.tensor([COLOUR, COLOUR, COLOUR, GRAY])
    pair = images(4, 4, gray=True)
    batch = Batch(x, y, x, x, y, x_pair=pair, has_pair=torch.tensor([True, False, True, True]))
    use = m._pair_rows(batch)
    assert use.tolist() == [True, False, True, False]  # a pair exists and the source is colour
    sup = hmu_mod.supervised_term(G, x, y, pair, use, GRAY, m.mcfg.style_dim).detach()
    zero = torch.zeros(2, m.mcfg.style_dim)
    want = (G(x[[0, 2]], zero, y[[0, 2]], torch.full((2,), GRAY)) - pair[[0, 2]]).abs().mean().detach()
    assert float(sup) == pytest.approx(float(want), rel=1e-6)
    changed = pair.clone()
    changed[[1, 3]] = -1.0  # rows without a usable pair do not matter
    again = lambda p: float(hmu_mod.supervised_term(G, x, y, p, use, GRAY, m.mcfg.style_dim).detach())  # noqa: E731
    assert again(changed) == pytest.approx(float(sup))
    changed[0] = 1.0
    assert again(changed) != pytest.approx(float(sup))
    none = Batch(x, y, x, x, y)
    assert not m._pair_rows(none).any()


def test_hmu_has_no_supervised_term_and_no_pairs():
    m = build()
    assert not m.uses_pairs and m.paired_fraction is None
    with pytest.raises(ConfigError, match="hms"):
        build(**{"model.lambda_sup": 1.0})


def test_hms_training_step_logs_the_supervised_term():
    m = build("hms")
    x, y = images(4, 5), torch.tensor([COLOUR, COLOUR, GRAY, GRAY])
    batch = Batch(x, y, images(4, 6), images(4, 7), torch.tensor([GRAY, COLOUR, GRAY, COLOUR]),
                  x_pair=images(4, 8, gray=True), has_pair=torch.tensor([True, False, False, False]))
    logs = m.training_step(batch, 0)
    assert logs["G/latent_sup"] > 0 and all(math.isfinite(v) for v in logs.values())
    logs = build("hmu").training_step(batch, 0)
    assert "G/latent_sup" not in logs


def test_paired_subset_keeps_a_fraction_of_the_digits():
    # 10 contents: 4 aligned pairs (8 images) + 6 unpaired images
    pairs = torch.tensor([1, 0, 3, 2, 5, 4, 7, 6, -1, -1, -1, -1, -1, -1])
    kept = paired_subset(pairs, 0.2, seed=0)  # 0.2 * 10 contents = 2 pairs
    has = kept >= 0
    assert int(has.sum()) == 4 and torch.equal(kept[kept[has]], has.nonzero().flatten())
    assert bool((kept[has] == pairs[has]).all())
    assert torch.equal(paired_subset(pairs, 0.2, seed=0), kept)
    assert paired_subset(pairs, None, seed=0) is pairs
    with pytest.raises(ConfigError, match="aligned pairs"):
        paired_subset(pairs, 0.5, seed=0)


# --------------------------------------------------------------------------- end to end through the CLI

@pytest.mark.skipif(not available(get_spec("cmnist")), reason="cmnist digits not installed")
@pytest.mark.parametrize("name", ["hmu", "hms"])
def test_cli_run_trains_and_evaluates_on_cmnist(name, tmp_path, monkeypatch, capsys):
    import json

    run_dir = tmp_path / name
    code, out, err = run_cli(monkeypatch, capsys, "run", "-m", name, "-d", "cmnist", "-p", "smoke",
                             "--out", str(run_dir), "--no-progress")
    assert code == 0, err + out
    for grid in ("latent", "reference", "deterministic", "latent_codes_to_color"):
        assert (run_dir / "samples" / f"{grid}_00000004.png").is_file()
    assert not list((run_dir / "samples").glob("latent_codes_to_gray_*"))
    logs = [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text().splitlines()]
    assert ("G/latent_sup" in logs[-1]) == (name == "hms")
    df = R.load_records([run_dir])
    fid = df[(df[R.METRIC] == mk.FID) & (df[R.PROTOCOL] == "pairwise")].set_index([R.MODE, R.DOMAIN])
    assert math.isfinite(fid.loc[(LATENT, "gray->color"), R.VALUE])
    assert "not served" in fid.loc[(LATENT, "color->gray"), R.NOTE]
    lp = df[(df[R.METRIC] == mk.LPIPS) & (df[R.DOMAIN] == "color->gray")]
    assert len(lp) and lp[R.VALUE].isna().all()  # diversity of the uni-modal direction: n/a, not 0
    extra = df[df[R.PROTOCOL].isin([COLOUR_PROTOCOL, UNIMODAL_PROTOCOL])].set_index([R.MODE, R.METRIC])
    for key in (mk.COLOUR_RECALL, mk.COLOUR_RECALL_SET, mk.COLOUR_PRECISION, mk.UNIQUE_COLOURS):
        assert 0 <= extra.loc[(LATENT, key), R.VALUE] <= (36 if key == mk.UNIQUE_COLOURS else 1)
    assert 0 <= extra.loc[(REFERENCE, mk.REF_COLOUR_ACC), R.VALUE] <= 1
    assert extra.loc[(DETERMINISTIC, mk.UNIMODAL_MSE), R.VALUE] > 0


def test_unimodal_domains_declared_in_config():
    cfg = build_run_config("hmu", "fashion10", "smoke", {"model.unimodal_domains": "sandal"})
    domains = ["shirt", "sandal", "bag"]
    m = create_method("hmu", cfg, DataInfo("folder:x", domains, 32), "cpu")
    assert m.unimodal == (1,) and m.serves(0, 1, DETERMINISTIC) and m.serves(1, 0, LATENT)
    assert [c.in_channels for c in m.nets["generator"].from_rgb] == [3, 1, 3]
    plain = create_method("hmu", build_run_config("hmu", "fashion10", "smoke"), DataInfo("folder:x", domains, 32), "cpu")
    assert plain.unimodal == () and not plain.serves(0, 1, DETERMINISTIC)
    bad = build_run_config("hmu", "fashion10", "smoke", {"model.unimodal_domains": "sandals"})
    with pytest.raises(ConfigError, match="sandals"):
        create_method("hmu", bad, DataInfo("folder:x", domains, 32), "cpu")


@pytest.mark.skipif(not available(get_spec("cmnist")), reason="cmnist digits not installed")
def test_sample_grids_gray_to_colour_over_codes_and_colour_to_gray_deterministic(tmp_path):
    import numpy as np
    from PIL import Image

    from i2ibench.data.catalog import create_dataset
    from i2ibench.train.sample_grid import CODES_PER_ROW, PAD, grid_size, pick_sample_inputs, save_sample_grids

    val = create_dataset("cmnist", "val", 32)
    m = build()
    inputs = pick_sample_inputs(val, m.latent_dim, seed=1)
    paths = save_sample_grids(m, inputs, tmp_path, step=3)
    assert [p.name for p in paths] == ["latent_00000003.png", "reference_00000003.png", "deterministic_00000003.png",
                                       "latent_codes_to_color_00000003.png"]
    codes = np.asarray(Image.open(paths[3]))
    n_gray = int((inputs.y == GRAY).sum())
    assert codes.shape[:2] == grid_size(n_gray, 1 + CODES_PER_ROW, 32)  # gray inputs x (input + codes)
    tiles = [codes[PAD:PAD + 32, PAD + j * (32 + PAD):PAD + j * (32 + PAD) + 32] for j in range(1, 1 + CODES_PER_ROW)]
    assert len({t.tobytes() for t in tiles}) == CODES_PER_ROW  # every code gives its own output
    det = np.asarray(Image.open(paths[2]))
    colour_col = det[:, PAD + 2 * (32 + PAD):PAD + 2 * (32 + PAD) + 32]
    assert (colour_col == 255).all()  # not served deterministically: blank
    lat = np.asarray(Image.open(paths[0]))
    gray_col = lat[:, PAD + (32 + PAD):PAD + (32 + PAD) + 32]
    assert (gray_col == 255).all()  # no latent translation into gray
    base = build("stargan2")
    names = [p.name for p in save_sample_grids(base, pick_sample_inputs(val, base.latent_dim, seed=1), tmp_path / "b", 3)]
    assert "latent_codes_to_gray_00000003.png" in names and "latent_codes_to_color_00000003.png" in names
