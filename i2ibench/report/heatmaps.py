"""Class-wise heatmaps: the per-task results of the ``pairwise`` protocol as a source x target matrix.

One PNG per (run configuration, mode, metric): rows are source domains, columns target
domains, cells the task's value averaged over seeds (the diagonal, no task, stays empty).
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from i2ibench.fileio import atomic_path
from i2ibench.report import records as R
from i2ibench.report.tables import metric_label

HEATMAP_METRICS = ("fid", "density", "coverage", "lpips")
_CONFIG = [R.METHOD, R.DATASET, R.PRESET, R.ITERATIONS, R.MODE, R.FEATURES]


def task_matrix(tasks: pd.DataFrame, domains: list[str] | None = None) -> pd.DataFrame:
    """Mean value per ``src->trg`` task of ``tasks`` (rows of one configuration and metric) as src x trg."""
    pairs = tasks[R.DOMAIN].str.split("->", n=1, expand=True, regex=False)
    frame = pd.DataFrame({"src": pairs[0], "trg": pairs[1], "value": tasks[R.VALUE].astype(float)})
    mat = frame.groupby(["src", "trg"], sort=False)["value"].mean().unstack("trg")
    order = domains or list(dict.fromkeys(list(frame["src"]) + list(frame["trg"])))
    return mat.reindex(index=order, columns=order)


def _slug(*parts: object) -> str:
    text = "_".join(str(p) for p in parts if str(p) not in ("", "nan"))
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")


def write_heatmaps(records: pd.DataFrame, folder: str | Path, metrics: tuple[str, ...] = HEATMAP_METRICS) -> list[Path]:
    """Write a heatmap PNG per configuration, mode and metric with per-task rows; returns the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    df = R.normalize(records)
    df = df[(df[R.SCOPE] == R.SCOPE_TASK) & (df[R.SOURCE] == R.SOURCE_REPRODUCED) & df[R.METRIC].isin(metrics)]
    folder = Path(folder)
    written: list[Path] = []
    keys = df[_CONFIG].astype(str)
    keys[R.ITERATIONS] = df[R.ITERATIONS].map(lambda v: "" if pd.isna(v) else str(int(v)))
    for key, part in df.groupby([keys[c] for c in _CONFIG] + [df[R.METRIC]], sort=False):
        mat = task_matrix(part)
        config = dict(zip(_CONFIG + [R.METRIC], key))
        n = len(mat)
        fig, ax = plt.subplots(figsize=(1.0 + 0.6 * n, 0.8 + 0.6 * n))
        im = ax.imshow(mat.to_numpy(dtype=float), cmap="viridis")
        ax.set_xticks(range(n), mat.columns, rotation=60, ha="right")
        ax.set_yticks(range(n), mat.index)
        ax.set_xlabel("target")
        ax.set_ylabel("source")
        for i in range(n):
            for j in range(n):
                v = mat.iat[i, j]
                if pd.notna(v):
                    ax.text(j, i, f"{v:.3g}", ha="center", va="center", fontsize=7, color="white")
        ax.set_title(f"{config[R.METHOD]} / {config[R.DATASET]} ({config[R.PRESET]}, {config[R.MODE]}): "
                     f"{metric_label(config[R.METRIC])} per task", fontsize=9)
        fig.colorbar(im, ax=ax, shrink=0.8)
        fig.tight_layout()
        path = folder / (_slug(config[R.METHOD], config[R.DATASET], config[R.PRESET], config[R.ITERATIONS],
                               config[R.MODE], config[R.METRIC]) + ".png")
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=100)
        plt.close(fig)
        written.append(path)
    return written
