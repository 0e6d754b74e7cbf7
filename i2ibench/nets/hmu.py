"""HMU's asymmetric StarGAN v2 backbone (Saxena & Teli 2024; i2ibench's reading, see ``methods/hmu.py``).

The StarGAN v2 nets of ``i2ibench.nets.stargan2`` with four changes:

* Domain-specific channel mapping: every domain has its own input layer into the shared
  feature space (the first 3x3 conv of the generator, the style encoder and the
  discriminator) and its own output layer (the generator's IN-lrelu-1x1 conv). A domain with
  ``channels == 1`` (a uni-modal gray domain) enters as the channel mean of its images and
  leaves as one channel repeated to three, so its outputs are exactly gray. Everything between
  these layers is the StarGAN v2 trunk, unchanged.
* Styles exist only for the multi-modal domains: the mapping network and the style encoder
  have one head per multi-modal domain, and give a zero style code for a uni-modal domain.
* Optional weight demodulation (StyleGAN2, Karras et al. 2020, Eq. 1-3): the decoder's AdaIN
  blocks become blocks of modulated 3x3 convolutions (style -> per-input-channel scale,
  bias initialised at 1, then each output filter divided by its norm); no instance norm in them.

Images are ``[n, 3, S, S]`` in [-1, 1] in and out; domains are LongTensors of indices ``[n]``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from i2ibench.nets.stargan2 import (
    AdainResBlk,
    Generator,
    MappingNetwork,
    _conv_trunk,
    _log2,
    init_weights,
    official_dim_in,
)

_SQRT2 = math.sqrt(2.0)


def domain_input(x: torch.Tensor, channels: int) -> torch.Tensor:
    """The channels a domain's input layer takes: ``x`` ``[n, 3, S, S]`` -> ``[n, channels, S, S]``
    (``channels`` 1: the channel mean, exact for gray images; 3: ``x`` itself)."""
    return x.mean(1, keepdim=True) if channels == 1 else x


def per_domain(layers: nn.ModuleList, x: torch.Tensor, domain: torch.Tensor, slot: torch.Tensor,
               prepare=None, finish=None) -> torch.Tensor:
    """Row ``i`` of ``x`` through ``layers[slot[domain[i]]]``; rows are regrouped, not copied per domain.

    ``slot``: LongTensor ``[num_domains]``, the layer of each domain (-1: none; ValueError if such
    a domain is asked for). ``prepare(x_rows, d)`` adapts the rows before their layer,
    ``finish(y_rows)`` the layer's output (e.g. 1 channel -> 3).
    """
    if domain.dim() != 1 or domain.numel() != x.shape[0]:
        raise ValueError(f"domain must be indices [{x.shape[0]}], got {tuple(domain.shape)}")
    out = None
    for d in torch.unique(domain).tolist():
        k = int(slot[d])
        if k < 0:
            raise ValueError(f"domain {d} has no layer here")
        rows = (domain == d).nonzero().flatten()
        xd = x.index_select(0, rows)
        y = layers[k](prepare(xd, d) if prepare is not None else xd)
        if finish is not None:
            y = finish(y)
        if out is None:
            out = y.new_zeros(x.shape[0], *y.shape[1:])
        out = out.index_copy(0, rows, y)
    return out


class ModulatedConv2d(nn.Module):
    """StyleGAN2 modulated convolution: ``w'_ijk = s_i w_ijk``, demodulated by ``1/sqrt(sum w'^2 + eps)``.

    ``x`` ``[n, c_in, H, W]``, ``s`` ``[n, style_dim]`` -> ``[n, c_out, H, W]`` (same padding).
    """

    def __init__(self, c_in: int, c_out: int, style_dim: int, kernel: int = 3, demodulate: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(c_out, c_in, kernel, kernel))
        nn.init.kaiming_normal_(self.weight, mode="fan_in", nonlinearity="relu")
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.affine = nn.Linear(style_dim, c_in)
        self.demodulate = demodulate
        self.reset_affine()

    def reset_affine(self) -> None:
        """Style scales ``1 + N(0, 1/style_dim)-weighted style`` (bias 1, as StyleGAN2's affine init)."""
        nn.init.normal_(self.affine.weight, std=1.0 / math.sqrt(self.affine.in_features))
        nn.init.ones_(self.affine.bias)

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        n, c_in, h, w = x.shape
        c_out, _, k, _ = self.weight.shape
        weight = self.weight[None] * self.affine(s)[:, None, :, None, None]  # [n, out, in, k, k]
        if self.demodulate:
            weight = weight * torch.rsqrt(weight.pow(2).sum(dim=(2, 3, 4), keepdim=True) + 1e-8)
        out = F.conv2d(x.reshape(1, n * c_in, h, w), weight.reshape(n * c_out, c_in, k, k), padding=k // 2, groups=n)
        return out.reshape(n, c_out, h, w) + self.bias[None, :, None, None]


class ModResBlk(nn.Module):
    """Decoder block with weight demodulation: lrelu (upsample) modconv3 lrelu modconv3, + shortcut.

    Same widths and shortcut as ``AdainResBlk`` (which it replaces); the modulation takes the
    place of AdaIN (style) and demodulation the place of instance norm.
    """

    def __init__(self, dim_in: int, dim_out: int, style_dim: int, upsample: bool = False):
        super().__init__()
        self.upsample = upsample
        self.learned_sc = dim_in != dim_out
        self.conv1 = ModulatedConv2d(dim_in, dim_out, style_dim)
        self.conv2 = ModulatedConv2d(dim_out, dim_out, style_dim)
        if self.learned_sc:
            self.conv1x1 = nn.Conv2d(dim_in, dim_out, 1, 1, 0, bias=False)

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        return self.conv1x1(x) if self.learned_sc else x

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(x, 0.2)
        if self.upsample:
            h = F.interpolate(h, scale_factor=2, mode="nearest")
        h = self.conv2(F.leaky_relu(self.conv1(h, s), 0.2), s)
        return (h + self.shortcut(x)) / _SQRT2


class HMUGenerator(Generator):
    """StarGAN v2 generator with per-domain input/output layers and optional demodulated decoder.

    ``channels``: channels of each domain (1 or 3). ``forward(x, s, src, trg)``: ``x`` ``[n, 3,
    S, S]`` of domains ``src``, styles ``s`` ``[n, style_dim]``, target domains ``trg`` ->
    ``[n, 3, S, S]`` (a 1-channel target's output repeated over three channels).
    No high-pass branch (``w_hpf``): HMU is not a face model.
    """

    def __init__(self, img_size: int, style_dim: int, max_conv_dim: int, dim_in: int | None,
                 channels: Sequence[int], demodulate: bool):
        super().__init__(img_size, style_dim, max_conv_dim, 0, dim_in)
        width = self.from_rgb.out_channels
        self.channels = list(channels)
        self.from_rgb = nn.ModuleList(nn.Conv2d(c, width, 3, 1, 1) for c in self.channels)
        self.to_rgb = nn.ModuleList(nn.Sequential(nn.InstanceNorm2d(width, affine=True), nn.LeakyReLU(0.2),
                                                  nn.Conv2d(width, c, 1, 1, 0)) for c in self.channels)
        self.demodulate = demodulate
        if demodulate:
            self.decode = nn.ModuleList(
                ModResBlk(b.conv1.in_channels, b.conv2.out_channels, b.norm1.fc.in_features, b.upsample)
                for b in self.decode if isinstance(b, AdainResBlk))
        self.register_buffer("slot", torch.arange(len(self.channels)), persistent=False)

    def forward(self, x: torch.Tensor, s: torch.Tensor, src: torch.Tensor,  # type: ignore[override]
                trg: torch.Tensor) -> torch.Tensor:
        h = per_domain(self.from_rgb, x, src, self.slot, lambda xd, d: domain_input(xd, self.channels[d]))
        for block in self.encode:
            h = block(h)
        for block in self.decode:
            h = block(h, s)
        return per_domain(self.to_rgb, h, trg, self.slot, finish=lambda y: y.expand(-1, 3, -1, -1))


def style_slots(num_domains: int, unimodal: Sequence[int]) -> torch.Tensor:
    """LongTensor ``[num_domains]``: the style head of each domain, -1 for the uni-modal ones."""
    slot = torch.full((num_domains,), -1, dtype=torch.long)
    multi = [d for d in range(num_domains) if d not in set(unimodal)]
    slot[multi] = torch.arange(len(multi))
    return slot


class HMUMappingNetwork(MappingNetwork):
    """z -> style with one head per multi-modal domain; a uni-modal domain's style is 0."""

    def __init__(self, latent_dim: int, style_dim: int, slot: torch.Tensor, hidden: int,
                 num_shared_layers: int, num_head_layers: int):
        super().__init__(latent_dim, style_dim, int((slot >= 0).sum()), hidden, num_shared_layers, num_head_layers)
        self.style_dim = style_dim
        self.register_buffer("slot", slot.clone(), persistent=False)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return _zero_for_unimodal(self.all_styles(z), y, self.slot)


class HMUStyleEncoder(nn.Module):
    """Image -> style: per-domain input conv (multi-modal domains only), the StarGAN v2 trunk,
    one linear head per multi-modal domain. ``forward(x, y)`` ``[n, style_dim]``, 0 where ``y``
    is uni-modal (those rows never reach the trunk)."""

    def __init__(self, img_size: int, style_dim: int, slot: torch.Tensor, channels: Sequence[int],
                 max_conv_dim: int, dim_in: int | None):
        super().__init__()
        blocks, dim_out = _conv_trunk(img_size, max_conv_dim, dim_in)
        width = blocks[0].out_channels
        multi = [d for d in range(len(slot)) if slot[d] >= 0]
        self.channels = list(channels)
        self.style_dim = style_dim
        self.from_rgb = nn.ModuleList(nn.Conv2d(self.channels[d], width, 3, 1, 1) for d in multi)
        self.shared = nn.Sequential(*blocks[1:])
        self.unshared = nn.ModuleList(nn.Linear(dim_out, style_dim) for _ in multi)
        self.register_buffer("slot", slot.clone(), persistent=False)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = x.new_zeros(x.shape[0], self.style_dim)
        rows = (self.slot[y] >= 0).nonzero().flatten()
        if rows.numel() == 0:
            return out
        xm, ym = x.index_select(0, rows), y.index_select(0, rows)
        h = per_domain(self.from_rgb, xm, ym, self.slot, lambda xd, d: domain_input(xd, self.channels[d]))
        h = self.shared(h).flatten(1)
        styles = torch.stack([head(h) for head in self.unshared], dim=1)
        return out.index_copy(0, rows, styles[torch.arange(len(rows), device=x.device), self.slot[ym]])


class HMUDiscriminator(nn.Module):
    """Multi-task discriminator with a per-domain input conv; ``forward(x, y)``: the logit of domain ``y_i`` ``[n]``."""

    def __init__(self, img_size: int, num_domains: int, channels: Sequence[int], max_conv_dim: int,
                 dim_in: int | None):
        super().__init__()
        blocks, dim_out = _conv_trunk(img_size, max_conv_dim, dim_in)
        width = blocks[0].out_channels
        self.channels = list(channels)
        self.from_rgb = nn.ModuleList(nn.Conv2d(c, width, 3, 1, 1) for c in self.channels)
        self.main = nn.Sequential(*blocks[1:], nn.Conv2d(dim_out, num_domains, 1, 1, 0))
        self.register_buffer("slot", torch.arange(num_domains), persistent=False)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = per_domain(self.from_rgb, x, y, self.slot, lambda xd, d: domain_input(xd, self.channels[d]))
        out = self.main(h).flatten(1)
        return out[torch.arange(out.size(0), device=out.device), y]


def _zero_for_unimodal(per_domain_styles: torch.Tensor, y: torch.Tensor, slot: torch.Tensor) -> torch.Tensor:
    """``per_domain_styles`` ``[n, M, D]`` over the multi-modal heads -> ``[n, D]`` for domains ``y``, 0 if uni-modal."""
    if y.dim() != 1 or y.is_floating_point():
        raise ValueError(f"HMU styles need domain indices [n], got {tuple(y.shape)} {y.dtype}")
    k = slot[y]
    picked = per_domain_styles[torch.arange(len(y), device=y.device), k.clamp(min=0)]
    return picked * (k >= 0).to(picked.dtype)[:, None]


def build_hmu_backbone(cfg, img_size: int, num_domains: int, unimodal: Sequence[int],
                       he_init: bool = True) -> nn.ModuleDict:
    """HMU's four nets, He-initialised like StarGAN v2's (modulation scales around 1) unless
    ``he_init`` is False (then ``init_hmu_weights`` does it, after the EMA copies are taken).

    ``cfg``: ``methods.hmu.HMUConfig`` (the StarGAN v2 backbone fields, ``unimodal_channels``,
    ``demodulate``). ``unimodal``: indices of the uni-modal domains; at least one domain must
    be multi-modal (ValueError otherwise).
    """
    _log2(img_size)
    slot = style_slots(num_domains, unimodal)
    if int((slot >= 0).sum()) == 0:
        raise ValueError("HMU needs at least one multi-modal domain")
    channels = [int(cfg.unimodal_channels) if d in set(unimodal) else 3 for d in range(num_domains)]
    dim_in = cfg.dim_in or official_dim_in(img_size)
    nets = nn.ModuleDict({
        "generator": HMUGenerator(img_size, cfg.style_dim, cfg.max_conv_dim, dim_in, channels, cfg.demodulate),
        "mapping_network": HMUMappingNetwork(cfg.latent_dim, cfg.style_dim, slot, cfg.mapping_hidden,
                                             cfg.num_shared_mapping_layers, cfg.num_head_mapping_layers),
        "style_encoder": HMUStyleEncoder(img_size, cfg.style_dim, slot, channels, cfg.max_conv_dim, dim_in),
        "discriminator": HMUDiscriminator(img_size, num_domains, channels, cfg.max_conv_dim, dim_in),
    })
    if he_init:
        init_hmu_weights(nets)
    return nets


def init_hmu_weights(nets: nn.Module) -> None:
    """StarGAN v2's He initialisation, then the modulation affines reset to scales around 1."""
    init_weights(nets)
    for m in nets.modules():
        if isinstance(m, ModulatedConv2d):
            m.reset_affine()
