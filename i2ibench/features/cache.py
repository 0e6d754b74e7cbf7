"""On-disk caches of features, keyed by everything they depend on.

Real-image features (``cached_features``, ``dataset_features``) and, through the same entry
format, any named set of tensors (``load_tensors``/``store_tensors``: the evaluation's fake
features, ``i2ibench.evaluation.fake_cache``), each kind in its own folder of the cache root.

A key is a JSON-able dict, e.g. ``{"dataset", "split", "domain", "extractor", "img_size",
"inputs": <fingerprint of the input files or pixels>}``. Its canonical JSON (sorted keys) is
hashed into the file name; the file also stores the key itself and a hash of the features,
and a readable ``.json`` copy of the key sits beside it. An entry is reused only when the
stored key equals the requested key and the features match their hash; a changed input
fingerprint is a different key, so it is recomputed; an unreadable or corrupt entry is
recomputed (with a warning) and rewritten atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable

import torch

from i2ibench.defaults import cache_dir
from i2ibench.errors import I2IError
from i2ibench.fileio import remove_orphan_temps, state_dict_sha256, torch_save, write_json

CACHE_SUBDIR = "features"
FORMAT_VERSION = 1


def fingerprint_tensor(t: torch.Tensor) -> str:
    """SHA-256 of a tensor's dtype, shape and values."""
    t = t.detach().cpu().contiguous()
    h = hashlib.sha256(f"{t.dtype}|{tuple(t.shape)}|".encode())
    if t.numel():
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def fingerprint_files(paths: Iterable[str | os.PathLike]) -> str:
    """SHA-256 over (absolute path, size, mtime in ns) of each file, in the order given.

    Metadata, not content: hashing the bytes of every real image at each evaluation costs
    about as much as decoding them, which the cache exists to avoid. A replaced, edited,
    added, removed or reordered file changes the fingerprint; an edit that keeps size and
    mtime does not (tools that rewrite files update mtime).
    """
    h = hashlib.sha256()
    for p in paths:
        path = Path(p).resolve()
        try:
            st = path.stat()
        except OSError as e:
            raise I2IError(f"cannot fingerprint {path}: {e.strerror}") from None
        h.update(f"{path}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _canonical(key: dict) -> str:
    if not isinstance(key, dict) or not key:
        raise I2IError("a feature cache key must be a non-empty dict")
    try:
        return json.dumps(key, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as e:
        raise I2IError(f"feature cache key is not plain JSON data: {e}") from None


def cache_entry_path(key: dict, cache_root: str | os.PathLike | None = None, subdir: str = CACHE_SUBDIR) -> Path:
    """Where the features for ``key`` are (or would be) stored: ``<cache root>/<subdir>/<digest>.pt``."""
    folder = Path(cache_root) / subdir if cache_root is not None else cache_dir(subdir)
    digest = hashlib.sha256(_canonical(key).encode()).hexdigest()
    return folder / f"{digest[:32]}.pt"


def cached_features(
    key: dict,
    compute: Callable[[], torch.Tensor],
    cache_root: str | os.PathLike | None = None,
) -> torch.Tensor:
    """Features for ``key``: loaded from the cache, or ``compute()``-d and stored.

    ``cache_root`` replaces the i2ibench cache root (``$I2IBENCH_CACHE``); entries live in its
    ``features/`` folder, in the entry format of ``store_tensors`` (one tensor, ``features``).
    """
    cached = load_tensors(key, CACHE_SUBDIR, cache_root)
    if cached is not None and set(cached) == {"features"}:
        return cached["features"]
    feats = compute()
    if not isinstance(feats, torch.Tensor):
        raise I2IError(f"feature computation returned {type(feats).__name__}, expected a tensor")
    store_tensors(key, {"features": feats}, CACHE_SUBDIR, cache_root)
    return feats.detach().cpu()


def _tensors_sha256(tensors: dict[str, torch.Tensor]) -> str:
    return state_dict_sha256(tensors) if tensors else hashlib.sha256(b"").hexdigest()


def load_tensors(key: dict, subdir: str, cache_root: str | os.PathLike | None = None) -> dict[str, torch.Tensor] | None:
    """The named tensors stored for ``key`` in ``subdir`` of the cache root, or None.

    None when there is no entry, and (with a warning) when the entry is unreadable, belongs
    to another key or its tensors do not match their stored digest: the caller recomputes.
    Real-feature entries written before every kind shared this layout (one ``features`` tensor
    with its ``features_sha256``) are read as ``{"features": ...}``, so no cache is lost.
    """
    path = cache_entry_path(key, cache_root, subdir)
    if not path.is_file():
        return None
    try:
        entry = torch.load(path, map_location="cpu", weights_only=True)
        tensors = entry.get("tensors") if isinstance(entry, dict) else None
        digest_ok = tensors is not None and _tensors_sha256(tensors) == entry.get("tensors_sha256")
        if isinstance(entry, dict) and tensors is None and isinstance(entry.get("features"), torch.Tensor):
            tensors = {"features": entry["features"]}  # the earlier real-feature layout
            digest_ok = fingerprint_tensor(entry["features"]) == entry.get("features_sha256")
        ok = (isinstance(tensors, dict) and all(isinstance(t, torch.Tensor) for t in tensors.values())
              and entry.get("format") == FORMAT_VERSION and entry.get("key") == _canonical(key) and digest_ok)
    except Exception as e:  # truncated zip, foreign pickle, ...
        warnings.warn(f"cache entry {path} is unreadable ({type(e).__name__}); recomputing")
        return None
    if not ok:
        warnings.warn(f"cache entry {path} does not match its key or hash; recomputing")
        return None
    return tensors


def store_tensors(key: dict, tensors: dict[str, torch.Tensor], subdir: str,
                  cache_root: str | os.PathLike | None = None) -> Path:
    """Store named CPU tensors for ``key`` (atomically; a readable ``.json`` copy of the key beside them)."""
    path = cache_entry_path(key, cache_root, subdir)
    tensors = {name: t.detach().cpu().contiguous() for name, t in tensors.items()}
    entry = {"format": FORMAT_VERSION, "key": _canonical(key), "tensors": tensors,
             "tensors_sha256": _tensors_sha256(tensors)}
    remove_orphan_temps(path.parent)  # only temps idle for ORPHAN_AGE_S: others may be writing
    torch_save(entry, path)
    write_json(path.with_suffix(".json"), key)
    return path


def fingerprint_dataset_images(ds: Any, idx: torch.Tensor, batch: int = 256) -> str:
    """What features of the images ``ds[idx]`` depend on: the files' metadata (file-backed
    datasets, ``fingerprint_files``), or a SHA-256 of the pixels (in-memory datasets)."""
    parent = getattr(ds, "parent", None)
    if parent is not None:  # a subset of another dataset: its parent's images
        return fingerprint_dataset_images(parent, ds.parent_indices[idx], batch)
    paths = getattr(ds, "paths", None)  # file-backed datasets only
    if paths is not None:
        return f"files:{fingerprint_files([paths[i] for i in idx.tolist()])}"
    h = hashlib.sha256()
    for start in range(0, len(idx), batch):
        h.update(str(fingerprint_tensor(ds.images(idx[start:start + batch]))).encode())
    return f"pixels:{h.hexdigest()}"


def dataset_features(ds: Any, domain: int, idx: torch.Tensor, features: Any, batch_size: int,
                     cache: bool | str | Path = True) -> torch.Tensor:
    """Features ``[n, D]`` of the real images ``ds[idx]`` of class ``domain``, through the cache.

    One computation per (dataset, split, domain, image size, extractor, images): the key holds a
    fingerprint of the files (or of the pixels of in-memory datasets), so changed images are
    recomputed. ``cache``: True (the default cache root), a folder (that root) or False.
    """
    batch = max(1, int(batch_size))

    def compute() -> torch.Tensor:
        parts = [features(ds.images(idx[s:s + batch])) for s in range(0, len(idx), batch)]
        return torch.cat(parts) if parts else torch.zeros(0, 0, dtype=torch.float64)

    if not cache:
        return compute()
    key = {"kind": "real-features", "dataset": ds.name, "split": ds.split, "domain": ds.domains[domain],
           "img_size": ds.img_size, "features": features.name, "n": len(idx),
           "images": fingerprint_dataset_images(ds, idx, batch)}
    if getattr(ds, "paths", None) is not None or getattr(ds, "parent", None) is not None:
        key["resize"] = getattr(ds, "resize_rule", "crop")  # the same files give other pixels per rule
    return cached_features(key, compute, cache_root=None if cache is True else cache)
