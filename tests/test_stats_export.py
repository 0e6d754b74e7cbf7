"""`stats export`: per-domain Inception statistics as .npz, equal to the cached features' statistics;
FID against the file equals FID against the features."""

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from i2ibench.errors import I2IError
from i2ibench.evaluation.stats_export import domain_real_features, export_stats, fid_against_stats, load_stats
from i2ibench.metrics.fid import feature_stats, fid, fid_from_stats

FASHION = Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")
FASHION_LABELS = Path("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz")
DOMAINS = ("bag", "sneaker")  # Fashion-MNIST classes 8 and 7; folder domains are sorted by name


@pytest.fixture(scope="module")
def fashion_folder(tmp_path_factory):
    """A folder dataset of real Fashion-MNIST test images: 2 domains, 2 train + 6 val images each."""
    if not FASHION.is_file():
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    root = tmp_path_factory.mktemp("fashion-folder")
    images = np.frombuffer(gzip.open(FASHION).read()[16:], np.uint8).reshape(-1, 28, 28)
    labels = np.frombuffer(gzip.open(FASHION_LABELS).read()[8:], np.uint8)
    for cls, name in zip((8, 7), DOMAINS):
        rows = np.nonzero(labels == cls)[0][:8]
        for i, r in enumerate(rows):
            split = "train" if i < 2 else "val"
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(images[r]).save(folder / f"{i:02d}.png")
    return root


@pytest.fixture(scope="module")
def features():
    from i2ibench.features.inception import InceptionFeatures

    return InceptionFeatures(batch_size=50)


def test_exported_stats_equal_the_cached_features_statistics(fashion_folder, features, tmp_path):
    from i2ibench.data.catalog import create_dataset

    name = f"folder:{fashion_folder}"
    out = tmp_path / "stats" / "fashion-val.npz"
    written = export_stats(name, out, "val", img_size=32, features=features, cache=tmp_path / "cache",
                           per_domain_files=True)
    assert written[0] == out and len(written) == 3
    ds = create_dataset(name, "val", 32)
    feats = [domain_real_features(ds, d, features, cache=tmp_path / "cache") for d in range(2)]
    assert [len(f) for f in feats] == [6, 6] and feats[0].shape[1] == 2048
    assert float(feats[0].std()) > 0.01  # real activations
    with np.load(out, allow_pickle=False) as f:
        assert [str(d) for d in f["domains"]] == list(DOMAINS) and f["counts"].tolist() == [6, 6]
        for d in range(2):
            mu, sigma = feature_stats(feats[d])
            np.testing.assert_array_equal(f[f"mu_{d}"], mu)
            np.testing.assert_array_equal(f[f"sigma_{d}"], sigma)
            np.testing.assert_allclose(f[f"mu_{d}"], feats[d].numpy().mean(0), rtol=1e-12)  # mean and unbiased cov
            np.testing.assert_allclose(f[f"sigma_{d}"], np.cov(feats[d].numpy(), rowvar=False), rtol=1e-12)
        np.testing.assert_array_equal(f["mu"], torch.cat(feats).numpy().mean(0))
        assert json.loads(str(f["meta"]))["features"] == features.name
    # per-domain files hold exactly mu and sigma (what pytorch-fid and clean-fid read)
    with np.load(written[2], allow_pickle=False) as g:
        assert sorted(g.files) == ["mu", "sigma"]
        np.testing.assert_array_equal(g["sigma"], feature_stats(feats[1])[1])
    assert written[2].name == "fashion-val.1-sneaker.npz"
    # the file holds what the library reads back, by index or name
    np.testing.assert_array_equal(load_stats(out, "sneaker")[0], feature_stats(feats[1])[0])

    # FID against the file equals FID against the features (domain 0 reals vs domain 1 as fakes);
    # the sqrt of near-zero eigenvalues of the rank-deficient covariances limits agreement to ~1e-8
    want = fid(feats[0], feats[1])
    assert want > 10.0
    assert fid_against_stats(out, feats[1], domain=0) == pytest.approx(want, rel=1e-6)
    assert fid_against_stats(out, feats[1], domain="bag") == pytest.approx(want, rel=1e-6)
    assert fid_against_stats(written[1], feats[1]) == pytest.approx(want, rel=1e-6)  # a plain mu/sigma file


def test_low_rank_route_equals_the_eigenvalue_route(tmp_path):
    rng = np.random.default_rng(0)
    real, fake = np.abs(rng.normal(size=(300, 64))), np.abs(rng.normal(scale=1.2, size=(40, 64)))
    mu, sigma = feature_stats(real)
    np.savez(tmp_path / "s.npz", mu=mu, sigma=sigma)
    want = fid_from_stats(mu, sigma, *feature_stats(fake))
    assert fid_against_stats(tmp_path / "s.npz", fake) == pytest.approx(want, rel=1e-7)  # rank-deficient S2
    assert fid_against_stats(tmp_path / "s.npz", fake) == pytest.approx(fid(real, fake), rel=1e-7)
    many = np.abs(rng.normal(scale=1.2, size=(100, 64)))  # more fakes than dimensions: the general route
    assert fid_against_stats(tmp_path / "s.npz", many) == pytest.approx(
        fid_from_stats(mu, sigma, *feature_stats(many)), rel=1e-12)


def test_cache_key_is_the_harness_key(fashion_folder, tmp_path):
    # stats export and evaluation share one cache entry per domain (no second Inception pass)
    from i2ibench.config import EvalConfig
    from i2ibench.data.catalog import create_dataset
    from i2ibench.evaluation.real_features import real_features

    class Counting:
        name = "counting-extractor"
        calls = 0

        def __call__(self, images):
            Counting.calls += 1
            return images.flatten(1)[:, :8].double()

    ds = create_dataset(f"folder:{fashion_folder}", "val", 16)
    ours = domain_real_features(ds, 1, Counting(), cache=tmp_path)
    theirs = real_features(ds, 1, Counting(), EvalConfig(), cache=tmp_path)
    assert Counting.calls == 1  # the harness found the entry we wrote
    assert torch.equal(ours, theirs)


def test_bad_input_is_a_one_line_error(tmp_path):
    with pytest.raises(I2IError, match=r"\.npz"):
        export_stats("fashion10", tmp_path / "stats.txt")
    np.savez(tmp_path / "s.npz", mu=np.zeros(4), sigma=np.eye(4))
    with pytest.raises(I2IError, match="no domain 'cat'"):
        fid_against_stats(tmp_path / "s.npz", np.zeros((5, 4)), domain="cat")
    with pytest.raises(I2IError, match=r"\[M >= 2, 4\]"):
        fid_against_stats(tmp_path / "s.npz", np.zeros((5, 3)))
    with pytest.raises(I2IError, match="cannot read"):
        fid_against_stats(tmp_path / "missing.npz", np.zeros((5, 4)))


def test_cli_stats_export_writes_the_file(fashion_folder, tmp_path, monkeypatch):
    import typer
    from typer.testing import CliRunner

    import i2ibench.features.cache as fc
    from i2ibench.cli.stats import register

    monkeypatch.setattr(fc, "cache_dir", lambda *parts: tmp_path.joinpath("cache", *parts))  # features only
    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)  # a second command keeps `stats` a sub-command group
    out = tmp_path / "s.npz"
    result = CliRunner().invoke(app, ["stats", "export", f"folder:{fashion_folder}", "--out", str(out),
                                      "--img-size", "32", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report == {"files": [str(out)], "domains": list(DOMAINS), "counts": [6, 6]}
    with np.load(out) as f:
        assert f["sigma_0"].shape == (2048, 2048)


def test_kid_and_prdc_parity_on_real_inception_features(fashion_folder, features, tmp_path):
    # the synthetic-feature parity tests of test_kid/test_prdc, once on real pool3 features
    import contextlib
    import io

    from prdc import compute_prdc
    from torch_fidelity.metric_kid import kid_features_to_metric

    from i2ibench.data.catalog import create_dataset
    from i2ibench.metrics.kid import kid
    from i2ibench.metrics.prdc import precision_recall_density_coverage

    ds = create_dataset(f"folder:{fashion_folder}", "val", 32)
    real, fake = (domain_real_features(ds, d, features, cache=tmp_path) for d in range(2))
    ref = kid_features_to_metric(real, fake, kid_subset_size=6, verbose=False)
    got = kid(real, fake)
    assert got[0] == pytest.approx(ref["kernel_inception_distance_mean"], abs=1e-6)
    assert got[1] == pytest.approx(ref["kernel_inception_distance_std"], abs=1e-6)
    assert got[0] > 0.05  # bags vs sneakers
    with contextlib.redirect_stdout(io.StringIO()):
        want = compute_prdc(real.numpy(), torch.cat([fake[:3], real[:3]]).numpy(), nearest_k=2)
    mixed = precision_recall_density_coverage(real, torch.cat([fake[:3], real[:3]]), k=2)
    assert mixed == pytest.approx({k: float(v) for k, v in want.items()}, abs=1e-12)
    assert 0.0 < mixed["precision"] < 1.0


def test_eval_fake_folder_against_an_exported_statistics_file(tmp_path, monkeypatch, capsys):
    """`i2ibench eval --real STATS.npz --fake DIR`: the FID equals the one against the folder of
    the images the statistics came from (same features, torch-fidelity's formula)."""
    import sys

    import numpy as np
    from PIL import Image

    from i2ibench.cli.main import main
    from i2ibench.evaluation.folders import score_folders

    rng = np.random.default_rng(0)
    for name, mean in (("real", 80), ("fake", 150)):
        (tmp_path / name).mkdir()
        for i in range(12):
            Image.fromarray(np.clip(rng.normal(mean, 40, (16, 16, 3)), 0, 255).astype(np.uint8)).save(tmp_path / name / f"{i}.png")

    class Mean:
        name = "mean-colour"

        def __call__(self, images):
            return images.float().flatten(2).mean(2).double()  # [n, 3]

    feats = Mean()
    real = score_folders(tmp_path / "real", tmp_path / "fake", k=3, features=feats, cache=False)
    from i2ibench.evaluation.folders import folder_features

    real_f = folder_features(tmp_path / "real", feats, cache=False).numpy()
    np.savez(tmp_path / "stats.npz", mu=real_f.mean(0), sigma=np.cov(real_f, rowvar=False))
    against = score_folders(tmp_path / "stats.npz", tmp_path / "fake", k=3, features=feats, cache=False)
    assert against["fid"] == pytest.approx(real["fid"], rel=1e-6) and np.isnan(against["density"])
    assert np.isnan(against["n_real"]) and against["n_fake"] == 12  # pytorch-fid's layout has no count
    np.savez(tmp_path / "counted.npz", mu=real_f.mean(0), sigma=np.cov(real_f, rowvar=False), counts=np.array([5, 7]))
    assert score_folders(tmp_path / "counted.npz", tmp_path / "fake", k=3, features=feats, cache=False)["n_real"] == 12

    # The CLI prints the defined scores only and says once, on stderr, what was not computed.
    import i2ibench.features.inception as inception

    monkeypatch.setattr(inception, "InceptionFeatures", lambda **kw: feats)
    monkeypatch.setattr(sys, "argv", ["i2ibench", "eval", "--real", str(tmp_path / "stats.npz"), "--fake",
                                      str(tmp_path / "fake"), "--no-cache"])
    with pytest.raises(SystemExit) as done:
        main()
    captured = capsys.readouterr()
    assert done.value.code == 0, captured.err
    assert f"fid: {real['fid']:.6f}" in captured.out and "nan" not in captured.out
    assert "n_fake: 12" in captured.out and "n_real" not in captured.out
    assert "not computed: kid, kid_std, precision, recall, density, coverage, n_real (a statistics file holds only mu and sigma)" in captured.err
    monkeypatch.setattr(sys, "argv", ["i2ibench", "eval", "--real", str(tmp_path / "nosuch.npz"), "--fake", str(tmp_path / "fake")])
    with pytest.raises(SystemExit) as done:
        main()
    assert done.value.code == 2 and "no such statistics file" in capsys.readouterr().err
