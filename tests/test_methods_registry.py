"""Every registered method, at its smoke preset: it trains, translates, and its state resumes exactly.

Parametrised over ``list_methods()``, so a newly registered method is tested here without
touching this file.
"""

import io

import pytest
import torch

from i2ibench.config import PRESETS, build_run_config
from i2ibench.method import Batch, DataInfo, Method
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
    g = torch.Generator().manual_seed(seed)
    size = m.cfg.train.img_size
    x = torch.rand(2, 3, size, size, generator=g) * 2 - 1
    target = torch.tensor([1, len(DOMAINS) - 1])
    kw = {"src": torch.tensor([0, 2])} if m.needs_source else {}
    out = {}
    if "latent" in m.modes:
        out["latent"] = m.translate(x, target, z=torch.randn(2, m.mcfg.latent_dim, generator=g), **kw)
    if "reference" in m.modes:
        out["reference"] = m.translate(x, target, ref=torch.rand(2, 3, size, size, generator=g) * 2 - 1, **kw)
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
    assert cls.modes and set(cls.modes) <= {"latent", "reference", "deterministic"}
    assert cls.label_kind in ("ground_truth", "clusters", "clip_multi_hot")


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
