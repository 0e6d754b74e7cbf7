"""Training-image augmentation as the official loaders do it, drawn from a per-step generator.

``crop_flip`` (official StarGAN v2 and LANIT ``core/data_loader.py``): with probability 0.5 a
random resized crop (area 0.8-1 of the image, aspect ratio 0.9-1.1) resized back to the
training size (bilinear), then a horizontal flip with probability 0.5. ``flip`` (official
TUNIT): the flip only. ``none``: images as decoded.

One departure: the official loaders crop the image at file resolution and then resize it;
i2ibench's images arrive decoded at the training size, so the crop is taken from that. The
random draws come from a generator seeded by (seed, step), never a global one, so a resumed
run augments exactly as an uninterrupted one.
"""

from __future__ import annotations

import math

import torch
from torchvision.transforms.v2 import functional as TF

from i2ibench.errors import ConfigError
from i2ibench.names import AUGMENTATIONS

CROP_PROB = 0.5
CROP_SCALE = (0.8, 1.0)
CROP_RATIO = (0.9, 1.1)
FLIP_PROB = 0.5


def check_augmentation(name: str) -> str:
    if name not in AUGMENTATIONS:
        raise ConfigError(f"train.augment must be one of {', '.join(AUGMENTATIONS)}, got '{name}'")
    return name


def step_generator(seed: int, step: int) -> torch.Generator:
    """The augmentation generator of step ``step`` (independent of the sampler's stream)."""
    return torch.Generator().manual_seed((int(seed) * 1_000_003 + int(step) * 7_919 + 12_345) % (2**63 - 1))


def crop_box(height: int, width: int, gen: torch.Generator) -> tuple[int, int, int, int]:
    """``(top, left, h, w)`` of a random resized crop, torchvision's ``RandomResizedCrop`` rule:
    up to 10 tries of an area fraction in ``CROP_SCALE`` and a log-uniform aspect ratio in
    ``CROP_RATIO``, else the centre crop closest to the ratio range."""
    area = height * width
    log_ratio = (math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1]))
    for _ in range(10):
        u = torch.rand(2, generator=gen, dtype=torch.float64).tolist()
        target = area * (CROP_SCALE[0] + u[0] * (CROP_SCALE[1] - CROP_SCALE[0]))
        ratio = math.exp(log_ratio[0] + u[1] * (log_ratio[1] - log_ratio[0]))
        w = int(round(math.sqrt(target * ratio)))
        h = int(round(math.sqrt(target / ratio)))
        if 0 < w <= width and 0 < h <= height:
            top = int(torch.randint(0, height - h + 1, (1,), generator=gen))
            left = int(torch.randint(0, width - w + 1, (1,), generator=gen))
            return top, left, h, w
    in_ratio = width / height
    if in_ratio < CROP_RATIO[0]:
        w, h = width, int(round(width / CROP_RATIO[0]))
    elif in_ratio > CROP_RATIO[1]:
        h, w = height, int(round(height * CROP_RATIO[1]))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def augment(x: torch.Tensor, kind: str, gen: torch.Generator) -> torch.Tensor:
    """Augment every image of ``x`` ``[n, C, S, S]`` (values kept in their range) on its own.

    ``kind``: one of ``AUGMENTATIONS``. Returns a new tensor of the same shape.
    """
    check_augmentation(kind)
    if kind == "none":
        return x
    out = []
    size = list(x.shape[-2:])
    for img in x:
        if kind == "crop_flip" and float(torch.rand(1, generator=gen)) < CROP_PROB:
            top, left, h, w = crop_box(size[0], size[1], gen)
            img = TF.resized_crop(img, top, left, h, w, size, antialias=True)
        if float(torch.rand(1, generator=gen)) < FLIP_PROB:
            img = img.flip(-1)
        out.append(img)
    return torch.stack(out)
