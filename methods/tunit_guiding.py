"""TUNIT's guiding network and its self-supervised losses (Baek et al., ICCV 2021).

The guiding network replaces ground-truth labels and the style encoder: a VGG-style conv
trunk with global average pooling feeds a clustering head (K-way logits, trained with IIC)
and a style head (style code, trained contrastively against a queue of negatives, MoCo).

Conventions, as in the official code (clovaai/tunit ``tools/ops.py``):
- ``iic_loss`` is the *negative* mutual information, so it is minimised; a perfect balanced
  one-to-one assignment gives ``-log K``, a constant one 0.
- style codes are used as they are (no L2 normalisation) in the contrastive logits.
- the queue is FIFO: new keys are appended at the end, the oldest dropped from the front.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

# VGG11 layout: conv widths as multiples of the first width, "M" = 2x2 max-pool.
VGG11_LAYOUT: tuple[int | str, ...] = (1, "M", 2, "M", 4, 4, "M", 8, 8, "M", 8, 8, "M")


class GuidingNetwork(nn.Module):
    """VGG11-BN-style trunk + GAP, a clustering head (``num_clusters`` logits) and a style head.

    Officially (128 px) the trunk is torchvision's VGG11-BN features (widths 64..512, five
    pools, 4x4 before pooling). Here the widths scale with ``dim`` (capped at ``max_dim``),
    and pools beyond the one that reaches 4x4 are dropped, so small images keep a 4x4 map.
    ``dim=64, max_dim=512`` at 128 px is the official network.
    """

    def __init__(self, img_size: int, num_clusters: int, style_dim: int = 128, dim: int = 64,
                 max_dim: int = 512, batch_norm: bool = True):
        super().__init__()
        max_pools = max(0, int(math.log2(img_size)) - 2)
        layers: list[nn.Module] = []
        c_in, pools = 3, 0
        for v in VGG11_LAYOUT:
            if v == "M":
                if pools < max_pools:
                    layers.append(nn.MaxPool2d(2, 2))
                    pools += 1
                continue
            c_out = min(int(v) * dim, max_dim)
            layers.append(nn.Conv2d(c_in, c_out, 3, 1, 1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(nn.ReLU())
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.feat_dim = c_in
        self.cluster_head = nn.Linear(c_in, num_clusters)
        self.style_head = nn.Linear(c_in, style_dim)
        self.num_clusters = num_clusters
        self.style_dim = style_dim
        self._init_weights()

    def _init_weights(self) -> None:
        # The official initialisation (torchvision's VGG): He fan-out convs, N(0, 0.01) heads.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled trunk features ``[N, feat_dim]``."""
        return F.adaptive_avg_pool2d(self.features(x), 1).flatten(1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(cluster_logits [N, K], style [N, style_dim])`` from one trunk pass."""
        h = self.embed(x)
        return self.cluster_head(h), self.style_head(h)

    def cluster_logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.cluster_head(self.embed(x))

    def style(self, x: torch.Tensor) -> torch.Tensor:
        return self.style_head(self.embed(x))


# --------------------------------------------------------------------------- IIC

def joint_distribution(p: torch.Tensor, p_aug: torch.Tensor) -> torch.Tensor:
    """Symmetrised joint ``K x K`` matrix ``P = (M + M^T) / 2 / sum``, ``M = sum_n p_n p+_n^T``.

    ``p``, ``p_aug``: cluster probabilities ``[N, K]`` (rows sum to 1) of images and their
    augmented views.
    """
    m = p.float().t() @ p_aug.float()
    m = (m + m.t()) / 2.0
    return m / m.sum()


def mutual_information(joint: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """``I(P) = sum_ij P_ij log(P_ij / (P_i P_j))`` with marginals ``P_i`` (rows), ``P_j`` (columns).

    Entries below ``eps`` are clamped to ``eps`` inside the logs, as officially (their terms
    are ~0 anyway).
    """
    p_i = joint.sum(1, keepdim=True)
    p_j = joint.sum(0, keepdim=True)
    log_ratio = joint.clamp_min(eps).log() - p_i.clamp_min(eps).log() - p_j.clamp_min(eps).log()
    return (joint * log_ratio).sum()


def iic_loss(p: torch.Tensor, p_aug: torch.Tensor) -> torch.Tensor:
    """Negative mutual information between the cluster assignments of images and their views."""
    return -mutual_information(joint_distribution(p, p_aug))


# --------------------------------------------------------------------------- contrastive

def contrastive_loss(query: torch.Tensor, key: torch.Tensor, queue: torch.Tensor,
                     temperature: float = 0.07) -> torch.Tensor:
    """InfoNCE: each query's positive is its own key, the negatives are the queue's rows.

    ``query`` ``[N, D]``, ``key`` ``[N, D]`` (detached here), ``queue`` ``[Q, D]``. Returns
    the mean cross-entropy of ``[q.k, q.queue] / temperature`` against index 0.
    """
    query = query.float()
    key = key.detach().float()
    pos = (query * key).sum(1, keepdim=True)
    neg = query @ queue.detach().float().t()
    logits = torch.cat([pos, neg], dim=1) / temperature
    return F.cross_entropy(logits, torch.zeros(query.size(0), dtype=torch.long, device=query.device))


class KeyQueue:
    """FIFO queue of style keys (negatives), at most ``capacity`` rows, newest last.

    Starts empty; ``keys`` is a plain tensor so it can be saved with the method's extra state.
    """

    def __init__(self, dim: int, capacity: int = 1024, device: torch.device | str = "cpu"):
        self.capacity = int(capacity)
        self.keys = torch.zeros(0, dim, device=device)

    def __len__(self) -> int:
        return int(self.keys.size(0))

    def enqueue(self, keys: torch.Tensor) -> None:
        """Append ``keys`` ``[n, D]`` and drop the oldest rows beyond capacity."""
        self.keys = torch.cat([self.keys, keys.detach().float().to(self.keys.device)], dim=0)[-self.capacity:]

    def to(self, device: torch.device | str) -> "KeyQueue":
        self.keys = self.keys.to(device)
        return self


# --------------------------------------------------------------------------- augmentation

@dataclass
class AugmentConfig:
    """The augmented view x+ of TUNIT's data pipeline, per image, on tensors.

    Officially (torchvision, PIL): RandomAffine(20, translate=(0.1, 0.1), shear=10),
    RandomResizedCrop(scale=(0.9, 1.1), ratio=(0.9, 1.1)), ColorJitter(0.4, 0.4, 0.4, 0.125),
    RandomHorizontalFlip. Here the geometric part is one affine resampling (bilinear, black
    fill), the jitter runs in a fixed order (brightness, contrast, saturation, hue) and the
    hue shift is a rotation of the chroma plane in YIQ space (an approximation of HSV hue).
    """

    degrees: float = 20.0
    translate: float = 0.1
    shear: float = 10.0
    crop_scale: tuple[float, float] = (0.9, 1.1)
    crop_ratio: tuple[float, float] = (0.9, 1.1)
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.125
    flip: float = 0.5


def _uniform(n: int, lo: float, hi: float) -> torch.Tensor:
    return torch.rand(n, dtype=torch.float64) * (hi - lo) + lo


def _crop_sizes(n: int, scale: tuple[float, float], ratio: tuple[float, float], tries: int = 10):
    """Relative crop width/height as RandomResizedCrop draws them: up to ``tries`` draws of
    (area, aspect), the first that fits the image wins, else the whole image."""
    area = _uniform(n * tries, *scale).view(n, tries)
    log_r = _uniform(n * tries, math.log(ratio[0]), math.log(ratio[1])).view(n, tries)
    w = (area * log_r.exp()).sqrt()
    h = (area / log_r.exp()).sqrt()
    fits = (w <= 1.0) & (h <= 1.0)
    first = torch.where(fits.any(1), fits.float().argmax(1), torch.full((n,), -1))
    pick = first.clamp_min(0)[:, None]
    w = torch.where(first >= 0, w.gather(1, pick)[:, 0], torch.ones(n, dtype=torch.float64))
    h = torch.where(first >= 0, h.gather(1, pick)[:, 0], torch.ones(n, dtype=torch.float64))
    return w, h


def _affine_grid_params(n: int, cfg: AugmentConfig) -> torch.Tensor:
    """``[n, 2, 3]`` sampling matrices (output coords -> input coords, normalised [-1, 1])."""
    rot = torch.deg2rad(_uniform(n, -cfg.degrees, cfg.degrees))
    shear = torch.deg2rad(_uniform(n, -cfg.shear, cfg.shear))
    t = torch.stack([_uniform(n, -cfg.translate, cfg.translate),
                     _uniform(n, -cfg.translate, cfg.translate)], 1) * 2.0  # fraction of size -> [-1, 1] units
    w, h = _crop_sizes(n, cfg.crop_scale, cfg.crop_ratio)
    centre = torch.stack([(torch.rand(n, dtype=torch.float64) * 2 - 1) * (1 - w),
                          (torch.rand(n, dtype=torch.float64) * 2 - 1) * (1 - h)], 1)
    flip = torch.where(torch.rand(n, dtype=torch.float64) < cfg.flip, -1.0, 1.0)
    # forward affine of RandomAffine: rotation after an x-shear, then translation.
    cos, sin, tan = rot.cos(), rot.sin(), shear.tan()
    fwd = torch.stack([torch.stack([cos, cos * tan - sin], 1),
                       torch.stack([sin, sin * tan + cos], 1)], 1)
    inv = torch.linalg.inv(fwd)
    # output u -> flip -> crop window -> inverse affine.
    crop = torch.diag_embed(torch.stack([w * flip, h], 1))
    lin = inv @ crop
    off = (inv @ (centre - t).unsqueeze(2)).squeeze(2)
    return torch.cat([lin, off.unsqueeze(2)], 2)


def _gray(x: torch.Tensor) -> torch.Tensor:
    return (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])


def _jitter(x: torch.Tensor, cfg: AugmentConfig) -> torch.Tensor:
    """Colour jitter on images in [0, 1], factors drawn per image."""
    n = x.size(0)

    def factor(s: float) -> torch.Tensor:
        return _uniform(n, max(0.0, 1 - s), 1 + s).to(x)[:, None, None, None]

    if cfg.brightness > 0:
        x = (x * factor(cfg.brightness)).clamp(0, 1)
    if cfg.contrast > 0:
        mean = _gray(x).mean((1, 2, 3), keepdim=True)
        x = ((x - mean) * factor(cfg.contrast) + mean).clamp(0, 1)
    if cfg.saturation > 0:
        g = _gray(x)
        x = ((x - g) * factor(cfg.saturation) + g).clamp(0, 1)
    if cfg.hue > 0:
        angle = (_uniform(n, -cfg.hue, cfg.hue) * 2 * math.pi).to(x)[:, None, None]
        y = _gray(x)[:, 0]
        i = 0.596 * x[:, 0] - 0.274 * x[:, 1] - 0.322 * x[:, 2]
        q = 0.211 * x[:, 0] - 0.523 * x[:, 1] + 0.312 * x[:, 2]
        i, q = i * angle.cos() - q * angle.sin(), i * angle.sin() + q * angle.cos()
        x = torch.stack([y + 0.956 * i + 0.621 * q, y - 0.272 * i - 0.647 * q, y - 1.106 * i + 1.703 * q], 1)
        x = x.clamp(0, 1)
    return x


def augment(x: torch.Tensor, cfg: AugmentConfig | None = None) -> torch.Tensor:
    """A randomly augmented view of images ``x`` ``[N, 3, H, W]`` in [-1, 1].

    Random numbers come from torch's global CPU generator (whatever device ``x`` is on), so
    a run that restores the RNG state augments exactly as before.
    """
    cfg = cfg or AugmentConfig()
    theta = _affine_grid_params(x.size(0), cfg).to(device=x.device, dtype=torch.float32)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    # sample (x + 1) so the zero fill outside the image is black (-1), as PIL's fill 0.
    y = F.grid_sample(x.float() + 1.0, grid, mode="bilinear", padding_mode="zeros", align_corners=False) / 2.0
    return (_jitter(y.clamp(0, 1), cfg) * 2.0 - 1.0).to(x.dtype)
