"""TraVeLGAN's networks (Amodio & Krishnaswamy, CVPR 2019), shared by cliptravelgan, travelgan and cyclegan.

Read from the official code (KrishnaswamyLab/travelgan, ``travelgan.py``: ``Generator``,
``Discriminator``, ``SiameseNet``, ``unet_conv``, ``unet_conv_t``); the CLIPTraVeLGAN paper
(Bodyanskiy et al. 2023, §4) uses the same generator and discriminator for CycleGAN, TraVeLGAN
and CLIPTraVeLGAN. Every convolution is 4x4 with stride 2 and 'same' padding (= padding 1 on
even sizes); leaky ReLU slope 0.2; batch norm as TF1's ``tf.contrib.layers.batch_norm``
defaults: a learned shift and no learned scale (``center=True, scale=False``), decay 0.9
(PyTorch momentum 0.1), epsilon 1e-3. The first layer of each net has no batch norm.

- ``UNetGenerator``: encoder convolutions from ``nfilt`` channels, doubling up to ``4 * nfilt``,
  until the map is 8x8; a transposed-convolution decoder that concatenates each encoder
  output (U-Net skips, ReLU); a last transposed convolution to 3 channels and tanh.
- ``Discriminator``: convolutions from ``2 * nfilt`` channels, doubling up to ``16 * nfilt``,
  until the map is 4x4; flatten; one dense logit.
- ``SiameseNet``: convolutions from ``nfilt``, doubling up to ``8 * nfilt``, until 4x4; flatten;
  dense to ``latent_dim`` (1000). Its first convolution is domain-specific (official
  ``h1_1``/``h1_2``): images of domain A go through ``first[0]``, of domain B (real or
  generated) through ``first[1]``.

At 128 px with ``nfilt=64`` the parameter counts equal the official TF graph's: generator
4,074,691, discriminator 27,815,553, siamese network 15,148,904 (``tests/test_travelgan.py``;
BN moving statistics are buffers, as TF's are not trainable variables). Inputs and outputs:
images ``[n, 3, S, S]`` in [-1, 1], ``S`` a power of two >= 16 (generator) or >= 8.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from i2ibench.errors import ConfigError

LEAK = 0.2
BN_MOMENTUM = 0.1  # TF decay 0.9
BN_EPS = 1e-3      # tf.contrib.layers.batch_norm default


def _levels(img_size: int, min_size: int) -> int:
    """How many stride-2 layers take ``img_size`` down to ``min_size`` (official ``while nshape > minshape``)."""
    n = int(round(math.log2(img_size))) if img_size > 0 else -1
    if img_size <= 0 or 2**n != img_size or img_size <= min_size:
        raise ConfigError(f"TraVeLGAN nets need an image size that is a power of two above {min_size}, got {img_size}")
    return n - int(math.log2(min_size))


def _init(m: nn.Module) -> None:
    # Official: conv kernels truncated normal (0, 0.02), transposed-conv and dense kernels normal (0, 0.02).
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        if isinstance(m, nn.Conv2d):
            nn.init.trunc_normal_(m.weight, 0.0, 0.02, -0.04, 0.04)
        else:
            nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


class CenterBatchNorm(nn.Module):
    """Batch norm with a learned shift only (TF1 ``batch_norm`` default ``scale=False``), ``[n, C, H, W]``."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM, affine=False)
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x) + self.beta.view(1, -1, 1, 1)


def _down(c_in: int, c_out: int, norm: bool) -> nn.Sequential:
    """``unet_conv``: conv 4x4 s2, (batch norm), leaky ReLU 0.2."""
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 4, 2, 1)]
    if norm:
        layers.append(CenterBatchNorm(c_out))
    layers.append(nn.LeakyReLU(LEAK))
    return nn.Sequential(*layers)


class UNetGenerator(nn.Module):
    """Official ``Generator``: images ``[n, 3, S, S]`` in [-1, 1] -> same shape in (-1, 1) (tanh)."""

    def __init__(self, img_size: int = 128, nfilt: int = 64):
        super().__init__()
        depth = _levels(img_size, 8)
        widths, c = [], nfilt
        for _ in range(depth):
            widths.append(c)
            c = min(2 * c, 4 * nfilt)
        self.encoder = nn.ModuleList(_down(3 if i == 0 else widths[i - 1], w, norm=i > 0) for i, w in enumerate(widths))
        # Decoder: from the deepest map, one up-step per remaining encoder level (deepest first);
        # each output is concatenated with that level's encoder output.
        self.decoder = nn.ModuleList()
        c_in = widths[-1]
        for w in reversed(widths[:-1]):
            self.decoder.append(nn.Sequential(nn.ConvTranspose2d(c_in, w, 4, 2, 1), CenterBatchNorm(w), nn.ReLU()))
            c_in = 2 * w
        self.out = nn.ConvTranspose2d(c_in, 3, 4, 2, 1)
        self.apply(_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        h = x
        for layer in self.encoder:
            h = layer(h)
            skips.append(h)
        h = skips.pop()
        for layer in self.decoder:
            h = torch.cat([layer(h), skips.pop()], 1)
        return torch.tanh(self.out(h))


class Discriminator(nn.Module):
    """Official ``Discriminator``: images ``[n, 3, S, S]`` -> one real/fake logit per image ``[n]``."""

    def __init__(self, img_size: int = 128, nfilt: int = 64):
        super().__init__()
        depth = _levels(img_size, 4)
        layers, c_in, c = [], 3, 2 * nfilt
        for i in range(depth):
            layers.append(_down(c_in, c, norm=i > 0))
            c_in, c = c, min(2 * c, 16 * nfilt)
        self.convs = nn.Sequential(*layers)
        self.out = nn.Linear(c_in * 16, 1)
        self.apply(_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.convs(x).permute(0, 2, 3, 1).flatten(1)).squeeze(1)


class SiameseNet(nn.Module):
    """Official ``SiameseNet`` (TraVeLGAN's S): images ``[n, 3, S, S]`` of one domain -> ``[n, latent_dim]``.

    ``forward(x, domain)``: ``domain`` 0 (A) or 1 (B) picks the first convolution (official
    ``h1_1``/``h1_2``); a generated image G(x) is embedded as the domain it was made for (B).
    """

    def __init__(self, img_size: int = 128, nfilt: int = 64, latent_dim: int = 1000):
        super().__init__()
        depth = _levels(img_size, 4)
        self.first = nn.ModuleList(_down(3, nfilt, norm=False) for _ in range(2))
        layers, c_in, c = [], nfilt, min(2 * nfilt, 8 * nfilt)
        for _ in range(depth - 1):
            layers.append(_down(c_in, c, norm=True))
            c_in, c = c, min(2 * c, 8 * nfilt)
        self.convs = nn.Sequential(*layers)
        self.out = nn.Linear(c_in * 16, latent_dim)
        self.apply(_init)

    def forward(self, x: torch.Tensor, domain: int) -> torch.Tensor:
        if domain not in (0, 1):
            raise ValueError(f"siamese domain must be 0 (A) or 1 (B), got {domain}")
        h = self.convs(self.first[domain](x))
        return self.out(h.permute(0, 2, 3, 1).flatten(1))


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())

