"""The optimised training steps compute what the plain ones do (issue 17).

Two kinds of change, two kinds of proof:
- work shared between the D and G steps (one generator encoding, one latent fake) uses the
  same kernels on the same numbers: the weights after three iterations are bit-identical to
  the plain step's in fp32 (fused convolutions and fused optimisers switched off; stargan2 and
  lanit; tunit's shared encoder pass sums two gradients before its weight gradient, see below);
- fused resampling convolutions and fused optimisers reorder fp32 sums. In fp32, Adam's first
  steps (beta1 = 0: update = lr * g / |g|) turn a round-off difference in a gradient near 0 into a
  step of up to lr, so equality after training is checked in float64, where round-off is 1e-16:
  all weights after three iterations equal the plain step's to 1e-9. Each fused operation alone
  is checked in fp32 against its plain counterpart at fp32 tolerances.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from i2ibench.config import build_run_config
from i2ibench.method import Batch, DataInfo
from i2ibench.nets.stargan2 import (AdainResBlk, Generator, ResBlk, conv3_avgpool, set_fused_resampling,
                                    upsample_conv3)
from i2ibench.registry import create_method
from i2ibench.train.optim import adam, rmsprop

K = 4


@pytest.fixture
def float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield torch.float64
    torch.set_default_dtype(old)


def _conv(cin: int, cout: int, dtype) -> torch.nn.Conv2d:
    torch.manual_seed(0)
    return torch.nn.Conv2d(cin, cout, 3, 1, 1).to(dtype)


# float64: to 1e-12; fp32: torch.testing's fp32 defaults (rtol 1.3e-6, atol 1e-5)
@pytest.mark.parametrize("dtype,tol", [(torch.float64, {"rtol": 0, "atol": 1e-12}), (torch.float32, {})])
def test_conv3_avgpool_is_conv_then_pool(dtype, tol):
    conv = _conv(5, 7, dtype)
    x = torch.randn(2, 5, 8, 8, dtype=dtype, requires_grad=True)
    plain = F.avg_pool2d(conv(x), 2)
    fused = conv3_avgpool(x, conv)
    torch.testing.assert_close(fused, plain, **tol)
    g = torch.randn_like(plain)
    gx_p, gw_p, gb_p = torch.autograd.grad(plain, (x, conv.weight, conv.bias), g)
    gx_f, gw_f, gb_f = torch.autograd.grad(fused, (x, conv.weight, conv.bias), g)
    for a, b in ((gx_f, gx_p), (gw_f, gw_p), (gb_f, gb_p)):
        torch.testing.assert_close(a, b, **tol)


# float64: to 1e-12; fp32: torch.testing's fp32 defaults (rtol 1.3e-6, atol 1e-5)
@pytest.mark.parametrize("dtype,tol", [(torch.float64, {"rtol": 0, "atol": 1e-12}), (torch.float32, {})])
def test_upsample_conv3_is_upsample_then_conv(dtype, tol):
    conv = _conv(5, 7, dtype)
    x = torch.randn(2, 5, 6, 6, dtype=dtype, requires_grad=True)
    plain = conv(F.interpolate(x, scale_factor=2, mode="nearest"))
    fused = upsample_conv3(x, conv)
    assert fused.shape == (2, 7, 12, 12)
    torch.testing.assert_close(fused, plain, **tol)
    g = torch.randn_like(plain)
    for a, b in zip(torch.autograd.grad(fused, (x, conv.weight, conv.bias), g),
                    torch.autograd.grad(plain, (x, conv.weight, conv.bias), g)):
        torch.testing.assert_close(a, b, **tol)


def test_fused_blocks_equal_unfused_blocks_with_double_backward(float64):
    """The R1 penalty differentiates through the discriminator twice: fused blocks must agree there too."""
    torch.manual_seed(0)
    down, up = ResBlk(4, 6, normalize=True, downsample=True), AdainResBlk(6, 4, 3, upsample=True)
    x, s = torch.randn(2, 4, 8, 8, requires_grad=True), torch.randn(2, 3)
    results = []
    for fused in (False, True):
        set_fused_resampling(down, fused), set_fused_resampling(up, fused)
        out = up(down(x), s)
        (gx,) = torch.autograd.grad(out.sum(), x, create_graph=True)
        grads = torch.autograd.grad(gx.pow(2).sum(), list(down.parameters()) + list(up.parameters()),
                                    materialize_grads=True)  # biases after the last conv: zero
        results.append((out, gx, grads))
    (o0, g0, p0), (o1, g1, p1) = results
    torch.testing.assert_close(o1, o0, rtol=0, atol=1e-12)
    torch.testing.assert_close(g1, g0, rtol=0, atol=1e-12)
    for a, b in zip(p1, p0):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-11)


def test_generator_encode_then_decode_is_forward_bitwise():
    torch.manual_seed(0)
    g = Generator(32, 8, 16, 0, 8)
    x, s, s2 = torch.randn(2, 3, 32, 32), torch.randn(2, 8), torch.randn(2, 8)
    enc = g.encode_only(x)
    assert torch.equal(g.decode_from(enc, s), g(x, s))
    assert torch.equal(g.decode_from(enc, s2), g(x, s2))  # one encoding serves any style


@pytest.mark.parametrize("make", [
    lambda p, plain: adam(p, lr=1e-3, betas=(0.0, 0.99), weight_decay=1e-4, plain=plain),
    lambda p, plain: rmsprop(p, lr=1e-3, weight_decay=1e-4, plain=plain),
], ids=["adam", "rmsprop"])
def test_fused_optimisers_equal_the_per_parameter_loop(make):
    torch.manual_seed(0)
    shapes = [(7, 5, 3, 3), (7,), (11, 13)]
    params = {plain: [torch.nn.Parameter(torch.randn(s)) for s in shapes] for plain in (True, False)}
    for a, b in zip(params[True], params[False]):
        b.data.copy_(a.data)
    opts = {plain: make(ps, plain) for plain, ps in params.items()}
    assert opts[True].param_groups[0].get("fused") in (None, False)
    assert opts[False].param_groups[0].get("fused") or opts[False].param_groups[0].get("foreach")
    g = torch.Generator().manual_seed(1)
    for _ in range(3):
        grads = [torch.randn(s, generator=g) for s in shapes]
        for plain in (True, False):
            for p, gr in zip(params[plain], grads):
                p.grad = gr.clone()
            opts[plain].step()
    for a, b in zip(params[True], params[False]):
        torch.testing.assert_close(b.data, a.data)  # fp32 defaults: rtol 1.3e-6, atol 1e-5


# --------------------------------------------------------------------------- whole iterations

@pytest.fixture(scope="module")
def test_vlm():
    """A small random-weight CLIP (as tests/test_lanit.py): lanit's code path, not a user-facing model."""
    import open_clip
    from open_clip.model import CLIP

    from i2ibench.vlm.model import VLM

    torch.manual_seed(0)
    model = CLIP(embed_dim=32, vision_cfg=dict(image_size=16, patch_size=4, width=32, layers=1, head_width=16),
                 text_cfg=dict(context_length=32, vocab_size=49408, width=32, heads=2, layers=1))
    return VLM(model, open_clip.tokenizer.SimpleTokenizer(context_length=32), "random-test-clip", "test")


# Per method: the first step index (tunit: its joint phase, where G and D train), the smoke-preset
# overrides; lanit at the test CLIP's 16 px.
METHODS = {"stargan2": (0, {}), "tunit": (2, {}), "lanit": (0, {"train.img_size": 16}), "hmu": (0, {})}


def _method(name: str, plain: bool, dtype=torch.float32, vlm=None, **overrides):
    cfg = build_run_config(name, "fashion10", "smoke", {"train.plain_step": plain, **METHODS[name][1], **overrides})
    torch.manual_seed(0)
    info = DataInfo("t", [f"d{i}" for i in range(K)], cfg.train.img_size)
    if name == "lanit":
        from i2ibench.methods.lanit import LANIT
        m = LANIT(cfg, info, "cpu", vlm=vlm.to(dtype))
    else:
        m = create_method(name, cfg, info, "cpu")
    m.nets.to(dtype), m.nets_ema.to(dtype)
    if name == "tunit":
        m.queue.keys = m.queue.keys.to(dtype)
    return m.train(), cfg


def _batches(cfg, n: int = 3) -> list[Batch]:
    g = torch.Generator().manual_seed(1)
    s, b = cfg.train.img_size, cfg.train.batch_size
    img = lambda: (torch.rand(b, 3, s, s, generator=g) * 2 - 1).to(torch.get_default_dtype())  # noqa: E731
    y = lambda: torch.randint(0, K, (b,), generator=g)  # noqa: E731
    return [Batch(x_src=img(), y_src=y(), x_ref=img(), x_ref2=img(), y_ref=y()) for _ in range(n)]


def _train(m, cfg, first_step: int = 0) -> dict[str, float]:
    torch.manual_seed(5)  # the step's own draws (latent codes, augmentations) come from the global RNG
    logs = {}
    for i, b in enumerate(_batches(cfg)):
        logs = m.training_step(b, first_step + i)
    return logs


def _weights(m) -> dict[str, torch.Tensor]:
    out = {f"nets.{k}": v for k, v in m.nets.state_dict().items()}
    out.update({f"ema.{k}": v for k, v in m.nets_ema.state_dict().items()})
    return out


def _plain_kernels(m) -> None:
    """Fused convolutions and optimiser kernels off: what is left is the shared work."""
    for group in (m.nets, m.nets_ema):
        set_fused_resampling(group, False)
    for o in m.optims.values():
        for g in o.param_groups:
            if isinstance(o, torch.optim.Adam):
                g["fused"], g["foreach"] = None, False
            else:
                g["foreach"] = False


def test_plain_step_switch_selects_the_plain_kernels():
    plain, _ = _method("stargan2", True)
    fast, _ = _method("stargan2", False)
    blocks = lambda m: [b for b in m.nets.modules() if isinstance(b, (ResBlk, AdainResBlk))]  # noqa: E731
    assert blocks(plain) and not any(b.fused for b in blocks(plain))
    assert all(b.fused for b in blocks(fast))
    assert not any(g.get("fused") for o in plain.optims.values() for g in o.param_groups)
    assert all(g.get("fused") for o in fast.optims.values() for g in o.param_groups)


# tunit's shared encoder pass receives the gradients of both halves of 2b's batch summed (the plain
# pass over [x, x] sums them inside the convolution's weight gradient): a different summation
# order, so tunit's check is the float64 one.
@pytest.mark.parametrize("name", ["lanit", "stargan2"])
def test_shared_work_gives_bit_identical_weights_in_fp32(name, test_vlm):
    ref, cfg = _method(name, True, vlm=test_vlm)
    opt, _ = _method(name, False, vlm=test_vlm)
    _plain_kernels(opt)
    w_init = {k: v.clone() for k, v in _weights(ref).items()}
    first = METHODS[name][0]
    logs_ref, logs_opt = _train(ref, cfg, first), _train(opt, cfg, first)
    w_ref, w_opt = _weights(ref), _weights(opt)
    assert w_ref.keys() == w_opt.keys()
    assert any(not torch.equal(w_ref[k], w_init[k]) for k in w_ref), "three iterations must change the weights"
    bad = [k for k in w_ref if not torch.equal(w_ref[k], w_opt[k])]
    assert not bad, f"weights differ after 3 iterations: {bad[:5]}"
    assert logs_ref == logs_opt


@pytest.mark.parametrize("name", sorted(METHODS))
def test_optimised_step_equals_plain_step_in_float64(name, float64, test_vlm):
    # lanit's domain regularisation scores in fp32 (LANIT casts CLIP features to float), which
    # would bring fp32 round-off back into a float64 comparison: it is off here and on in the fp32 test
    extra = {"model.domain_reg": False} if name == "lanit" else {}
    ref, cfg = _method(name, True, float64, vlm=test_vlm, **extra)
    opt, _ = _method(name, False, float64, vlm=test_vlm, **extra)
    assert any(g.get("fused") or g.get("foreach") for o in opt.optims.values() for g in o.param_groups)
    _train(ref, cfg, METHODS[name][0]), _train(opt, cfg, METHODS[name][0])
    w_ref, w_opt = _weights(ref), _weights(opt)
    worst = max((w_ref[k] - w_opt[k]).abs().max().item() for k in w_ref if w_ref[k].is_floating_point())
    assert worst < 1e-9, f"max weight difference after 3 iterations {worst:.3g}"


def test_lanit_label_views_share_one_clip_pass_per_image_batch(test_vlm):
    m, cfg = _method("lanit", False, vlm=test_vlm)
    x = torch.rand(3, 3, 16, 16) * 2 - 1
    calls = []
    encode = m.vlm.encode_image
    m.vlm.encode_image = lambda t, **kw: calls.append(1) or encode(t, **kw)
    expected = [m.labels_of(x.clone(), "ema"), m.labels_of(x.clone(), "initial")]
    expected_scores = [m.domain_scores(x.clone(), "ema"), m.domain_scores(x.clone(), "initial")]
    n_plain = len(calls)
    views = m.label_views()
    got = [v.labels(x) for v in views] + [v.scores(x) for v in views]
    assert n_plain == 4 and len(calls) == n_plain + 1  # four uses, one pass
    for a, b in zip(got, expected + expected_scores):
        assert torch.equal(a, b)
    x.mul_(-1)  # changed in place: a new pass, new labels
    torch.testing.assert_close(views[0].scores(x), m.domain_scores(x.clone(), "ema"))
    assert len(calls) == n_plain + 3


def test_fast_mode_sets_cudnn_benchmark_only_for_cuda_fast_runs(monkeypatch):
    from i2ibench.train.device import configure_fast_mode
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    assert not configure_fast_mode(torch.device("cpu"), "bf16", True)
    assert not configure_fast_mode(torch.device("cuda", 0), "fp32", False)  # fp32 stays reproducible
    assert torch.backends.cudnn.benchmark is False
    assert configure_fast_mode(torch.device("cuda", 0), "bf16", False)
    assert torch.backends.cudnn.benchmark is True


def test_resuming_a_plain_checkpoint_keeps_this_runs_optimiser_kernels():
    plain, cfg = _method("stargan2", True)
    _train(plain, cfg)
    fast, _ = _method("stargan2", False)
    fast.load_state_dict(plain.state_dict())
    assert all(g.get("fused") for o in fast.optims.values() for g in o.param_groups)
    for name, o in fast.optims.items():  # the moments came along
        src = plain.optims[name].state_dict()["state"]
        for k, st in o.state_dict()["state"].items():
            assert torch.equal(st["exp_avg_sq"], src[k]["exp_avg_sq"])
