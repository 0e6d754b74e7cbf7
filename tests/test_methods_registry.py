"""Every registered method, at its smoke preset: it trains, translates, and its state resumes exactly.

Parametrised over ``list_methods()``, so a newly registered method is tested here without
touching this file.
"""

import io

import pytest
import torch

from i2ibench.config import PRESETS, build_run_config, ema_horizon_warning
from i2ibench.method import Batch, DataInfo, Method
from i2ibench.methods.stargan2 import BackboneConfig
from i2ibench.names import LABEL_KINDS, LATENT, MODES, REFERENCE
from i2ibench.registry import DATASETS, create_method, get_method_class

from conftest import registered_methods

# The real fashion10 domain names: methods may map them to prompts or word lists.
DOMAINS = DATASETS.get("fashion10")().domains


def build(name: str, seed: int) -> Method:
    cfg = build_run_config(name, "fashion10", "smoke")
    torch.manual_seed(seed)
    return create_method(name, cfg, DataInfo("fashion10", DOMAINS, cfg.train.img_size), "cpu")


def random_batch(m: Method, seed: int) -> Batch:
    g = torch.Generator().manual_seed(seed)
    n, size, k = m.cfg.train.batch_size, m.cfg.train.img_size, len(DOMAINS)
    img = lambda: torch.rand(n, 3, size, size, generator=g) * 2 - 1  # noqa: E731
    return Batch(img(), torch.randint(0, k, (n,), generator=g), img(), img(), torch.randint(0, k, (n,), generator=g))


def translations(m: Method, seed: int) -> dict[str, torch.Tensor]:
    """One translation per mode the method has, into a target class it serves in that mode."""
    g = torch.Generator().manual_seed(seed)
    size = m.cfg.train.img_size
    x = torch.rand(2, 3, size, size, generator=g) * 2 - 1
    kw = {"src": torch.tensor([0, 2])} if m.needs_source else {}  # the inputs' own domains (HMU)
    out = {}
    for mode in m.modes:
        trg = next((t for t in range(len(DOMAINS)) if any(m.serves(s, t, mode) for s in range(len(DOMAINS)))), None)
        if trg is None:  # e.g. deterministic translation into a uni-modal domain this dataset does not have
            continue
        domain = m.domain_of_class(trg)
        target = None if domain is None else torch.full((2,), domain, dtype=torch.long)
        if mode == LATENT and m.latent_targets_from_references:
            target = m.target_of_reference(torch.rand(2, 3, size, size, generator=g) * 2 - 1)
        if mode == LATENT:
            out[mode] = m.translate(x, target, z=torch.randn(2, m.latent_dim, generator=g), **kw)
        elif mode == REFERENCE:
            out[mode] = m.translate(x, target, ref=torch.rand(2, 3, size, size, generator=g) * 2 - 1, **kw)
        else:
            out[mode] = m.translate(x, target, **kw)
    return out


def checkpoint_round_trip(state):
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)  # checkpoints must load without arbitrary pickles


@pytest.mark.parametrize("name", registered_methods())
def test_method_declares_presets_and_modes(name):
    cls = get_method_class(name)
    assert set(PRESETS) <= set(cls.presets)
    assert cls.modes and set(cls.modes) <= set(MODES)
    assert cls.label_kind in LABEL_KINDS


@pytest.mark.parametrize("name", [n for n in registered_methods()
                                  if issubclass(get_method_class(n).Config, BackboneConfig)])
def test_shortened_presets_give_the_shared_backbone_one_optimiser_setting(name):
    """README "Presets": cpu and smoke use lr 1e-4 for every backbone net, the mapping network too."""
    for preset in ("cpu", "smoke"):
        m = build_run_config(name, "fashion10", preset).model
        assert (m.lr, m.f_lr) == (1e-4, 1e-4), preset


def test_paper_presets_score_against_their_papers_real_split():
    official = {"stargan2": "train", "tunit": "train", "lanit": "val"}  # metrics/eval.py, validation.py
    for name, split in official.items():
        assert build_run_config(name, "fashion10", "paper").eval.real_split == split, name
    lanit = build_run_config("lanit", "fashion10", "paper").eval  # 9 rounds x 8 sources x 5 outputs
    assert lanit.rounds * lanit.max_src_per_domain * lanit.outs_per_input * 9 == 3_240


@pytest.mark.parametrize("name", registered_methods())
def test_smoke_training_translation_and_exact_resume(name):
    m = build(name, seed=0)
    for step in range(2):
        losses = m.training_step(random_batch(m, step), step)
        assert losses and all(isinstance(v, float) and torch.isfinite(torch.tensor(v)) for v in losses.values())
    outs = translations(m, seed=7)
    for mode, y in outs.items():
        assert y.shape == (2, 3, m.cfg.train.img_size, m.cfg.train.img_size), mode
        assert torch.isfinite(y).all(), mode

    restored = build(name, seed=123)  # different initial weights, then overwritten
    restored.load_state_dict(checkpoint_round_trip(m.state_dict()))
    for mode, y in translations(restored, seed=7).items():
        assert torch.equal(y, outs[mode]), mode

    # one more step from the same RNG state must give the same weights in both
    for mm in (m, restored):
        torch.manual_seed(5)
        mm.training_step(random_batch(mm, 2), 2)
    a, b = m.state_dict()["nets"], restored.state_dict()["nets"]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


SHORTENED = ("cpu", "quick")  # presets that train (smoke runs only pin code: README "Results")


@pytest.mark.parametrize("name", registered_methods())
def test_shortened_presets_keep_the_ema_horizon_within_half_the_run(name):
    """README "Configuration": a shortened preset's EMA horizon 1/(1 - beta) is at most half the
    steps its EMA runs, so the evaluated EMA generator is not mostly its starting state."""
    checked = 0
    for preset in sorted(set(get_method_class(name).presets) & set(SHORTENED)):
        cfg = build_run_config(name, "fashion10", preset)
        beta = getattr(cfg.model, "ema_beta", None)
        if beta is None:
            continue  # no EMA generator (cliptravelgan, travelgan, cyclegan)
        assert ema_horizon_warning(cfg) is None, (preset, beta, cfg.train.total_iters)
        start = getattr(cfg.model, "ema_start_iters", 0)  # TUNIT's EMA starts after its guiding-only phase
        shortened = build_run_config(name, "fashion10", preset, {"train.total_iters": start + round(1 / (1 - beta))})
        assert "mostly its starting state" in ema_horizon_warning(shortened)  # the rule bites one step past it
        checked += 1
    assert checked or not hasattr(get_method_class(name).Config(), "ema_beta")
