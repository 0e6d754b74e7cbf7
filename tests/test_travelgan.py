"""cliptravelgan, travelgan and cyclegan: networks sized as the official TraVeLGAN, the TraVeL loss on
hand-computed vectors, the frozen encoder, the trained siamese network, the cycle loss, the
flipping task, the LPIPS evaluations and each name end to end through the CLI."""

from __future__ import annotations

import io
import math

import pytest
import torch
from torch import nn

from conftest import run_cli
from i2ibench.config import EvalConfig, build_run_config
from i2ibench.data.catalog import available, create_dataset, get_spec
from i2ibench.data.samplers import TrainSampler
from i2ibench.errors import ConfigError, I2IError
import i2ibench.evaluation.content  # noqa: F401  (registers lpips-io and lpips-truth)
from i2ibench.evaluation.extras import ExtraContext, run_extra_evaluations
from i2ibench.evaluation.protocols import plan_tasks
from i2ibench.evaluation.scoring import Rows
from i2ibench.method import Batch, DataInfo
from i2ibench.methods.travel_losses import (cycle_loss, identity_loss, ordered_pairs, siamese_losses,
                                            transformation_vectors, travel_loss)
from i2ibench.metrics import keys as mk
from i2ibench.nets.travelgan import CenterBatchNorm, Discriminator, SiameseNet, UNetGenerator, count_parameters
from i2ibench.registry import create_method
from i2ibench.report import records as R
from i2ibench.vlm.clip import random_weight_vlm

FLIP = "fashion-inv2plain-skewed"
SQRT10 = math.sqrt(10.0)
needs_fashion = pytest.mark.skipif(not available(get_spec("fashion10")), reason="Fashion-MNIST files not installed")
needs_cmnist = pytest.mark.skipif(not available(get_spec("cmnist")), reason="cmnist digits not installed")


# --------------------------------------------------------------------------- networks

def test_nets_have_the_official_parameter_counts_at_128px_nfilt_64():
    # Counted from the official TF graph (KrishnaswamyLab/travelgan travelgan.py; BN: shift only).
    assert count_parameters(UNetGenerator(128, 64)) == 4_074_691
    assert count_parameters(Discriminator(128, 64)) == 27_815_553
    assert count_parameters(SiameseNet(128, 64, 1000)) == 15_148_904


def test_nets_shapes_range_and_batch_norm_without_scale():
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    y = UNetGenerator(32, 8)(x)
    assert y.shape == x.shape and y.abs().max() < 1  # tanh
    assert Discriminator(32, 8)(x).shape == (3,)
    s = SiameseNet(32, 8, 10)
    assert s(x, 0).shape == (3, 10) and not torch.equal(s(x, 0), s(x, 1))  # domain-specific first layer
    bn = CenterBatchNorm(4)
    assert [n for n, _ in bn.named_parameters()] == ["beta"]  # TF1 batch_norm: center, no scale
    with pytest.raises(ConfigError, match="power of two"):
        UNetGenerator(24, 8)


# --------------------------------------------------------------------------- TraVeL loss

def test_ordered_pairs_are_every_ordered_pair_once():
    i, j = ordered_pairs(5)
    pairs = set(zip(i.tolist(), j.tolist()))
    assert len(i) == 20 and len(pairs) == 20 and all(a != b for a, b in pairs)
    e = torch.tensor([[0.0], [1.0], [3.0]])
    assert sorted(transformation_vectors(e).flatten().tolist()) == [-3, -2, -1, 1, 2, 3]


def test_travel_loss_on_hand_computed_vectors_both_reductions():
    e_x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    e_g = torch.tensor([[0.0, 0.0], [-1.0, 0.0], [0.0, 2.0]])
    # v01=(-1,0) v'01=(1,0): cos -1 -> 2; v02=(0,-1) v'02=(0,-2): 0; v12=(1,-1) v'12=(-1,-2): cos 1/sqrt10.
    # Each reversed pair has the same cosine, so the six ordered pairs sum to 2*(2 + 0 + 1 - 1/sqrt10).
    expected_sum = 2 * (3 - 1 / SQRT10)
    assert travel_loss(e_x, e_g, "sum").item() == pytest.approx(expected_sum, rel=1e-6)
    assert travel_loss(e_x, e_g, "mean").item() == pytest.approx(expected_sum / 6, rel=1e-6)
    with pytest.raises(ConfigError, match="reduction"):
        travel_loss(e_x, e_g, "max")


def test_travel_loss_is_zero_exactly_when_the_map_scales_uniformly_and_positively():
    g = torch.Generator().manual_seed(0)
    e = torch.randn(6, 8, generator=g, dtype=torch.float64)
    shift = torch.randn(1, 8, generator=g, dtype=torch.float64)
    for red in ("sum", "mean"):  # S(G(x)) = a*S(x) + b, a > 0: every v' is a positive multiple of v
        assert travel_loss(e, 3.0 * e + shift, red).item() == pytest.approx(0.0, abs=1e-12)
    # a < 0 reverses every vector: each of the 30 ordered pairs costs 2
    assert travel_loss(e, -2.0 * e + shift, "sum").item() == pytest.approx(60.0)
    # a general linear map turns the vectors: not zero, though the map is affine
    A = torch.randn(8, 8, generator=g, dtype=torch.float64)
    assert travel_loss(e, e @ A.T + shift, "mean").item() > 0.1


class LinearVLM(nn.Module):
    """A frozen linear image encoder S(x) = W flatten(x), recording the size it is shown."""

    name = "linear-test-encoder"

    def __init__(self, size: int, dim: int = 5):
        super().__init__()
        self.w = nn.Parameter(torch.randn(3 * size * size, dim, dtype=torch.float64), requires_grad=False)
        self.seen: list[tuple[int, int]] = []

    def encode_image(self, x, normalize=True):
        self.seen.append(tuple(x.shape[-2:]))
        return x.double().flatten(1) @ self.w


class Affine(nn.Module):
    def __init__(self, gain: float, bias: float):
        super().__init__()
        self.gain, self.bias = gain, bias
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        return self.gain * x + self.bias + 0 * self.dummy


def build(name: str, dataset: str = FLIP, overrides=None, vlm=None, domains=("inverted", "plain")):
    cfg = build_run_config(name, dataset, "smoke", overrides or {})
    return create_method(name, cfg, DataInfo(dataset, list(domains), cfg.train.img_size), "cpu", **({"vlm": vlm} if vlm is not None else {}))


def ab_batch(m, seed=0):
    g = torch.Generator().manual_seed(seed)
    n, s = m.cfg.train.batch_size, m.cfg.train.img_size
    img = lambda: torch.rand(n, 3, s, s, generator=g) * 2 - 1  # noqa: E731
    return Batch(img(), torch.zeros(n, dtype=torch.long), img(), img(), torch.ones(n, dtype=torch.long))


def test_travel_term_is_zero_when_G_is_an_affine_map_of_S_embedding_and_S_sees_the_centre_crop():
    size = 32
    side = round(0.875 * size)  # 28: the paper's 224 of 256
    m = build("cliptravelgan", vlm=LinearVLM(side))
    x = ab_batch(m).x_src.double()
    m.nets["generator"] = Affine(0.5, 0.1)  # G(x) = 0.5x + 0.1 -> S(G(x)) = 0.5 S(x) + W·0.1
    e_x, e_g = m.embed(x, 0), m.embed(m.nets["generator"](x), 1)
    assert m.vlm.seen == [(side, side), (side, side)]
    assert travel_loss(e_x, e_g, "sum").item() == pytest.approx(0.0, abs=1e-9)
    m.nets["generator"] = Affine(-0.5, 0.1)  # negative gain flips every transformation vector
    e_g = m.embed(m.nets["generator"](x), 1)
    n = x.shape[0]
    assert travel_loss(e_x, e_g, "sum").item() == pytest.approx(2 * n * (n - 1))


def test_identity_loss_on_hand_computed_vectors():
    e_x = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    e_g = torch.tensor([[2.0, 0.0], [1.0, 1.0]])
    assert identity_loss(e_x, e_g, "sum").item() == pytest.approx(1 - 1 / math.sqrt(2))
    assert identity_loss(e_x, e_g, "mean").item() == pytest.approx((1 - 1 / math.sqrt(2)) / 2)


def test_siamese_losses_follow_the_official_terms():
    s_x = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    s_g = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    parts = siamese_losses(s_x, s_g, margin=10.0)
    # v = ±(1,0), |v|² = 1 -> margin 9; v - v' = ±(1,0) -> mse mean over 2 dims = 0.5; cos = 1 -> -1
    assert parts["margin"].item() == pytest.approx(9.0)
    assert parts["mse"].item() == pytest.approx(0.5)
    assert parts["cos"].item() == pytest.approx(-1.0)


# --------------------------------------------------------------------------- the frozen encoder

def test_frozen_vlm_gets_no_gradient_and_is_not_checkpointed_but_G_learns_through_it():
    vlm = random_weight_vlm("tiny-clip", 0)
    before = {k: v.clone() for k, v in vlm.state_dict().items()}
    m = build("cliptravelgan", vlm=vlm, overrides={"model.lambda_adv": 0.0})  # the TraVeL term alone
    g0 = [p.clone() for p in m.nets["generator"].parameters()]
    m.training_step(ab_batch(m), 0)
    assert all(p.grad is None for p in vlm.parameters())
    assert all(torch.equal(v, before[k]) for k, v in vlm.state_dict().items())
    assert any(not torch.equal(a, b) for a, b in zip(g0, m.nets["generator"].parameters()))  # gradient flowed through S
    state = m.state_dict()
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=True)
    assert set(loaded["nets"]) == {k for k in loaded["nets"] if k.startswith(("generator.", "discriminator."))}
    n_vlm = sum(p.numel() for p in vlm.parameters())
    n_saved = sum(t.numel() for t in loaded["nets"].values())
    assert n_saved == sum(t.numel() for t in m.nets.state_dict().values()) and n_saved < n_vlm
    assert m.frozen_models() == {"vlm": vlm.name}


def test_random_encoder_is_named_as_random_everywhere():
    m = build("cliptravelgan", overrides={"model.encoder": "random"})
    assert m.frozen_models()["vlm"].startswith("random-weights:") and "seed=0" in m.frozen_models()["vlm"]
    assert m.setting().startswith("S=random-weight VLM")
    assert build("cliptravelgan").frozen_models()["vlm"].startswith("tiny-clip")


def test_trained_encoder_is_updated_by_G_optimiser():
    m = build("travelgan")
    S = m.nets["siamese"]
    assert set(m.optims) == {"generator", "discriminator"}  # no optimiser of its own
    g_params = {id(p) for group in m.optims["generator"].param_groups for p in group["params"]}
    assert {id(p) for p in S.parameters()} <= g_params
    assert not {id(p) for p in S.parameters()} & {id(p) for g in m.optims["discriminator"].param_groups for p in g["params"]}
    s0 = [p.clone() for p in S.parameters()]
    logs = m.training_step(ab_batch(m), 0)
    assert {"S/margin", "S/mse", "S/cos"} <= set(logs)
    assert any(not torch.equal(a, b) for a, b in zip(s0, S.parameters()))
    assert all(len(m.optims["generator"].state[p]) for p in S.parameters())  # Adam state of G's optimiser
    assert m.frozen_models() == {}


@pytest.mark.parametrize("overrides, match", [
    ({"model.encoder": "frozen"}, "model.encoder"),
    ({"model.encoder": "trained", "model.loss": "identity"}, "identity needs a VLM"),
    ({"model.reduction": "median"}, "model.reduction"),
    ({"model.crop_fraction": 1.5}, "crop_fraction"),
])
def test_bad_switches_are_config_errors(overrides, match):
    with pytest.raises(ConfigError, match=match):
        build("cliptravelgan", overrides=overrides, vlm=LinearVLM(28))


def test_travelgan_refuses_a_vlm_encoder_and_methods_without_a_vlm_refuse_vlm():
    with pytest.raises(ConfigError, match="cliptravelgan"):
        build("travelgan", overrides={"model.encoder": "clip"})
    for name in ("travelgan", "cyclegan"):  # a record must never name a VLM the method did not use
        cfg = build_run_config(name, FLIP, "smoke")
        cfg.vlm = "tiny-clip"
        with pytest.raises(ConfigError, match="--vlm"):
            create_method(name, cfg, DataInfo(FLIP, ["inverted", "plain"], 32), "cpu")


def test_one_sided_methods_serve_a_to_b_only_and_cyclegan_both():
    m = build("cliptravelgan", vlm=LinearVLM(28))
    assert m.serves(0, 1, "deterministic") and not m.serves(1, 0, "deterministic") and not m.serves(0, 1, "latent")
    c = build("cyclegan")
    assert c.serves(0, 1, "deterministic") and c.serves(1, 0, "deterministic")
    with pytest.raises(ValueError, match="A -> B only"):
        m.translate(torch.zeros(1, 3, 32, 32), torch.tensor([0]))


# --------------------------------------------------------------------------- cyclegan

def test_cycle_loss_of_a_perfect_inverse_pair_is_zero():
    x = torch.rand(4, 3, 8, 8) * 2 - 1
    g, f = Affine(2.0, 1.0), Affine(0.5, -0.5)  # f(g(x)) = x
    assert cycle_loss(x, f(g(x))).item() == pytest.approx(0.0, abs=1e-6)
    assert cycle_loss(x, g(g(x))).item() > 0.5
    m = build("cyclegan")
    m.nets["generator_ab"], m.nets["generator_ba"] = g, f  # an exact inverse pair inside the method
    logs = m.training_step(ab_batch(m), 0)
    assert logs["G/cycle"] == pytest.approx(0.0, abs=1e-6)


def test_cyclegan_translates_each_row_into_its_target():
    m = build("cyclegan")
    m.nets["generator_ab"], m.nets["generator_ba"] = Affine(1.0, 0.25), Affine(1.0, -0.25)
    x = torch.zeros(2, 3, 32, 32)
    y = m.translate(x, torch.tensor([1, 0]))
    assert torch.allclose(y[0], torch.full_like(y[0], 0.25)) and torch.allclose(y[1], torch.full_like(y[1], -0.25))


# --------------------------------------------------------------------------- sampling, data, metrics

def test_two_domain_batches_take_sources_from_a_and_references_from_b():
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    s = TrainSampler(labels, 16, seed=3, domains=(0, 1))
    idx = s.indices(5)
    assert set(labels[idx.src].tolist()) == {0} and set(labels[idx.ref].tolist()) == {1}
    assert set(idx.y_ref.tolist()) == {1} and torch.equal(idx.src, s.indices(5).src)  # pure in (seed, step)


@needs_fashion
def test_flipping_task_skews_b_and_knows_every_true_translation():
    val = create_dataset(FLIP, "val", 32)
    content, a, b = val.extras["content"], val.labels == 0, val.labels == 1
    assert torch.bincount(content[a], minlength=10)[[0, 1, 7, 8]].tolist() == [250] * 4
    assert torch.bincount(content[b], minlength=10)[[0, 1, 7, 8]].tolist() == [250, 50, 50, 50]
    src = val.extras["source_index"]
    assert not set(src[a].tolist()) & set(src[b].tolist())  # unpaired: disjoint images
    i = val.indices_of(0)[:3]
    truth, known = val.true_translation(i)
    assert known.all() and torch.allclose(truth, -val.images(i))  # un-inverting is the answer
    assert val.images(i).mean() > 0  # inverted Fashion-MNIST: mostly white
    train = create_dataset(FLIP, "train", 32)
    assert train.counts() == {"inverted": 11_000, "plain": 4_400}


@needs_cmnist
def test_color_to_gray_truth_is_the_gray_pair_and_gray_to_color_has_none():
    val = create_dataset("cmnist-color2gray", "val", 32)
    assert val.domains == ["color", "gray"]
    colour, gray = val.indices_of(0)[:2], val.indices_of(1)[:2]
    truth, known = val.true_translation(torch.cat([colour, gray]))
    assert known.tolist() == [True, True, False, False]
    assert torch.equal(truth[:2], val.images(val.pairs[colour]))
    assert torch.equal(val.extras["digit"][colour], val.extras["digit"][val.pairs[colour]])


class _Fixed:
    """A deterministic one-sided 'method' whose translation is a fixed function of the input."""

    name = "fixed"
    modes = ("deterministic",)
    device = torch.device("cpu")

    def __init__(self, fn):
        self.fn = fn

    def serves(self, src, trg, mode):
        return (src, trg, mode) == (0, 1, "deterministic")

    def domain_of_class(self, k):
        return k

    def translate(self, x, target, z=None, ref=None):
        return self.fn(x)


@needs_fashion
def test_lpips_evaluations_catch_output_equal_to_input_and_score_the_true_answer():
    val = create_dataset(FLIP, "val", 32)
    ev = EvalConfig(max_src_per_domain=4, batch_size=8)
    tasks = plan_tasks([val.indices_of(d) for d in range(2)], ev.max_src_per_domain, ev.seed)

    def rows_for(fn):
        rows = Rows({})
        run_extra_evaluations(val.spec.evaluations, ExtraContext(_Fixed(fn), val, ev, tasks, None, None, rows))
        return {(r[R.METRIC], r[R.SCOPE]): r for r in rows.rows}

    same = rows_for(lambda x: x)  # no translation at all: the paper's lambda >= 0.003 failure
    assert same[(mk.LPIPS_IO, R.SCOPE_OVERALL)][R.VALUE] == pytest.approx(0.0, abs=1e-6)
    assert same[(mk.LPIPS_TRUTH, R.SCOPE_OVERALL)][R.VALUE] > 0.05
    right = rows_for(lambda x: -x)  # un-inverting: exactly the true translation
    assert right[(mk.LPIPS_TRUTH, R.SCOPE_OVERALL)][R.VALUE] == pytest.approx(0.0, abs=1e-6)
    assert right[(mk.LPIPS_IO, R.SCOPE_OVERALL)][R.VALUE] > 0.05
    task = right[(mk.LPIPS_IO, R.SCOPE_TASK)]
    assert task[R.DOMAIN] == "inverted->plain" and task[R.N_FAKE] == 4
    assert "1 of 2 tasks" in right[(mk.LPIPS_IO, R.SCOPE_OVERALL)][R.NOTE]


# --------------------------------------------------------------------------- end to end through the CLI

E2E = [
    ("cliptravelgan", FLIP, [], "tiny-clip"),
    ("cliptravelgan", FLIP, ["--set", "model.encoder=random"], "random-weights:"),
    ("cliptravelgan", "cmnist-gray2color", ["--set", "model.loss=identity"], "tiny-clip"),
    ("travelgan", "fashion-sneaker2boot", [], ""),
    ("cyclegan", "cmnist-color2gray", [], ""),
]


@pytest.mark.parametrize("method, dataset, extra, vlm", E2E, ids=[f"{m}-{d}{'-' + e[1] if e else ''}" for m, d, e, _ in E2E])
def test_each_name_trains_and_evaluates_at_smoke_through_the_cli(method, dataset, extra, vlm, tmp_path, monkeypatch, capsys):
    if not available(get_spec(dataset)):
        pytest.skip(f"{dataset} files not installed")
    run_dir = tmp_path / "run"
    code, out, err = run_cli(monkeypatch, capsys, "run", "-m", method, "-d", dataset, "-p", "smoke",
                             "--out", str(run_dir), "--no-progress", *extra)
    assert code == 0, err
    assert (run_dir / "samples" / "deterministic_00000004.png").is_file()
    df = R.load_records([run_dir])
    assert set(df[df[R.PROTOCOL].isin(["pairwise", "pooled"])][R.MODE]) == {"deterministic"}
    assert (df[R.VLM].str.startswith(vlm) if vlm else df[R.VLM].eq("")).all()  # every row names its S
    assert df[R.SETTING].ne("").all()
    overall = df[df[R.SCOPE] == R.SCOPE_OVERALL].set_index([R.PROTOCOL, R.METRIC])[R.VALUE]
    assert math.isfinite(overall[("pairwise", mk.MFID)]) and math.isfinite(overall[("lpips-io", mk.LPIPS_IO)])
    if "lpips-truth" in get_spec(dataset).evaluations:
        assert math.isfinite(overall[("lpips-truth", mk.LPIPS_TRUTH)])
    served = df[(df[R.METRIC] == mk.FID) & (df[R.PROTOCOL] == "pairwise")].set_index(R.DOMAIN)[R.VALUE]
    a, b = get_spec(dataset).domains
    assert math.isfinite(served[f"{a}->{b}"])
    assert math.isfinite(served[f"{b}->{a}"]) == (method == "cyclegan")  # one-sided methods: A -> B only


def test_tradeoff_points_take_the_a_to_b_task_and_plot(tmp_path):
    from i2ibench.report.tradeoff import plot_tradeoff, tradeoff_points

    def row(run, setting, protocol, metric, scope, domain, value, method="cliptravelgan"):
        return {R.METHOD: method, R.DATASET: FLIP, R.SETTING: setting, R.RUN: run, R.PROTOCOL: protocol,
                R.MODE: "deterministic", R.METRIC: metric, R.SCOPE: scope, R.DOMAIN: domain, R.VALUE: value,
                R.SOURCE: R.SOURCE_REPRODUCED}

    ab, ba = "inverted->plain", "plain->inverted"
    rows = []
    for run, lam, f, t in (("r1", "lambda=4.8768", 100.0, 0.4), ("r2", "lambda=162.56", 180.0, 0.1)):
        rows += [row(run, lam, "pairwise", mk.FID, R.SCOPE_TASK, ab, f),
                 row(run, lam, "pairwise", mk.MFID, R.SCOPE_OVERALL, "", f),
                 row(run, lam, "lpips-truth", mk.LPIPS_TRUTH, R.SCOPE_TASK, ab, t)]
    rows += [row("r3", "lambda_cyc=10", "pairwise", mk.FID, R.SCOPE_TASK, ab, 90.0, "cyclegan"),
             row("r3", "lambda_cyc=10", "pairwise", mk.FID, R.SCOPE_TASK, ba, 300.0, "cyclegan"),
             row("r3", "lambda_cyc=10", "lpips-truth", mk.LPIPS_TRUTH, R.SCOPE_TASK, ba, 0.9, "cyclegan"),
             row("r3", "lambda_cyc=10", "lpips-truth", mk.LPIPS_TRUTH, R.SCOPE_TASK, ab, 0.3, "cyclegan")]
    import pandas as pd

    pts = tradeoff_points(pd.DataFrame(rows), mk.LPIPS_TRUTH).set_index(R.RUN)
    assert pts.loc["r3", mk.FID] == 90.0 and pts.loc["r3", mk.LPIPS_TRUTH] == 0.3  # the A->B task, not B->A
    assert pts.loc["r2", mk.FID] == 180.0 and pts.loc["r1", mk.LPIPS_TRUTH] == 0.4
    assert plot_tradeoff(pts.reset_index(), mk.LPIPS_TRUTH, tmp_path / "t.png").stat().st_size > 1000
    with pytest.raises(I2IError, match="content_preservation"):
        tradeoff_points(pd.DataFrame(rows), mk.CONTENT_PRESERVATION)
