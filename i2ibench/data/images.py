"""Image files: listing them and decoding any of them into the same 8-bit RGB.

One decoder serves training (folder datasets, CelebA-HQ) and ``eval --real/--fake``, so a
picture gives the same pixels whichever way its file stores it:

* 8-bit modes (``L``, ``RGB``, ``CMYK``, ``YCbCr``, ``1``): Pillow's own conversion to RGB
  (CMYK and YCbCr without colour management, as Pillow does; ``1`` is 0 or 255).
* 16-bit integer (``I;16``, ``I;16L``, ``I;16B``, ``I;16N``): the full range [0, 65535] is
  scaled to [0, 255] (``round(v * 255 / 65535)``, so ``v = 257 * p`` gives back ``p``).
  Pillow's own conversion clips at 255 instead, which turns a 16-bit picture nearly white.
* 16-bit colour and gray+alpha PNGs: Pillow opens them as 8-bit ``RGB``/``RGBA``/``LA``
  keeping each value's high byte, which equals the scaling above for ``v = 257 * p`` and
  differs from it by at most 1 otherwise.
* 32-bit integer (``I``): read as 16-bit values, [0, 65535] (Pillow opens 16-bit grayscale
  PNG and TIFF files as ``I`` in several versions); values outside are clipped.
* float (``F``): [0.0, 1.0] maps to [0, 255], values outside are clipped; a NaN or infinite
  pixel is an error naming the file.
* transparency (``RGBA``, ``LA``, ``PA``, premultiplied ``RGBa``/``La``, and ``P``/``L``/``RGB``
  with a transparent colour): composited over ``ALPHA_BACKGROUND`` (white), so a fully opaque
  file gives exactly its colours and a transparent pixel the background.

Listing skips hidden entries (``is_hidden``): names starting with '.' (``.DS_Store``, macOS
``._x.png`` resource forks, ``.ipynb_checkpoints``) and ``__MACOSX`` folders.

Decoding is strict: a truncated or corrupt file is an error that names the file, never a
silently grey-padded image (PIL's ``LOAD_TRUNCATED_IMAGES`` is forced off while we read).
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFile, UnidentifiedImageError

from i2ibench.errors import DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
# What a transparent pixel becomes (RGB, 0-255).
ALPHA_BACKGROUND = (255, 255, 255)
# Folders archivers and notebooks leave beside the data; never a domain, never images.
HIDDEN_NAMES = ("__MACOSX",)

_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
_UINT16_MAX = 65535


RESIZE_RULES = ("crop", "squash")  # how a file image becomes a training-size square (load_image)


def is_image_file(name: str) -> bool:
    """True for a visible file name with an image extension (case-insensitive)."""
    return not is_hidden(name) and name.lower().endswith(IMAGE_EXTENSIONS)


def is_hidden(name: str) -> bool:
    """True for names i2ibench never lists: starting with '.' (incl. ``._x.png``,
    ``.ipynb_checkpoints``) or ``__MACOSX``."""
    return name.startswith(".") or name in HIDDEN_NAMES


def _entry_is_file(entry: os.DirEntry) -> bool:
    """``entry.is_file()`` (following links), but a link loop or a dangling link named like
    an image is a ``DataError`` naming it instead of a silently missing image."""
    try:
        os.stat(entry.path)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise DataError(f"symlink loop: {entry.path} points back to itself") from None
        if entry.is_symlink():
            raise DataError(f"broken symlink: {entry.path} -> {os.readlink(entry.path)}") from None
        raise DataError(f"cannot read {entry.path}: {e.strerror}") from None
    return entry.is_file()


def list_images(folder: Path) -> list[Path]:
    """Visible image files directly inside ``folder`` (symlinks followed), sorted by name.

    Raises ``DataError`` for a looping or dangling symlink with an image name.
    """
    with os.scandir(folder) as it:
        names = sorted(e.name for e in it if is_image_file(e.name) and _entry_is_file(e))
    return [folder / n for n in names]


def list_subfolders(folder: Path) -> list[Path]:
    """Visible sub-folders of ``folder`` (symlinks to folders included), sorted by name."""
    with os.scandir(folder) as it:
        return [folder / n for n in sorted(e.name for e in it if not is_hidden(e.name) and e.is_dir())]


@contextlib.contextmanager
def _strict_decoding():
    # Another library may have switched PIL to padding truncated files; not while we read.
    saved = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        yield
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = saved


def _gray_to_rgb(values: np.ndarray) -> Image.Image:
    return Image.fromarray(values.astype(np.uint8), mode="L").convert("RGB")


def _scale_uint16(values: np.ndarray) -> np.ndarray:
    """[0, 65535] integers -> [0, 255], rounded to nearest (257 * p -> p exactly)."""
    v = np.clip(values.astype(np.int64), 0, _UINT16_MAX)
    return (v * 255 + _UINT16_MAX // 2) // _UINT16_MAX


def to_rgb(img: Image.Image) -> Image.Image:
    """8-bit RGB of a loaded Pillow image of any mode (rules in the module docstring).

    Raises ``ValueError`` for a float image with a non-finite pixel or a mode Pillow cannot
    convert to RGB.
    """
    mode = img.mode
    if mode.startswith("I;16") or mode == "I":
        # Pillow clips these to 255 when it converts; scale the full range instead.
        return _gray_to_rgb(_scale_uint16(np.asarray(img)))
    if mode == "F":
        values = np.asarray(img, dtype=np.float64)
        if not np.isfinite(values).all():
            raise ValueError("float image with NaN or infinite pixels")
        return _gray_to_rgb(np.rint(np.clip(values, 0.0, 1.0) * 255.0))
    if mode in _ALPHA_MODES or "transparency" in img.info:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, ALPHA_BACKGROUND + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img if mode == "RGB" else img.convert("RGB")


def open_rgb(path: Path) -> Image.Image:
    """The fully decoded 8-bit RGB image at ``path`` (any mode, see ``to_rgb``); ``DataError``
    naming the file if it cannot be read."""
    try:
        with _strict_decoding(), Image.open(path) as img:
            img.load()
            return to_rgb(img)
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


def load_uint8(path: Path) -> torch.Tensor:
    """ByteTensor [3, H, W] in [0, 255] of the image at ``path`` at its own size."""
    arr = np.asarray(open_rgb(path), dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1)


def load_image(path: Path, size: int, resize: str = "crop") -> torch.Tensor:
    """FloatTensor [3, size, size] in [-1, 1].

    ``resize``: ``crop`` (i2ibench's default: shorter side resized to ``size``, bicubic and
    antialiased, then the centre square) or ``squash`` (the official StarGAN v2 / TUNIT / LANIT
    loaders: the whole image resized to ``size`` x ``size``, bilinear, aspect ratio not kept).
    """
    img = open_rgb(path)
    if resize == "squash":
        img = img.resize((size, size), Image.Resampling.BILINEAR)
    elif resize == "crop":
        img = resize_center_crop(img, size)
    else:
        raise DataError(f"unknown resize rule '{resize}'; valid: {', '.join(RESIZE_RULES)}")
    arr = np.asarray(img, dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(127.5).sub_(1.0)
