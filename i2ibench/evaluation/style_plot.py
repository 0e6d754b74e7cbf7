"""2-D map of style codes, coloured by ground-truth domain and by estimated cluster (PNG).

TUNIT's figures 4 and 6: a t-SNE of the guiding network's style codes of test images. The
embedding is t-SNE (scikit-learn, PCA initialisation, fixed seed) or, when scikit-learn is
missing or ``embedding="pca"``, the first two principal components. Either is deterministic
for the same codes. Left panel: ground truth (omitted when ``gt`` is None); right panel: the
method's clusters. Colours come from a fixed qualitative palette indexed by the label value,
so label k has the same colour in both panels and across plots.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from i2ibench.evaluation.protocols import generator, subset
from i2ibench.fileio import atomic_path

# matplotlib's tab10 then tab20's lighter shades: 20 distinguishable colours, then repeated.
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
)


def label_colour(k: int) -> str:
    return PALETTE[int(k) % len(PALETTE)]


def _as_numpy(a) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        return a.detach().float().cpu().numpy() if a.is_floating_point() else a.detach().cpu().numpy()
    return np.asarray(a)


def pca_2d(x: np.ndarray) -> np.ndarray:
    """Projection on the first two principal components (zero-padded if there are fewer)."""
    x = x - x.mean(0, keepdims=True)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    out = x @ vt[:2].T
    return np.pad(out, ((0, 0), (0, 2 - out.shape[1]))) if out.shape[1] < 2 else out


def embed_2d(codes: np.ndarray, embedding: str = "tsne", seed: int = 0) -> tuple[np.ndarray, str]:
    """``[N, 2]`` coordinates and the name of the embedding actually used."""
    codes = np.asarray(codes, dtype=np.float64).reshape(len(codes), -1)
    if embedding not in ("tsne", "pca"):
        raise ValueError(f"embedding must be 'tsne' or 'pca', got {embedding!r}")
    if embedding == "tsne" and len(codes) > 4:
        try:
            from sklearn.manifold import TSNE
        except ImportError:
            embedding = "pca"
        else:
            from threadpoolctl import threadpool_limits

            perplexity = float(min(30.0, (len(codes) - 1) / 3.0))
            tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed)
            # as many OpenMP threads as torch uses: more oversubscribe a shared CPU (10x slower)
            with threadpool_limits(limits=max(1, torch.get_num_threads())):
                return tsne.fit_transform(codes), "tsne"
    return pca_2d(codes), "pca"


def plot_style_codes(styles, gt, clusters, path: str | Path, *, embedding: str = "tsne",
                     title: str = "", seed: int = 0, dpi: int = 100, gt_names: list[str] | None = None) -> Path:
    """Write the style-code map of ``styles`` ``[N, D]`` to ``path`` (PNG); returns the path.

    ``gt``: ground-truth domain per code (or None), ``clusters``: cluster id per code; both
    integer sequences of length N. ``gt_names``: legend names of the ground-truth classes.
    Axes carry no units (t-SNE coordinates are arbitrary).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    codes = _as_numpy(styles)
    clusters = _as_numpy(clusters).astype(np.int64).reshape(-1)
    panels = [("cluster", clusters)]
    if gt is not None:
        panels.insert(0, ("ground truth", _as_numpy(gt).astype(np.int64).reshape(-1)))
    for name, lab in panels:
        if len(lab) != len(codes):
            raise ValueError(f"{name} labels: {len(lab)} values for {len(codes)} style codes")
    xy, used = embed_2d(codes, embedding, seed)

    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 4.5), squeeze=False)
    for ax, (name, lab) in zip(axes[0], panels):
        for k in np.unique(lab):
            sel = lab == k
            legend = gt_names[k] if name == "ground truth" and gt_names and k < len(gt_names) else str(k)
            ax.scatter(xy[sel, 0], xy[sel, 1], s=8, c=label_colour(k), label=legend, linewidths=0)
        ax.set_title(f"coloured by {name}")
        ax.set_xticks([])
        ax.set_yticks([])
        if len(np.unique(lab)) <= 20:
            ax.legend(fontsize=6, markerscale=1.5, loc="best", frameon=False)
    fig.suptitle(f"{title + ': ' if title else ''}style codes, {used.upper() if used == 'pca' else 't-SNE'} (N={len(codes)})")
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    plt.close(fig)
    return path


def plot_method_style_codes(method, dataset, indices, path: str | Path, *, batch_size: int = 50,
                            embedding: str = "tsne", title: str = "") -> Path:
    """The style-code map of a trained method on ``dataset`` images ``indices``.

    Needs ``method.style_codes(x)`` and ``method.domain_labels(x)`` (tunit); ground truth is
    ``dataset.labels`` when they are one class per image, else the plot has the cluster panel only.
    """
    idx = torch.as_tensor(indices, dtype=torch.long).reshape(-1)
    styles, clusters = [], []
    with torch.no_grad():
        for s in range(0, len(idx), batch_size):
            x = dataset.images(idx[s:s + batch_size]).to(method.device)
            styles.append(method.style_codes(x).float().cpu())
            clusters.append(method.domain_labels(x).cpu())
    labels = torch.as_tensor(dataset.labels)
    gt = labels[idx] if labels.dim() == 1 else None
    return plot_style_codes(torch.cat(styles), gt, torch.cat(clusters), path, embedding=embedding, title=title,
                            gt_names=list(getattr(dataset, "domains", [])) or None)


def plot_evaluated_style_codes(method, val, per_domain: int, seed: int, batch_size: int, out_dir: Path,
                               iterations: int | None) -> Path:
    """The style-code map written with an evaluation: ``per_domain`` validation images per class
    (a seeded choice), to ``out_dir/style_codes_<iterations>.png``."""
    idx = torch.cat([subset(val.indices_of(d), per_domain, generator(seed, d, 5)) for d in range(len(val.domains))])
    name = f"style_codes_{int(iterations):08d}.png" if iterations is not None else "style_codes.png"
    return plot_method_style_codes(method, val, idx, Path(out_dir) / name, batch_size=max(1, batch_size),
                                   title=f"{method.name} on {val.name}")
