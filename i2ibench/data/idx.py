"""IDX files (the MNIST / Fashion-MNIST format), plain or gzipped, decoded once per process."""

from __future__ import annotations

import functools
import gzip
from pathlib import Path

import numpy as np

from i2ibench.errors import DataError

# IDX header: two zero bytes, a type code, the number of dimensions; then big-endian int32 sizes.
_UBYTE = 0x08


def find_idx(folder: Path, stem: str) -> Path | None:
    """``folder/stem`` or ``folder/stem.gz``, whichever exists."""
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def read_idx(path: Path) -> np.ndarray:
    """The uint8 array stored in an IDX file (cached per path and modification time)."""
    path = Path(path)
    try:
        mtime = path.stat().st_mtime_ns
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror}") from None
    return _read_idx_cached(str(path), mtime)


@functools.lru_cache(maxsize=16)
def _read_idx_cached(path: str, mtime: int) -> np.ndarray:
    try:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise DataError(f"cannot read {path}: {e}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != _UBYTE:
        raise DataError(f"{path} is not an IDX file of unsigned bytes (bad header)")
    ndim = raw[3]
    head = 4 + 4 * ndim
    dims = tuple(int(d) for d in np.frombuffer(raw[4:head], dtype=">i4"))
    expected = head + int(np.prod(dims))
    if len(raw) != expected:
        raise DataError(f"{path} is truncated or corrupt: {len(raw)} bytes, expected {expected} for shape {dims}")
    arr = np.frombuffer(raw, dtype=np.uint8, offset=head).reshape(dims)
    arr.flags.writeable = False
    return arr
