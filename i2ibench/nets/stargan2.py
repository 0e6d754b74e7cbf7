"""The StarGAN v2 backbone shared by every multi-domain method.

Generator (instance-norm encoder, AdaIN decoder, optional high-pass branch), mapping network
(shared trunk, one head per domain), style encoder (shared trunk, one linear head per domain)
and multi-task discriminator (one logit per domain). With ``dim_in=None`` every net uses the
official width rule ``2**14 // img_size`` and the official depth rule, so at the paper
settings the parameter counts equal clovaai/stargan-v2 exactly (see tests/test_nets.py).
Sub-module names follow the official ones, so an official ``nets_ema`` state dict maps onto
these nets key for key.

Fused resampling (on by default; ``set_fused_resampling(module, False)`` turns it off): a 3x3
convolution followed by 2x2 average pooling is computed as one stride-2 4x4 convolution whose
kernel is the 3x3 kernel convolved with the 2x2 box, and a nearest 2x upsampling followed by a
3x3 convolution as one stride-2 4x4 transposed convolution; 1x1 shortcut convolutions run at the
lower resolution (pooling before, upsampling after them). Each pair of linear operations equals
the other exactly in exact arithmetic (the parameters, their names and the function are
unchanged; only fp32 round-off differs) and needs 16/36 of the multiply-adds.
``tests/test_train_speed.py`` checks the outputs and the weights after training steps against
the unfused path.

Style selection: ``y`` is either a LongTensor of domain indices ``[N]`` or a float (or bool)
multi-hot matrix ``[N, K]``; for multi-hot rows the style is the mean over the active domains'
styles, ``sum_k y_k s_k / sum_k y_k`` (LANIT). A row with no active domain gives a zero style.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

_SQRT2 = math.sqrt(2.0)


def official_dim_in(img_size: int) -> int:
    """Channels of the first convolution in the official code."""
    return 2**14 // img_size


def _log2(img_size: int) -> int:
    n = int(round(math.log2(img_size)))
    if 2**n != img_size or n < 4:
        raise ValueError(f"img_size must be a power of two >= 16, got {img_size}")
    return n


def select_domain(per_domain: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Pick ``per_domain[i, y_i]`` (indices) or the weighted mean over domains (multi-hot rows).

    ``per_domain``: ``[N, K, ...]``. Returns ``[N, ...]``.
    """
    if y.dim() == 1 and not y.is_floating_point() and y.dtype != torch.bool:
        return per_domain[torch.arange(per_domain.size(0), device=per_domain.device), y]
    if y.dim() != 2 or y.size(1) != per_domain.size(1):
        raise ValueError(f"domain labels must be indices [N] or multi-hot [N, {per_domain.size(1)}], got {tuple(y.shape)}")
    w = y.to(per_domain.dtype).view(*y.shape, *([1] * (per_domain.dim() - 2)))
    return (per_domain * w).sum(1) / w.sum(1).clamp_min(1e-8)


def _box_sum(w: torch.Tensor) -> torch.Tensor:
    """``[O, I, 3, 3]`` -> ``[O, I, 4, 4]``: the kernel summed over the four 2x2 shifts (full
    convolution with a 2x2 box of ones). Pads and adds only, so autocast leaves it in ``w``'s dtype."""
    return (F.pad(w, (0, 1, 0, 1)) + F.pad(w, (1, 0, 0, 1)) + F.pad(w, (0, 1, 1, 0)) + F.pad(w, (1, 0, 1, 0)))


def conv3_avgpool(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """``avg_pool2d(conv(x), 2)`` for a 3x3, padding-1 ``conv``, as one 4x4 stride-2 convolution.

    Output pixel ``i`` averages conv outputs ``2i, 2i+1``, which read inputs ``2i-1 .. 2i+2``:
    the kernel is the 3x3 kernel convolved with the 2x2 box / 4. ``x`` ``[N, C, H, W]`` with even
    H, W -> ``[N, C_out, H/2, W/2]``.
    """
    return F.conv2d(x, 0.25 * _box_sum(conv.weight), conv.bias, stride=2, padding=1)


def upsample_conv3(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """``conv(interpolate(x, scale_factor=2, mode="nearest"))`` for a 3x3, padding-1 ``conv``,
    as one 4x4 stride-2 transposed convolution.

    Even output rows ``2m`` read input rows ``m-1`` (tap 0) and ``m`` (taps 1, 2), odd rows
    ``2m+1`` rows ``m`` (taps 0, 1) and ``m+1`` (tap 2); the transposed convolution (output
    ``2i - 1 + k``) gets kernel taps ``[K2, K1+K2, K0+K1, K0]`` per axis: the flipped kernel
    convolved with a 2x2 box. ``[N, C, H, W]`` -> ``[N, C_out, 2H, 2W]``.
    """
    weight = _box_sum(conv.weight.flip(2, 3)).transpose(0, 1)  # conv_transpose2d wants [in, out, k, k]
    return F.conv_transpose2d(x, weight, conv.bias, stride=2, padding=1)


def set_fused_resampling(module: nn.Module, enabled: bool) -> None:
    """Turn the fused resampling convolutions of every block in ``module`` on or off (see module doc)."""
    for m in module.modules():
        if isinstance(m, (ResBlk, AdainResBlk)):
            m.fused = enabled


def init_weights(module: nn.Module) -> None:
    """He (Kaiming normal, fan-in, ReLU gain) weights and zero biases on every conv/linear, as officially."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


# --------------------------------------------------------------------------- blocks

class ResBlk(nn.Module):
    """Pre-activation residual block: (IN) lrelu conv3 (avgpool) (IN) lrelu conv3, 1x1 shortcut if widths differ."""

    def __init__(self, dim_in: int, dim_out: int, normalize: bool = False, downsample: bool = False):
        super().__init__()
        self.normalize = normalize
        self.downsample = downsample
        self.fused = True  # conv + pooling as one strided conv (module doc); not a parameter
        self.learned_sc = dim_in != dim_out
        self.conv1 = nn.Conv2d(dim_in, dim_in, 3, 1, 1)
        self.conv2 = nn.Conv2d(dim_in, dim_out, 3, 1, 1)
        if normalize:
            self.norm1 = nn.InstanceNorm2d(dim_in, affine=True)
            self.norm2 = nn.InstanceNorm2d(dim_in, affine=True)
        if self.learned_sc:
            self.conv1x1 = nn.Conv2d(dim_in, dim_out, 1, 1, 0, bias=False)

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused and self.downsample:  # the 1x1 conv commutes with pooling: run it on 1/4 of the pixels
            x = F.avg_pool2d(x, 2)
            return self.conv1x1(x) if self.learned_sc else x
        if self.learned_sc:
            x = self.conv1x1(x)
        return F.avg_pool2d(x, 2) if self.downsample else x

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        if self.normalize:
            x = self.norm1(x)
        x = F.leaky_relu(x, 0.2)
        if self.fused and self.downsample:
            x = conv3_avgpool(x, self.conv1)
        else:
            x = self.conv1(x)
            if self.downsample:
                x = F.avg_pool2d(x, 2)
        if self.normalize:
            x = self.norm2(x)
        return self.conv2(F.leaky_relu(x, 0.2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.shortcut(x) + self.residual(x)) / _SQRT2  # keeps unit variance


class AdaIN(nn.Module):
    """Instance norm whose scale (1 + gamma) and shift come from the style code."""

    def __init__(self, style_dim: int, num_features: int):
        super().__init__()
        self.norm = nn.InstanceNorm2d(num_features, affine=False)
        self.fc = nn.Linear(style_dim, num_features * 2)

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.fc(s)[:, :, None, None].chunk(2, dim=1)
        return (1 + gamma) * self.norm(x) + beta


class AdainResBlk(nn.Module):
    """Decoder block: AdaIN lrelu (upsample) conv3 AdaIN lrelu conv3.

    With the high-pass branch on (``w_hpf > 0``) the block has no residual shortcut, as in
    the official code; its 1x1 shortcut conv is still built (and counted) but unused.
    """

    def __init__(self, dim_in: int, dim_out: int, style_dim: int, w_hpf: float = 0, upsample: bool = False):
        super().__init__()
        self.w_hpf = w_hpf
        self.upsample = upsample
        self.fused = True  # upsampling + conv as one transposed conv (module doc); not a parameter
        self.learned_sc = dim_in != dim_out
        self.conv1 = nn.Conv2d(dim_in, dim_out, 3, 1, 1)
        self.conv2 = nn.Conv2d(dim_out, dim_out, 3, 1, 1)
        self.norm1 = AdaIN(style_dim, dim_in)
        self.norm2 = AdaIN(style_dim, dim_out)
        if self.learned_sc:
            self.conv1x1 = nn.Conv2d(dim_in, dim_out, 1, 1, 0, bias=False)

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused and self.upsample:  # the 1x1 conv commutes with upsampling: run it before
            x = self.conv1x1(x) if self.learned_sc else x
            return F.interpolate(x, scale_factor=2, mode="nearest")
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        return self.conv1x1(x) if self.learned_sc else x

    def residual(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.norm1(x, s), 0.2)
        if self.fused and self.upsample:
            x = upsample_conv3(x, self.conv1)
        else:
            if self.upsample:
                x = F.interpolate(x, scale_factor=2, mode="nearest")
            x = self.conv1(x)
        return self.conv2(F.leaky_relu(self.norm2(x, s), 0.2))

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        out = self.residual(x, s)
        if self.w_hpf == 0:
            out = (out + self.shortcut(x)) / _SQRT2
        return out


class HighPass(nn.Module):
    """Depthwise 3x3 Laplacian-like high-pass filter, scaled by 1 / w_hpf (a buffer, not trained)."""

    def __init__(self, w_hpf: float):
        super().__init__()
        kernel = torch.full((3, 3), -1.0)
        kernel[1, 1] = 8.0
        self.register_buffer("filter", kernel / w_hpf)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.size(1)
        weight = self.filter.to(x.dtype).expand(c, 1, 3, 3)
        return F.conv2d(x, weight, padding=1, groups=c)


# --------------------------------------------------------------------------- networks

class Generator(nn.Module):
    """Encoder (``log2(img)-4`` downsampling ResBlks, +1 with the high-pass branch, then 2
    bottleneck ResBlks, instance norm) and a mirrored AdaIN decoder.

    ``masks`` (high-pass branch only): two face masks ``[N, 1, h, w]`` in [0, 1]; the first
    gates the skip at img/8, the second those at img/4 and img/2 (32, 64, 128 px at 256 px,
    as officially). The official CelebA-HQ setup computes them with a pretrained FAN
    landmark network whose weights i2ibench does not have, so masks are optional: with
    ``masks=None`` the extra level and the filter exist (parameter counts match) but no
    high-pass skip is added.
    """

    def __init__(self, img_size: int = 256, style_dim: int = 64, max_conv_dim: int = 512,
                 w_hpf: float = 0, dim_in: int | None = None):
        super().__init__()
        n = _log2(img_size)
        dim_in = dim_in or official_dim_in(img_size)
        self.img_size = img_size
        self.w_hpf = w_hpf
        self.from_rgb = nn.Conv2d(3, dim_in, 3, 1, 1)
        self.encode = nn.ModuleList()
        self.decode = nn.ModuleList()
        self.to_rgb = nn.Sequential(nn.InstanceNorm2d(dim_in, affine=True), nn.LeakyReLU(0.2),
                                    nn.Conv2d(dim_in, 3, 1, 1, 0))
        repeat_num = n - 4 + (1 if w_hpf > 0 else 0)
        dim_out = dim_in
        for _ in range(repeat_num):
            dim_out = min(dim_in * 2, max_conv_dim)
            self.encode.append(ResBlk(dim_in, dim_out, normalize=True, downsample=True))
            self.decode.insert(0, AdainResBlk(dim_out, dim_in, style_dim, w_hpf=w_hpf, upsample=True))
            dim_in = dim_out
        for _ in range(2):  # bottleneck
            self.encode.append(ResBlk(dim_out, dim_out, normalize=True))
            self.decode.insert(0, AdainResBlk(dim_out, dim_out, style_dim, w_hpf=w_hpf))
        if w_hpf > 0:
            self.hpf = HighPass(w_hpf)
        self.skip_sizes = (img_size // 8, img_size // 4, img_size // 2)

    def forward(self, x: torch.Tensor, s: torch.Tensor,
                masks: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
        """``x`` ``[N, 3, S, S]`` in [-1, 1], ``s`` ``[N, style_dim]`` -> ``[N, 3, S, S]`` (not clamped)."""
        return self.decode_from(self.encode_only(x), s, masks)

    def encode_only(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
        """The style-free half: bottleneck features and the encoder features at the skip sizes.

        The encoder does not see the style, so one encoding of ``x`` serves every style
        (``decode_from``) while the weights are unchanged; ``G(x, s) == decode_from(encode_only(x), s)``.
        """
        x = self.from_rgb(x)
        cache: dict[int, torch.Tensor] = {}
        for block in self.encode:
            if self.w_hpf > 0 and x.size(2) in self.skip_sizes:
                cache[x.size(2)] = x
            x = block(x)
        return x, cache

    def decode_from(self, encoded: tuple[torch.Tensor, dict[int, torch.Tensor]], s: torch.Tensor,
                    masks: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
        """The decoder on ``encode_only``'s output with styles ``s`` ``[N, style_dim]``."""
        x, cache = encoded
        use_skip = masks is not None and self.w_hpf > 0
        for block in self.decode:
            x = block(x, s)
            if use_skip and x.size(2) in self.skip_sizes:
                mask = masks[0] if x.size(2) == self.skip_sizes[0] else masks[1]
                mask = F.interpolate(mask.to(x.dtype), size=x.shape[2:], mode="bilinear")
                x = x + self.hpf(mask * cache[x.size(2)])
        return self.to_rgb(x)


def _mlp(dims: Sequence[int], last_relu: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(nn.Linear(a, b))
        if last_relu or i < len(dims) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class MappingNetwork(nn.Module):
    """z -> style: a shared ReLU MLP trunk, then one MLP head per domain.

    Officially 4 shared layers (latent -> 512, 3 x 512 -> 512) and heads of 4 layers
    (3 x 512 -> 512, 512 -> style_dim).
    """

    def __init__(self, latent_dim: int = 16, style_dim: int = 64, num_domains: int = 2, hidden: int = 512,
                 num_shared_layers: int = 4, num_head_layers: int = 4):
        super().__init__()
        if num_shared_layers < 1 or num_head_layers < 1:
            raise ValueError("mapping network needs at least one shared and one head layer")
        self.shared = _mlp([latent_dim] + [hidden] * num_shared_layers, last_relu=True)
        self.unshared = nn.ModuleList(
            _mlp([hidden] * num_head_layers + [style_dim], last_relu=False) for _ in range(num_domains))

    def all_styles(self, z: torch.Tensor) -> torch.Tensor:
        """Styles for every domain, ``[N, K, style_dim]``."""
        h = self.shared(z)
        return torch.stack([head(h) for head in self.unshared], dim=1)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return select_domain(self.all_styles(z), y)


def _conv_trunk(img_size: int, max_conv_dim: int, dim_in: int | None) -> tuple[list[nn.Module], int]:
    """conv3 + ``log2(img)-2`` downsampling ResBlks (down to 4x4) + lrelu conv4 lrelu (to 1x1)."""
    dim_in = dim_in or official_dim_in(img_size)
    blocks: list[nn.Module] = [nn.Conv2d(3, dim_in, 3, 1, 1)]
    dim_out = dim_in
    for _ in range(_log2(img_size) - 2):
        dim_out = min(dim_in * 2, max_conv_dim)
        blocks.append(ResBlk(dim_in, dim_out, downsample=True))
        dim_in = dim_out
    blocks += [nn.LeakyReLU(0.2), nn.Conv2d(dim_out, dim_out, 4, 1, 0), nn.LeakyReLU(0.2)]
    return blocks, dim_out


class StyleEncoder(nn.Module):
    """Image -> style: a shared conv trunk to a vector, then one linear head per domain."""

    def __init__(self, img_size: int = 256, style_dim: int = 64, num_domains: int = 2, max_conv_dim: int = 512,
                 dim_in: int | None = None):
        super().__init__()
        blocks, dim_out = _conv_trunk(img_size, max_conv_dim, dim_in)
        self.shared = nn.Sequential(*blocks)
        self.unshared = nn.ModuleList(nn.Linear(dim_out, style_dim) for _ in range(num_domains))

    def all_styles(self, x: torch.Tensor) -> torch.Tensor:
        """Styles for every domain, ``[N, K, style_dim]``."""
        h = self.shared(x).flatten(1)
        return torch.stack([head(h) for head in self.unshared], dim=1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return select_domain(self.all_styles(x), y)


class Discriminator(nn.Module):
    """Multi-task discriminator: the style encoder's trunk and a 1x1 conv to one logit per domain."""

    def __init__(self, img_size: int = 256, num_domains: int = 2, max_conv_dim: int = 512,
                 dim_in: int | None = None):
        super().__init__()
        blocks, dim_out = _conv_trunk(img_size, max_conv_dim, dim_in)
        blocks.append(nn.Conv2d(dim_out, num_domains, 1, 1, 0))
        self.main = nn.Sequential(*blocks)

    def all_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Real/fake logits for every domain, ``[N, K]``."""
        return self.main(x).flatten(1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The logit of domain ``y_i`` for each image, ``[N]`` (``y``: LongTensor of indices)."""
        out = self.all_logits(x)
        return out[torch.arange(out.size(0), device=out.device), y]


def build_backbone(cfg: Any, img_size: int, num_domains: int, he_init: bool = True) -> nn.ModuleDict:
    """The four StarGAN v2 nets keyed by their official names, He-initialised unless ``he_init`` is False
    (PyTorch's default initialisation: what the official EMA copies keep, see ``methods.stargan2``).

    ``cfg``: a method config with the backbone fields of ``methods.stargan2.StarGAN2Config``
    (``dim_in``, ``max_conv_dim``, ``style_dim``, ``latent_dim``, ``w_hpf``, ``mapping_hidden``,
    ``num_shared_mapping_layers``, ``num_head_mapping_layers``); ``num_domains``: heads of the
    mapping network, style encoder and discriminator.
    """
    dim_in = cfg.dim_in or None
    nets = nn.ModuleDict({
        "generator": Generator(img_size, cfg.style_dim, cfg.max_conv_dim, cfg.w_hpf, dim_in),
        "mapping_network": MappingNetwork(cfg.latent_dim, cfg.style_dim, num_domains, cfg.mapping_hidden,
                                          cfg.num_shared_mapping_layers, cfg.num_head_mapping_layers),
        "style_encoder": StyleEncoder(img_size, cfg.style_dim, num_domains, cfg.max_conv_dim, dim_in),
        "discriminator": Discriminator(img_size, num_domains, cfg.max_conv_dim, dim_in),
    })
    if he_init:
        init_weights(nets)
    return nets
