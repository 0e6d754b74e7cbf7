"""Reference statistics as files: a dataset split's per-domain Inception statistics in ``.npz``.

``export_stats`` writes one ``.npz`` (``numpy.savez``, no pickles) with

- ``mu`` [2048], ``sigma`` [2048, 2048] (float64): the statistics of *all* the split's images
  pooled, under the two names pytorch-fid (``np.load(path)["mu"]``, ``["sigma"]``) and clean-fid
  (``np.load(path)["mu"]``, ``["sigma"]``) read, so either tool can use the file as it is;
- ``mu_<k>``, ``sigma_<k>`` for every domain k = 0..K-1 (the dataset's domain index), with
  ``domains`` [K] (names) and ``counts`` [K] (images per domain);
- ``meta``: a JSON string (dataset, split, image size, feature extractor, i2ibench version).

With ``per_domain_files=True`` it also writes ``<stem>.<k>-<domain>.npz`` beside it, each with
exactly ``mu`` and ``sigma`` of one domain, for tools that take one distribution per file.
``mu`` is the mean and ``sigma`` the unbiased covariance (``np.cov(feats, rowvar=False)``) of
the features, as both tools compute them.

Features come from the real-feature cache (``features/cache.py``), under the same key as the
evaluation harness uses for a domain's real images (all of them: ``max_real_per_domain`` 0),
so exporting after an evaluation costs no Inception pass and vice versa.

``fid_against_stats`` scores fake features against such a file (``eval --real STATS.npz``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from i2ibench.errors import I2IError
from i2ibench.features.cache import dataset_features
from i2ibench.metrics.fid import feature_stats, fid_from_stats


def domain_real_features(ds: Any, domain: int, features: Any, batch_size: int = 50,
                         cache: bool | str | Path = True) -> torch.Tensor:
    """Inception features [n, 2048] (float64) of all real images of ``domain`` in ``ds``, cached.

    ``features``: an ``InceptionFeatures`` (or any callable images -> [n, D] with a ``name``).
    ``cache``: True (the i2ibench cache), False (compute) or a cache root folder. ``batch_size``
    is part of the pixel fingerprint; 50 is the harness's default (``eval.batch_size``), so an
    evaluation with all real images and an export share one cache entry.
    Cost: ~0.2 s per image on one CPU thread for Inception when not cached.
    """
    return dataset_features(ds, domain, ds.indices_of(domain), features, batch_size, cache)


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in name.lower()).strip("-") or "domain"


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    from i2ibench.fileio import atomic_path

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:  # a file object: savez would append '.npz' to a temp name
            np.savez(fh, **arrays)


def export_stats(dataset: str, out: str | Path, split: str = "val", img_size: int | None = None, data_root=None,
                 features: Any = None, device: str = "cpu", batch_size: int = 50, cache: bool | str | Path = True,
                 per_domain_files: bool = False) -> list[Path]:
    """Write the per-domain Inception statistics of ``dataset``/``split`` to ``out`` (see module doc).

    Returns the files written (``out`` first). ``features`` defaults to ``InceptionFeatures(device)``.
    Raises ``I2IError`` (``DataError``) for an unknown dataset or split, a missing dataset, a
    multi-label dataset, ``out`` not ending in ``.npz``, or a domain with fewer than 2 images.
    Cost: one Inception pass over the split when its features are not cached (~0.2 s per image
    on one CPU thread), then a 2048 x 2048 covariance per domain.
    """
    from i2ibench import __version__
    from i2ibench.data.catalog import create_dataset

    out = Path(out)
    if out.suffix != ".npz":
        raise I2IError(f"statistics are written as .npz; got --out {out}")
    ds = create_dataset(dataset, split, img_size, data_root)
    if ds.multi_label:
        raise I2IError(f"{dataset} is multi-label: per-domain statistics need single-label domains")
    if features is None:
        from i2ibench.features.inception import InceptionFeatures

        features = InceptionFeatures(device=device, batch_size=batch_size)
    per_domain = [domain_real_features(ds, d, features, batch_size, cache) for d in range(ds.num_domains)]
    arrays: dict[str, np.ndarray] = {}
    for d, feats in enumerate(per_domain):
        if len(feats) < 2:
            raise I2IError(f"domain '{ds.domains[d]}' of {dataset}/{split} has {len(feats)} images; statistics "
                           f"need at least 2")
        arrays[f"mu_{d}"], arrays[f"sigma_{d}"] = feature_stats(feats)
    arrays["mu"], arrays["sigma"] = feature_stats(torch.cat(per_domain))
    arrays["domains"] = np.array(ds.domains)
    arrays["counts"] = np.array([len(f) for f in per_domain], dtype=np.int64)
    meta = {"dataset": dataset, "split": split, "img_size": ds.img_size, "features": features.name,
            "domains": ds.domains, "counts": arrays["counts"].tolist(), "i2ibench": __version__,
            "layout": "mu/sigma: all domains pooled; mu_<k>/sigma_<k>: domain k"}
    arrays["meta"] = np.array(json.dumps(meta))
    _write_npz(out, arrays)
    written = [out]
    if per_domain_files:
        for d, name in enumerate(ds.domains):
            path = out.with_name(f"{out.stem}.{d}-{_slug(name)}.npz")
            _write_npz(path, {"mu": arrays[f"mu_{d}"], "sigma": arrays[f"sigma_{d}"]})
            written.append(path)
    return written


def load_stats(stats_npz: str | Path, domain: int | str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(mu [D], sigma [D, D]) from a statistics file: the pooled ``mu``/``sigma`` (``domain`` None,
    also any pytorch-fid or clean-fid file) or one domain's, by index or name (i2ibench files).
    Raises ``I2IError`` for an unreadable file or a missing domain."""
    path = Path(stats_npz)
    try:
        with np.load(path, allow_pickle=False) as f:
            keys = set(f.files)
            if domain is None:
                name_mu, name_sigma = "mu", "sigma"
            else:
                if isinstance(domain, str):
                    names = [str(n) for n in f["domains"]] if "domains" in keys else []
                    if domain not in names:
                        raise I2IError(f"{path} has no domain '{domain}'. Valid: {', '.join(names) or 'none'}")
                    domain = names.index(domain)
                name_mu, name_sigma = f"mu_{int(domain)}", f"sigma_{int(domain)}"
            if name_mu not in keys or name_sigma not in keys:
                raise I2IError(f"{path} has no '{name_mu}'/'{name_sigma}' arrays (it has: {', '.join(sorted(keys))})")
            return np.asarray(f[name_mu], np.float64), np.asarray(f[name_sigma], np.float64)
    except I2IError:
        raise
    except (OSError, ValueError) as e:
        raise I2IError(f"cannot read statistics file {path}: {e}") from None


def stats_image_count(stats_npz: str | Path) -> int | None:
    """How many images the pooled ``mu``/``sigma`` of ``stats_npz`` came from: the sum of an
    i2ibench file's ``counts``; None for a file without them (pytorch-fid, clean-fid)."""
    try:
        with np.load(Path(stats_npz), allow_pickle=False) as f:
            return int(np.asarray(f["counts"]).sum()) if "counts" in f.files else None
    except (OSError, ValueError) as e:
        raise I2IError(f"cannot read statistics file {stats_npz}: {e}") from None


def fid_against_stats(stats_npz: str | Path, fake_feats, domain: int | str | None = None) -> float:
    """FID of fake features [M, D] (M >= 2) against the statistics in ``stats_npz`` (see ``load_stats``).

    Same value as ``fid(real_feats, fake_feats)`` on the features the statistics came from (the
    torch-fidelity formula of ``metrics/fid.py``; tested to 1e-6 relative). With M <= D the trace
    term comes from an M x M symmetric eigenproblem: with centred fakes C2 and
    S2 = C2'C2 / (M - 1), the non-zero eigenvalues of S1 S2 are those of C2 S1 C2' / (M - 1)
    (cost M D² instead of a D x D non-symmetric eigenproblem); negative rounding eigenvalues
    count as 0, as the real part of their complex square root does in ``fid_from_stats``.
    """
    mu1, sigma1 = load_stats(stats_npz, domain)
    arr = fake_feats.detach().cpu().numpy() if isinstance(fake_feats, torch.Tensor) else np.asarray(fake_feats)
    if arr.ndim != 2 or arr.shape[0] < 2 or arr.shape[1] != mu1.shape[0]:
        raise I2IError(f"fake features must be [M >= 2, {mu1.shape[0]}] for these statistics, got shape {arr.shape}")
    arr = arr.astype(np.float64, copy=False)
    m, d = arr.shape
    if m > d:
        return fid_from_stats(mu1, sigma1, *feature_stats(arr))
    mu2 = arr.mean(axis=0)
    c2 = arr - mu2
    inner = c2 @ sigma1 @ c2.T / (m - 1)
    tr_covmean = np.sqrt(np.clip(np.linalg.eigvalsh((inner + inner.T) / 2), 0.0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.einsum("ij,ij->", c2, c2) / (m - 1) - 2.0 * tr_covmean)
