"""cmnist (Colorized MNIST): gray digits, and the same digits painted with a palette colour.

Domain 0 ``gray``: a digit as it is (white stroke on black), uni-modal. Domain 1 ``color``:
the same digit with its stroke intensity multiplied by one of the ten ``PALETTE`` colours, on
black, multi-modal. Only the foreground is coloured: a pixel of intensity ``v`` in [0, 1]
becomes ``v * rgb``, the background stays black. Every palette colour has a channel at full
value, so the gray digit is exactly the max channel of its painted version.

Splits (i2ibench's reading of the HMU paper's Colorized MNIST, whose construction is not
public). ``train`` is unpaired: the training digits are shuffled once (``SPLIT_SEED``); the
first ``PAIRED_SHARE`` (10 %) of them appear in both domains, linked by ``pair_index`` (the
only aligned pairs a semi-supervised method such as ``hms`` may use); the rest are split into
two disjoint halves, the first gray only, the second coloured only (``pair_index`` -1). So
each domain holds 55 % of the training digits and every method, paired or not, trains on the
same images. ``val`` and ``heldout`` keep every digit in both forms (``pair_index`` links
them), so a colour -> gray translation has an exact target.

Digits: MNIST's IDX files under the data root if present (train = the first 55,000 training
digits, val = the last 5,000 (1/12), heldout = the 10,000 test digits), else OpenCV's ``digits.png``
(5,000 digits, 50 rows x 100 columns of 20x20 cells, five rows per digit): train = columns
0-69 of every row (3,500 digits), val = columns 70-79 (500), heldout = columns 80-99 (1,000).
``heldout`` is kept apart for pre-training the offline VLM stand-in; benchmarks never use it.

Colour of a digit: ``palette_assignment`` — a fixed-seed shuffle of the palette indices
repeated over all the source's digits, so it is a pure function of the digit's index in the
source and every colour is used equally often over the source. White is not in the palette:
a white-painted digit would be identical to its gray version.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from i2ibench.data.base import PAIR_INDEX, InMemoryDataset
from i2ibench.data.idx import find_idx, read_idx
from i2ibench.data.images import open_rgb
from i2ibench.errors import DataError

# Ten colours with well separated hues (~30 degrees or more apart), all at full value, so a
# painted stroke's chromaticity identifies its colour at any intensity.
PALETTE: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("red", (255, 0, 0)),
    ("orange", (255, 128, 0)),
    ("yellow", (255, 255, 0)),
    ("lime", (128, 255, 0)),
    ("green", (0, 255, 0)),
    ("cyan", (0, 255, 255)),
    ("blue", (0, 64, 255)),
    ("purple", (128, 0, 255)),
    ("magenta", (255, 0, 255)),
    ("pink", (255, 0, 128)),
)
PALETTE_NAMES: list[str] = [name for name, _ in PALETTE]
PALETTE_RGB: torch.Tensor = torch.tensor([rgb for _, rgb in PALETTE], dtype=torch.uint8)  # [10, 3]
PALETTE_SEED = 20240229
SPLIT_SEED = 20240220  # the shuffle of the training digits into paired / gray-only / colour-only
PAIRED_SHARE = 0.1     # share of the training digits present in both domains (aligned pairs)

DIGITS_PNG = "digits.png"
DIGITS_CELL = 20
DIGITS_ROWS, DIGITS_COLS = 50, 100
DIGITS_SPLIT_COLUMNS = {"train": range(0, 70), "val": range(70, 80), "heldout": range(80, 100)}
MNIST_VAL_DENOMINATOR = 12  # the last 1/12 of MNIST's training digits (5,000 of 60,000) form val
MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
               "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def palette_assignment(num_digits: int) -> np.ndarray:
    """Palette index of each digit of a source with ``num_digits`` digits (fixed, balanced)."""
    base = np.arange(num_digits) % len(PALETTE)
    return np.random.default_rng(PALETTE_SEED).permutation(base)


def train_roles(num_digits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions (sorted) of the paired, gray-only and colour-only digits of a training split of
    ``num_digits`` digits: a ``SPLIT_SEED`` shuffle, its first ``round(PAIRED_SHARE * n)`` paired,
    the rest halved (gray gets the extra one of an odd rest)."""
    order = np.random.default_rng(SPLIT_SEED).permutation(num_digits)
    k = int(round(PAIRED_SHARE * num_digits))
    rest = order[k:]
    half = (len(rest) + 1) // 2
    return np.sort(order[:k]), np.sort(rest[:half]), np.sort(rest[half:])


def locate(spec, data_root=None) -> Path:
    """A folder with MNIST's four IDX files, else a ``digits.png`` file."""
    roots = spec.candidate_roots(data_root)
    for r in roots:
        for d in (r, r / "MNIST" / "raw"):
            if all(find_idx(d, s) for s in MNIST_FILES):
                return d
        if (r / DIGITS_PNG).is_file():
            return r / DIGITS_PNG
    raise spec.missing(roots)


def _digits_png(path: Path, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(images [n,20,20], digit labels, source ids, source size) of one split of digits.png."""
    sheet = np.asarray(open_rgb(path).convert("L"))
    want = (DIGITS_ROWS * DIGITS_CELL, DIGITS_COLS * DIGITS_CELL)
    if sheet.shape != want:
        raise DataError(f"{path}: expected a {want[1]}x{want[0]} sheet of 20x20 digits, got {sheet.shape[1]}x{sheet.shape[0]}")
    cells = sheet.reshape(DIGITS_ROWS, DIGITS_CELL, DIGITS_COLS, DIGITS_CELL).transpose(0, 2, 1, 3)
    cols = np.array(DIGITS_SPLIT_COLUMNS[split])
    rows = np.arange(DIGITS_ROWS)
    images = cells[:, cols].reshape(-1, DIGITS_CELL, DIGITS_CELL)
    ids = (rows[:, None] * DIGITS_COLS + cols[None, :]).reshape(-1)
    digits = ids // DIGITS_COLS // (DIGITS_ROWS // 10)
    return images, digits, ids, DIGITS_ROWS * DIGITS_COLS


def _mnist(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    arrays = [read_idx(find_idx(folder, s)) for s in MNIST_FILES]
    train_x, train_y, test_x, test_y = arrays
    if train_x.shape[1:] != (28, 28) or len(train_x) != len(train_y) or len(test_x) != len(test_y):
        raise DataError(f"{folder}: MNIST IDX files with inconsistent shapes {train_x.shape}, {train_y.shape}")
    n_train = len(train_x)
    if split == "heldout":
        ids = np.arange(n_train, n_train + len(test_x))
        return test_x, test_y, ids, n_train + len(test_x)
    cut = n_train - max(1, n_train // MNIST_VAL_DENOMINATOR)
    ids = np.arange(cut) if split == "train" else np.arange(cut, n_train)
    return train_x[ids], train_y[ids], ids, n_train + len(test_x)


def load(spec, split: str, img_size: int, data_root=None) -> InMemoryDataset:
    where = locate(spec, data_root)
    images, digits, ids, source_size = (_digits_png if where.is_file() else _mnist)(where, split)
    n = len(images)
    if split == "train":
        paired, gray_only, colour_only = (torch.from_numpy(a) for a in train_roles(n))
        in_gray, in_colour = torch.cat([paired, gray_only]).sort().values, torch.cat([paired, colour_only]).sort().values
    else:
        in_gray = in_colour = torch.arange(n)
    palette = torch.from_numpy(palette_assignment(source_size)[ids].astype(np.int64))
    pixels = torch.from_numpy(np.array(images, dtype=np.uint8)).unsqueeze(1)  # own, writable copy
    colours = PALETTE_RGB.float().div(255.0)
    ng, nc = len(in_gray), len(in_colour)
    tint = torch.cat([torch.ones(ng, 3), colours[palette[in_colour]]])
    # pair_index: the image of the same digit in the other domain, -1 if it is only in one
    gray_pos = torch.full((n,), -1, dtype=torch.long)
    gray_pos[in_gray] = torch.arange(ng)
    colour_pos = torch.full((n,), -1, dtype=torch.long)
    colour_pos[in_colour] = torch.arange(nc) + ng
    digit_t = torch.from_numpy(np.asarray(digits, dtype=np.int64))
    ids_t = torch.from_numpy(ids.astype(np.int64))
    extras = {
        "palette_index": torch.cat([torch.full((ng,), -1, dtype=torch.long), palette[in_colour]]),
        "digit": torch.cat([digit_t[in_gray], digit_t[in_colour]]),
        PAIR_INDEX: torch.cat([colour_pos[in_gray], gray_pos[in_colour]]),
        "source_index": torch.cat([ids_t[in_gray], ids_t[in_colour]]),
    }
    labels = torch.cat([torch.zeros(ng, dtype=torch.long), torch.ones(nc, dtype=torch.long)])
    return InMemoryDataset(spec, split, img_size, torch.cat([pixels[in_gray], pixels[in_colour]]), labels,
                           tint=tint, extras=extras, root=where)
