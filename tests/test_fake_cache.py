"""The fake-feature cache: re-evaluating an unchanged checkpoint passes no translation through
the feature extractor (counted, not timed) and gives the same records; a changed checkpoint
or a changed eval parameter that shapes the translations misses; a re-run of a finished
`i2ibench run` says so in one line."""

import copy
import warnings

import pandas as pd
import pytest
import torch

from eval_fakes import CountingFeatures, PixelLPIPS, ToyData
from i2ibench.config import apply_overrides, build_run_config
from i2ibench.evaluation import fake_cache as fc
from i2ibench.evaluation.harness import evaluate
from i2ibench.features.cache import load_tensors, store_tensors
from i2ibench.method import DataInfo
from i2ibench.registry import create_method
from i2ibench.report import records as R
from i2ibench.seeding import seed_everything

K, N, OUTS = 3, 4, 2
FAKES_PER_MODE = K * (K - 1) * N * OUTS  # every ordered pair, every input, OUTS outputs
REALS = K * N


def _method(seed=0):
    cfg = build_run_config("stargan2", "fashion10", "smoke",
                           {"eval.max_src_per_domain": 0, "eval.max_real_per_domain": 0, "eval.outs_per_input": OUTS,
                            "eval.bootstrap": 0, "eval.nearest_k": 2, "eval.batch_size": 8})
    seed_everything(seed)
    return create_method("stargan2", cfg, DataInfo("toy", [f"d{i}" for i in range(K)], 32), "cpu"), cfg


def _evaluate(method, cfg, cache_root, val, **eval_overrides):
    """Records of one evaluation with a fresh counting extractor, and how many images it saw."""
    cfg = copy.deepcopy(cfg)
    apply_overrides(cfg, {f"eval.{k}": v for k, v in eval_overrides.items()})
    feats = CountingFeatures()
    df = evaluate(method, cfg, val=val, features=feats, lpips_net=PixelLPIPS(), cache=cache_root, log=None)
    return df, feats.images_seen


def _values(df):
    cols = [R.PROTOCOL, R.MODE, R.METRIC, R.SCOPE, R.DOMAIN, R.VALUE, R.N_FAKE, R.N_REAL]
    return df[cols].sort_values(cols[:5]).reset_index(drop=True)


def test_an_unchanged_checkpoint_is_scored_from_the_cache_and_changes_miss(tmp_path):
    method, cfg = _method()
    val = ToyData(k=K, n=N)
    first, seen = _evaluate(method, cfg, tmp_path, val)
    assert seen == REALS + 2 * FAKES_PER_MODE  # latent and reference translations, once each
    again, seen = _evaluate(method, cfg, tmp_path, val)
    assert seen == 0  # neither the reals nor a single translation went through the extractor
    pd.testing.assert_frame_equal(_values(again), _values(first))
    assert again[R.VALUE].notna().sum() > 50
    # settings the fakes do not depend on: no translation passes the extractor (a new real subset does)
    _, seen = _evaluate(method, cfg, tmp_path, val, nearest_k=3, bootstrap=5, max_real_per_domain=3)
    assert seen == K * 3
    # eval parameters that shape the translations: every fake is made again (the reals stay cached)
    _, seen = _evaluate(method, cfg, tmp_path, val, outs_per_input=3)
    assert seen == 2 * K * (K - 1) * N * 3
    _, seen = _evaluate(method, cfg, tmp_path, val, seed=1)
    assert seen == 2 * FAKES_PER_MODE
    # another checkpoint: one weight of the evaluated (EMA) generator moved
    with torch.no_grad():
        next(method.nets_ema["generator"].parameters()).view(-1)[0] += 1e-3
    changed, seen = _evaluate(method, cfg, tmp_path, val)
    assert seen == 2 * FAKES_PER_MODE
    assert not _values(changed)[R.VALUE].equals(_values(first)[R.VALUE])


def test_weights_digest_follows_the_weights_not_the_optimiser():
    a, _ = _method(seed=0)
    b, _ = _method(seed=0)
    c, _ = _method(seed=1)
    assert fc.weights_digest(a) == fc.weights_digest(b) != fc.weights_digest(c)
    for opt in b.optims.values():  # optimiser state does not change a translation
        for group in opt.param_groups:
            group["lr"] *= 2
    assert fc.weights_digest(a) == fc.weights_digest(b)


def test_translation_code_covers_the_method_package():
    from i2ibench.registry import get_method_class

    files = {p.name for p in fc._method_code_files(get_method_class("lanit"))}
    assert {"lanit.py", "lanit_prompt_learner.py", "stargan2.py"} <= files  # the method, its helpers, its base
    assert len(fc.translation_code_digest(get_method_class("lanit"))) == 64


def test_a_damaged_entry_is_recomputed(tmp_path):
    key = {"kind": "test", "n": 1}
    path = store_tensors(key, {"a": torch.arange(3.0)}, "x", tmp_path)
    assert torch.equal(load_tensors(key, "x", tmp_path)["a"], torch.arange(3.0))
    assert load_tensors({"kind": "test", "n": 2}, "x", tmp_path) is None
    path.write_bytes(path.read_bytes()[:100])
    with pytest.warns(UserWarning, match="unreadable"):
        assert load_tensors(key, "x", tmp_path) is None


class _ProjectionFeatures(CountingFeatures):
    """Stands in for InceptionFeatures in the pipeline; counts images across instances."""

    name = "test-projection"
    seen = 0

    def __init__(self, *args, **kwargs):
        super().__init__(dim=8)

    def __call__(self, x):
        type(self).seen += x.shape[0]
        return super().__call__(x)


def test_rerunning_a_finished_run_says_so_and_translates_nothing(tmp_path, monkeypatch):
    from i2ibench.data.catalog import available, get_spec
    from i2ibench.evaluation.runs import evaluate_run
    from i2ibench.pipeline.run import train_and_evaluate

    if not available(get_spec("fashion10")):
        pytest.skip("Fashion-MNIST files not installed (Debian package dataset-fashion-mnist)")
    monkeypatch.setenv("I2IBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("i2ibench.evaluation.harness.InceptionFeatures", _ProjectionFeatures)
    cfg = build_run_config("stargan2", "fashion10", "smoke",
                           {"eval.classifiers": False, "eval.lpips": False, "eval.bootstrap": 0,
                            "eval.modes": "latent", "train.sample_every": 0})
    lines: list[str] = []
    train_and_evaluate(cfg, tmp_path / "run", progress=False, log=lines.append)
    assert _ProjectionFeatures.seen > 0 and not [ln for ln in lines if ln.startswith("[run]")]
    _ProjectionFeatures.seen, lines = 0, []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no cache entry is damaged or foreign
        _, df = train_and_evaluate(cfg, tmp_path / "run", progress=False, log=lines.append)
    said = [ln for ln in lines if ln.startswith("[run]")]
    assert len(said) == 1 and "already trained (4 of 4 iterations)" in said[0]
    assert _ProjectionFeatures.seen == 0 and any("from the cache" in ln for ln in lines)
    assert df[R.VALUE].notna().any()
    evaluate_run(tmp_path / "run", log=None)  # `i2ibench eval` on the unchanged run
    assert _ProjectionFeatures.seen == 0
