"""Image files: listing them and decoding one into a square tensor in [-1, 1].

Decoding is strict: a truncated or corrupt file is an error that names the file, never a
silently grey-padded image (PIL's ``LOAD_TRUNCATED_IMAGES`` is forced off while we read).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFile, UnidentifiedImageError

from i2ibench.errors import DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def is_image_file(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name."""
    with os.scandir(folder) as it:
        names = sorted(e.name for e in it if e.is_file() and is_image_file(e.name))
    return [folder / n for n in names]


@contextlib.contextmanager
def _strict_decoding():
    # Another library may have switched PIL to padding truncated files; not while we read.
    saved = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        yield
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = saved


def open_rgb(path: Path) -> Image.Image:
    """The fully decoded RGB image at ``path``; DataError naming the file if it cannot be read."""
    try:
        with _strict_decoding(), Image.open(path) as img:
            img.load()
            return img.convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DataError(f"cannot read image {path}: {reason}") from None


def resize_center_crop(img: Image.Image, size: int) -> Image.Image:
    """Shorter side resized to ``size`` (bicubic, antialiased), then the centre square cropped
    (torchvision's Resize(size) + CenterCrop(size))."""
    w, h = img.size
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    if (nw, nh) != (w, h):
        img = img.resize((nw, nh), Image.Resampling.BICUBIC)
    left, top = int(round((nw - size) / 2.0)), int(round((nh - size) / 2.0))
    return img.crop((left, top, left + size, top + size))


def load_image(path: Path, size: int) -> torch.Tensor:
    """FloatTensor [3, size, size] in [-1, 1]: shorter side resized to ``size``, centre crop."""
    arr = np.asarray(resize_center_crop(open_rgb(path), size), dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(127.5).sub_(1.0)
