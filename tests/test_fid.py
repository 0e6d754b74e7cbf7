"""Inception weights conversion, FID parity with torch-fidelity, FID numerics, quantisation.

Inception runs at ~5 images/s on one thread: the image counts here are kept small.
"""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from i2ibench.features import inception as fi
from i2ibench.data.idx import read_idx
from i2ibench.errors import I2IError
from i2ibench.metrics.fid import feature_stats, fid, fid_from_stats

FASHION = Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory):
    """A fresh i2ibench cache for this module: the weights are converted here, once."""
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("i2ibench-cache")
    mp.setenv("I2IBENCH_CACHE", str(root))
    yield root
    mp.undo()


@pytest.fixture(scope="module")
def features(cache_root):
    features = fi.InceptionFeatures(batch_size=25)
    features.net  # loaded on first use: converted here, as the tests below expect
    return features


def test_converted_weights_reproduce_the_torchscript_module(features):
    ts = fi.load_fid_helper_torchscript()
    x = torch.randint(0, 256, (2, 3, 299, 299), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    with torch.no_grad():
        expected = ts((x.float() - 128) / 128).double()  # fid-helper's own input convention
    got = fi.InceptionFeatures(batch_size=25, fold_bn=False)(x)  # the converted weights as stored
    assert got.dtype == torch.float64 and got.shape == (2, 2048)
    assert expected.abs().max() > 1.0  # real activations, not zeros
    assert torch.allclose(got, expected, rtol=0, atol=1e-5), (got - expected).abs().max()


def test_converted_state_dict_is_complete_and_fid_only(cache_root, features):
    state = torch.load(fi.weights_path(), map_location="cpu", weights_only=True)
    assert fi.state_dict_sha256(state) == fi.WEIGHTS_SHA256
    assert set(state) == set(fi.inception_extractor().state_dict())  # nothing missing, nothing extra
    assert all(torch.all(v == 1) for k, v in state.items() if k.endswith(".bn.weight"))  # TF: no gamma
    assert torch.isnan(state["fc.weight"]).all()  # no logits: Inception Score would be NaN, not wrong
    assert features.name == fi.EXTRACTOR_NAME == "inception-v3-compat"


def _converts(monkeypatch) -> list:
    calls = []
    real = fi._convert_and_save
    monkeypatch.setattr(fi, "_convert_and_save", lambda p: (calls.append(p), real(p)))
    return calls


def test_weights_are_converted_once_then_reused(cache_root, features, monkeypatch):
    calls = _converts(monkeypatch)
    fi.weights_path()
    assert calls == []


@pytest.mark.parametrize("damage", ["truncate", "tamper"])
def test_damaged_weights_file_is_reconverted(cache_root, features, monkeypatch, damage):
    path = fi.weights_path()
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:1000])
    else:  # a valid torch file whose tensors differ: only the hash can tell
        state = torch.load(path, weights_only=True)
        state["Mixed_7c.branch_pool.conv.weight"][0, 0, 0, 0] += 1e-3
        torch.save(state, path)
    calls = _converts(monkeypatch)
    assert fi.weights_path() == path
    assert len(calls) == 1
    assert fi.state_dict_sha256(torch.load(path, weights_only=True)) == fi.WEIGHTS_SHA256


def _write_pngs(folder: Path, images: np.ndarray) -> None:
    folder.mkdir()
    for i, img in enumerate(images):
        Image.fromarray(img).save(folder / f"{i:03d}.png")


def _read_pngs(folder: Path) -> torch.Tensor:
    arrs = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(folder.glob("*.png"))]
    return torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


@pytest.mark.skipif(not FASHION.is_file(), reason="Fashion-MNIST idx files not installed (dataset-fashion-mnist)")
def test_fid_equals_torch_fidelity_on_png_folders(tmp_path, cache_root, features):
    import torch_fidelity

    digits = read_idx(FASHION)
    rng = np.random.default_rng(0)
    real = [np.asarray(Image.fromarray(d).resize((32, 32), Image.BILINEAR).convert("RGB")) for d in digits[:45]]
    base = [np.asarray(Image.fromarray(d).resize((32, 32), Image.BILINEAR).convert("RGB")) for d in digits[45:100]]
    noisy = [np.clip(b + rng.normal(0, 40, b.shape), 0, 255).astype(np.uint8) for b in base]
    _write_pngs(tmp_path / "real", np.stack(real))
    _write_pngs(tmp_path / "fake", np.stack(noisy))

    with fi.forced_weights_only_load():
        ref = torch_fidelity.calculate_metrics(
            input1=str(tmp_path / "real"), input2=str(tmp_path / "fake"), fid=True, cuda=False,
            feature_extractor_weights_path=str(fi.weights_path()), cache=False, verbose=False,
            save_cpu_ram=True, batch_size=25,
        )["frechet_inception_distance"]
    ours = fid(features(_read_pngs(tmp_path / "real")), features(_read_pngs(tmp_path / "fake")))
    assert ref > 10.0  # noisy vs clean images are far apart: the comparison is not of zeros
    assert ours == pytest.approx(ref, rel=1e-4)


def test_folded_batch_norm_keeps_the_features(features):
    # The default extractor folds each conv -> bn pair into one conv: no batch norm is left, and
    # pool3 features stay within fp32 round-off of the unfolded network (values reach ~10).
    assert features.fold_bn and not any(isinstance(m, torch.nn.BatchNorm2d) for m in features.net.modules())
    x = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(3)) * 2 - 1
    unfolded = fi.InceptionFeatures(batch_size=25, fold_bn=False)(x)
    folded = features(x)
    assert unfolded.abs().max() > 1.0
    assert torch.allclose(folded, unfolded, rtol=0, atol=5e-5), (folded - unfolded).abs().max()
    with pytest.raises(I2IError, match="eval mode"):
        fi.fold_batch_norms(fi.inception_extractor().train())


def test_bf16_features_stay_close_to_fp32(cache_root, features):
    # Sanity bound for the fast mode (its FID shift is measured in benchmarks/bench_features.py):
    # each bf16 feature vector within 5% relative L2 distance of its fp32 counterpart.
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    fast = fi.InceptionFeatures(precision="bf16", batch_size=2)
    assert fast.name == "inception-v3-compat-bf16"
    ref, got = features(x), fast(x)
    rel = (got - ref).norm(dim=1) / ref.norm(dim=1)
    assert rel.max() < 0.05, rel


def test_grayscale_input_equals_its_rgb_copy(features):
    gray = torch.randint(0, 256, (1, 1, 32, 32), generator=torch.Generator().manual_seed(2), dtype=torch.uint8)
    assert torch.equal(features(gray), features(gray.repeat(1, 3, 1, 1)))


def test_bad_inputs_are_clear_errors(features):
    with pytest.raises(I2IError, match="N x 3 x H x W"):
        features(torch.zeros(2, 4, 32, 32))
    with pytest.raises(I2IError, match="float in \\[-1, 1\\] or uint8"):
        features(torch.zeros(2, 3, 32, 32, dtype=torch.int32))
    with pytest.raises(I2IError, match="unknown precision 'fp16'"):
        fi.InceptionFeatures(precision="fp16")


def test_quantisation_inverts_the_loaders_scaling():
    u = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    x = u.float().div(127.5).sub(1.0)  # what the data loaders produce
    assert torch.equal(fi.quantize_uint8(x), u)
    assert torch.equal(fi.quantize_uint8(u), u)
    out_of_range = torch.tensor([-3.0, -1.0, 0.0, 1.0, 7.0]).view(1, 1, 1, 5)
    assert fi.quantize_uint8(out_of_range).flatten().tolist() == [0, 0, 128, 255, 255]


def test_fid_from_stats_equals_torch_fidelity_formula():
    from torch_fidelity.metric_fid import fid_statistics_to_metric

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(40, 16)), rng.normal(0.5, 2.0, size=(30, 16)) @ rng.normal(size=(16, 16))
    (mu1, s1), (mu2, s2) = feature_stats(a), feature_stats(b)
    ref = fid_statistics_to_metric({"mu": mu1, "sigma": s1}, {"mu": mu2, "sigma": s2}, verbose=False)
    assert fid_from_stats(mu1, s1, mu2, s2) == pytest.approx(ref["frechet_inception_distance"], rel=1e-12)


@pytest.mark.parametrize("n1,n2,d", [(30, 40, 64), (64, 20, 64), (90, 80, 16), (5, 200, 16)])
def test_fid_on_features_equals_fid_from_stats(n1, n2, d):
    # Few samples take the SVD route, many samples torch-fidelity's eigenvalue route. With
    # singular covariances the eigenvalue route takes square roots of rounding-noise
    # eigenvalues (~sqrt(eps) each), hence 1e-6 rather than 1e-12.
    rng = np.random.default_rng(n1 + n2 + d)
    a = np.abs(rng.normal(size=(n1, d)))
    b = np.abs(rng.normal(0.2, 1.3, size=(n2, d)))
    expected = fid_from_stats(*feature_stats(a), *feature_stats(b))
    assert expected > 1.0
    assert fid(a, b) == pytest.approx(expected, rel=1e-6)
    assert fid(torch.from_numpy(a).float(), b) == pytest.approx(fid(a.astype(np.float32), b), rel=1e-12)


def test_fid_of_singular_two_point_sets_has_the_closed_form():
    # X1 = {(+a, 0), (-a, 0)}, X2 = {(b, 0) + m, (-b, 0) + m}: S1 = diag(2a^2, 0), S2 = diag(2b^2, 0),
    # tr sqrtm(S1 S2) = 2ab, FID = |m|^2 + 2(a - b)^2
    a, b, m = 3.0, 1.0, np.array([1.0, 2.0])
    x1 = np.array([[a, 0.0], [-a, 0.0]])
    x2 = np.array([[b, 0.0], [-b, 0.0]]) + m
    assert fid(x1, x2) == pytest.approx(5.0 + 8.0, abs=1e-12)


def test_fid_of_diagonal_gaussians_has_the_closed_form():
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    v1, v2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 4.0, 1.0])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(v1 + v2 - 2 * np.sqrt(v1 * v2))  # 5 + 1 + 0 + 4
    assert fid_from_stats(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(expected, abs=1e-12)
    assert expected == 10.0


def test_fid_of_a_set_with_itself_is_zero_and_stats_are_float64():
    feats = torch.randn(50, 8, dtype=torch.float32)
    mu, sigma = feature_stats(feats)
    assert mu.dtype == sigma.dtype == np.float64 and sigma.shape == (8, 8)
    assert abs(fid(feats, feats.clone())) < 1e-9


def test_fid_input_errors():
    with pytest.raises(I2IError, match="at least 2 samples"):
        feature_stats(np.zeros((1, 4)))
    with pytest.raises(I2IError, match="do not match"):
        fid_from_stats(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
