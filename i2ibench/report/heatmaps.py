"""Class-wise heatmaps: per-task and per-target results, one figure per dataset, preset, protocol,
mode and metric, with a panel per run configuration on one colour scale.

- ``pairwise``: a source x target matrix per configuration (the diagonal, no task, stays empty);
- ``pooled``: one matrix with a row per configuration and a column per target domain.

Rows and columns follow the dataset's domain order (its registered spec; for ``folder:`` and
``twodomain:`` datasets, or names the spec lacks, the order the records give). All panels of
a figure share one ``vmin``/``vmax`` (the figure's smallest and largest value), so equal
colours mean equal values across methods, and the one colour bar names the metric and its
direction (from the metric registry). Values are means over seeds.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from i2ibench.errors import I2IError
from i2ibench.fileio import atomic_path
from i2ibench.names import PAIRWISE, POOLED
from i2ibench.registry import METRICS
from i2ibench.report import records as R
from i2ibench.report.provenance import describe
from i2ibench.report.tables import metric_label

HEATMAP_METRICS = ("fid", "density", "coverage", "lpips")
# What tells the panels of one figure apart (the figure itself fixes dataset, preset, protocol, mode, metric).
_PANEL = [R.METHOD, R.SETTING, R.ITERATIONS, R.REAL_SPLIT, R.FEATURES, R.VLM, R.EVAL_PARAMS]
_FIGURE = [R.DATASET, R.PRESET, R.PROTOCOL, R.MODE, R.METRIC]


@dataclass
class HeatmapFigure:
    """One figure: ``panels`` are (title, matrix) with rows ``row_axis`` and columns ``col_axis``."""

    name: str
    title: str
    dataset: str
    metric: str
    row_axis: str
    col_axis: str
    panels: list[tuple[str, pd.DataFrame]] = field(default_factory=list)

    def limits(self) -> tuple[float, float]:
        """The figure's one colour scale: the smallest and largest value over all panels."""
        values = pd.concat([m.stack() for _, m in self.panels]) if self.panels else pd.Series(dtype=float)
        values = values.dropna()
        if values.empty:
            return (0.0, 1.0)
        return float(values.min()), float(values.max())


def domain_order(dataset: str, seen: list[str]) -> list[str]:
    """The dataset's domains in its spec's order, then any other name in ``seen`` (in its order).

    Specs of ``folder:``/``twodomain:`` datasets read files, so their order is ``seen``'s."""
    spec_domains: list[str] = []
    if ":" not in dataset:
        try:
            from i2ibench.data.catalog import get_spec

            spec_domains = list(get_spec(dataset).domains)
        except I2IError:
            spec_domains = []
    seen = list(dict.fromkeys(seen))
    return [d for d in spec_domains if d in seen] + [d for d in seen if d not in spec_domains]


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


def _panel_labels(df: pd.DataFrame, keys: pd.Series) -> dict[str, str]:
    """Configuration key -> its label (method + the tag that tells it from others of its method)."""
    firsts = df.assign(_k=keys).drop_duplicates("_k")
    rows = [{f: ("" if pd.isna(r[f]) else str(int(r[f])) if f == R.ITERATIONS else str(r[f]))
             for f in _PANEL if f != R.METHOD} for _, r in firsts.iterrows()]
    methods = list(firsts[R.METHOD])
    prov = describe(methods, rows)
    return {k: m + (f" {t}" if t else "") for k, m, t in zip(firsts["_k"], methods, prov.tags)}


def heatmap_figures(records: pd.DataFrame, metrics: tuple[str, ...] = HEATMAP_METRICS) -> list[HeatmapFigure]:
    """The figures of the reproduced per-task (pairwise) and per-target (pooled) rows of ``metrics``."""
    df = R.normalize(records)
    df = df[(df[R.SOURCE] == R.SOURCE_REPRODUCED) & df[R.METRIC].isin(metrics)
            & (((df[R.PROTOCOL] == PAIRWISE) & (df[R.SCOPE] == R.SCOPE_TASK))
               | ((df[R.PROTOCOL] == POOLED) & (df[R.SCOPE] == R.SCOPE_DOMAIN)))]
    out: list[HeatmapFigure] = []
    if df.empty:
        return out
    panel_key = R.row_keys(df.assign(**{R.ITERATIONS: df[R.ITERATIONS].map(
        lambda v: "" if pd.isna(v) else str(int(v)))}), _PANEL)
    for fig_key, part in df.groupby(_FIGURE, sort=False):
        dataset, preset, protocol, mode, metric = fig_key
        keys = panel_key.loc[part.index]
        labels = _panel_labels(part, keys)
        if protocol == PAIRWISE:
            pairs = part[R.DOMAIN].str.split("->", n=1, regex=False)
            order = domain_order(dataset, [p[0] for p in pairs] + [p[1] for p in pairs])
            panels = [(labels[k], task_matrix(g, order)) for k, g in part.groupby(keys, sort=False)]
            row_axis, col_axis, what = "source", "target", "per task"
        else:
            order = domain_order(dataset, list(part[R.DOMAIN]))
            mat = (part.assign(_k=keys.map(labels)).groupby(["_k", R.DOMAIN], sort=False)[R.VALUE].mean()
                   .unstack(R.DOMAIN).reindex(columns=order))
            mat = mat.reindex(index=list(dict.fromkeys(keys.map(labels))))
            panels = [("", mat)]
            row_axis, col_axis, what = "run", "target", "per target"
        title = f"{dataset} ({preset}), {protocol}, {mode}: {metric_label(metric)} {what}"
        out.append(HeatmapFigure(_slug(dataset, preset, protocol, mode, metric), title, dataset, metric,
                                 row_axis, col_axis, panels))
    return out


def colorbar_label(metric: str) -> str:
    """'FID (lower is better)': the metric and its direction from the metric registry."""
    if metric in METRICS:
        return f"{metric_label(metric)} ({'higher' if METRICS.get(metric).higher_is_better else 'lower'} is better)"
    return metric


def draw(spec: HeatmapFigure):
    """A matplotlib Figure of ``spec``: its panels side by side (at most 3 a row), one colour scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    vmin, vmax = spec.limits()
    n = len(spec.panels)
    ncols = min(n, 3)
    nrows = math.ceil(n / ncols)
    first = spec.panels[0][1]
    cell = 0.36  # inches per matrix cell (square cells)
    w = 0.9 + cell * first.shape[1] + max(map(len, map(str, first.index)), default=4) * 0.06
    h = 1.3 + cell * first.shape[0]
    # constrained layout keeps the figure title, panel titles and the shared colour bar apart
    fig, axes = plt.subplots(nrows, ncols, figsize=(w * ncols + 1.2, h * nrows + 0.6), squeeze=False,
                             layout="constrained")
    image = None
    for k, (ax, (label, mat)) in enumerate(zip(axes.flat, spec.panels)):
        image = ax.imshow(mat.to_numpy(dtype=float), cmap="viridis", vmin=vmin, vmax=vmax, aspect="equal")
        ax.set_xticks(range(mat.shape[1]), list(mat.columns), rotation=60, ha="right", fontsize=7)
        ax.set_yticks(range(mat.shape[0]), list(mat.index), fontsize=7)
        ax.set_xlabel(spec.col_axis, fontsize=8)
        if k % ncols == 0:  # the row axis is named once per row of panels
            ax.set_ylabel(spec.row_axis, fontsize=8)
        if label:
            ax.set_title(label, fontsize=8)
        mid = (vmin + vmax) / 2
        for i in range(mat.shape[0]):
            for j in range(mat.shape[1]):
                v = mat.iat[i, j]
                if pd.notna(v):
                    ax.text(j, i, f"{v:.3g}", ha="center", va="center", fontsize=6,
                            color="black" if v > mid else "white")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.suptitle(spec.title, fontsize=9)
    bar = fig.colorbar(image, ax=list(axes.flat), shrink=0.8)
    bar.set_label(colorbar_label(spec.metric), fontsize=8)
    return fig


def write_figure(spec: HeatmapFigure, path: str | Path) -> Path:
    """Draw ``spec`` into the PNG ``path`` (written atomically)."""
    import matplotlib.pyplot as plt

    fig = draw(spec)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return path


def write_heatmaps(records: pd.DataFrame, folder: str | Path, metrics: tuple[str, ...] = HEATMAP_METRICS) -> list[Path]:
    """Write every figure of ``heatmap_figures`` as ``folder/<dataset>_<preset>_<protocol>_<mode>_<metric>.png``."""
    folder = Path(folder)
    return [write_figure(spec, folder / f"{spec.name}.png") for spec in heatmap_figures(records, metrics)]
