"""``i2ibench report``: a static HTML report of runs, one folder that opens from a file:// URL.

``DIR/index.html`` (jinja2 template ``templates/report.html.j2``; no script, no external style
sheet, font or image: everything is in the folder) holds, in order:

1. the compact tables of the runs (``report.compact``), per dataset, beside the published
   numbers (``results/published``; never in one table with them);
2. the label-quality tables (``labels`` / ``labels-initial`` records);
3. class-wise heatmaps (``report.heatmaps``; PNGs in ``DIR/heatmaps``);
4. per run, mFID against iteration (``report.curves``; PNGs in ``DIR/curves``) where its records
   hold several iterations, else "single evaluation";
5. the CLIPTraVeLGAN trade-off plot (``report.tradeoff``) when two-domain cliptravelgan,
   travelgan or cyclegan runs are present;
6. per run, its provenance (config.yaml and records) and final sample grids (copied to
   ``DIR/img/<run>/``).

Links are relative and no absolute path of the machine is written. The folder is built next to
``DIR`` and renamed into place (``fileio.atomic_dir``). ``DIR`` may be missing, empty, or a
previous report (it holds the marker file ``MARKER``); any other folder is refused before
anything is written.
"""

from __future__ import annotations

import datetime as _dt
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import pandas as pd

from i2ibench import __version__
from i2ibench.errors import I2IError
from i2ibench.fileio import atomic_dir, check_writable_dir
from i2ibench.metrics import keys as mk
from i2ibench.report import records as R
from i2ibench.report.compact import REPRODUCED_SECTION, CompactTable, build_compact
from i2ibench.report.curves import evaluated_iterations, fid_curve, plot_fid_curve
from i2ibench.report.heatmaps import heatmap_figures, write_figure
from i2ibench.report.layout import LEGEND, marker
from i2ibench.report.runinfo import RunInfo, find_runs
from i2ibench.report.tables import metric_label, select

MARKER = ".i2ibench-report"
TEMPLATE = "report.html.j2"
TWO_DOMAIN_METHODS = ("cliptravelgan", "travelgan", "cyclegan")
TRADEOFF_Y = (mk.CONTENT_PRESERVATION, mk.LPIPS_TRUTH, mk.LPIPS_IO)  # the first the records have
REPORT_HEATMAP_METRICS = (mk.FID,)
# A user dataset is named by its path (folder:/home/x/data), a VLM by its weights file
# (file:MODEL=/home/x/w.pt); the report shows the last part.
_USER_PATH = re.compile(r"\b((?:folder|twodomain):|file:[^\s=\"'<>]*=)(/[^\s\"'<>,;)]*)")


@dataclass
class Figure:
    src: str      # relative to the report folder
    caption: str


def check_out(out: str | Path) -> Path:
    """``out`` if a report may be written there: missing, an empty folder or a previous report.

    I2IError (one line) for a file, a non-empty folder without ``MARKER``, or a place that
    cannot be written."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise I2IError(f"--out {out}: is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise I2IError(f"--out {out}: a non-empty folder that no earlier i2ibench report made; "
                       "give a new or empty folder")
    check_writable_dir(out.parent if str(out.parent) else Path("."), "--out")
    return out


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "run"


def scrub(text: str) -> str:
    """``text`` with the absolute paths in user datasets' and VLMs' names cut to their last part
    (``folder:…/monet2photo``, ``file:ViT-B-32=…/weights.pt``)."""
    return _USER_PATH.sub(lambda m: f"{m.group(1)}…/{Path(m.group(2)).name}", text)


def _table_context(t: CompactTable) -> dict:
    rows, notes = [], []
    for label, method, cells, best, note in zip(t.labels, t.methods, t.cells, t.best, t.notes):
        mark = ""
        if note:
            mark = marker(len(notes))
            notes.append(f"[{mark}] {label}: {note}")
        rows.append({"label": label, "method": method, "marker": mark,
                     "cells": [{"text": c, "best": b} for c, b in zip(cells, best)]})
    return {"title": t.title, "columns": [c.label for c in t.columns], "rows": rows, "common": t.common,
            "notes": notes, "dataset": t.dataset}


def _copy_grids(run: RunInfo, img: Path, used: set[str]) -> list[Figure]:
    slug = _slug(run.name)
    while slug in used:
        slug += "_"
    used.add(slug)
    out = []
    for grid in run.grids:
        target = img / slug / grid.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(grid, target)
        out.append(Figure(f"img/{slug}/{grid.name}", grid.stem))
    return out


def _curve(run: RunInfo, folder: Path, used: set[str]) -> dict:
    iters = evaluated_iterations(run.records) if not run.records.empty else []
    if len(iters) > 1:
        name = _slug(run.name)
        while name in used:
            name += "_"
        used.add(name)
        plot_fid_curve(fid_curve(run.records), folder / f"{name}.png", title=f"{run.name}: mFID against iteration")
        return {"run": run.name, "figure": Figure(f"curves/{name}.png", f"{run.name}: mFID at iterations "
                                                  + ", ".join(map(str, iters))), "text": ""}
    text = (f"single evaluation (iteration {iters[0]})" if iters else "no mFID records")
    return {"run": run.name, "figure": None, "text": text}


def _tradeoff(runs: list[RunInfo], folder: Path) -> dict:
    from i2ibench.report.tradeoff import plot_tradeoff, tradeoff_points

    two = [r for r in runs if r.method in TWO_DOMAIN_METHODS and not r.records.empty]
    if not two:
        return {"figure": None, "text": "No two-domain cliptravelgan, travelgan or cyclegan runs among these runs.",
                "points": []}
    # Each run's newest evaluation: one point per run.
    records = pd.concat([r.records[r.records[R.ITERATIONS].fillna(-1) == r.records[R.ITERATIONS].fillna(-1).max()]
                         for r in two], ignore_index=True)
    have = set(records[R.METRIC])
    y = next((m for m in TRADEOFF_Y if m in have), None)
    try:
        if y is None:
            raise I2IError(f"none of {', '.join(TRADEOFF_Y)} in their records")
        points = tradeoff_points(records, y)
    except I2IError as e:
        return {"figure": None, "text": f"No trade-off plot for the two-domain runs: {e}.", "points": []}
    plot_tradeoff(points, y, folder / "tradeoff.png")
    rows = [{"method": p[R.METHOD], "setting": p[R.SETTING], "run": p[R.RUN], "fid": f"{p[mk.FID]:.2f}",
             "y": f"{p[y]:.4f}"} for _, p in points.iterrows()]
    return {"figure": Figure("tradeoff/tradeoff.png", f"FID of the A → B task against {metric_label(y)}"),
            "text": "", "points": rows, "y": metric_label(y)}


def build_report(paths: Sequence[str | Path], out: str | Path, *, published: bool = True,
                 compare_to: str | None = None, heatmap_metrics: Iterable[str] = REPORT_HEATMAP_METRICS,
                 log: Callable[[str], None] = lambda s: None) -> Path:
    """Write the report of the runs under ``paths`` to the folder ``out``; returns ``out/index.html``.

    I2IError (one line, before anything is written) for a missing path, no runs, or an ``out``
    that ``check_out`` refuses."""
    import jinja2

    out = check_out(out)
    runs = find_runs(paths)
    runs = [r for r in runs if not r.records.empty or r.grids]
    if not runs:
        raise I2IError(f"no runs (folders with records.csv or config.yaml) under {', '.join(map(str, paths))}")
    frames = [r.records for r in runs if not r.records.empty]
    records = R.normalize(pd.concat(frames, ignore_index=True)) if frames else R.load_records([])
    if published:
        from i2ibench.report.published import load_published

        records = R.normalize(pd.concat([records, load_published()], ignore_index=True))
    tables = build_compact(records, compare_to=compare_to) if not records.empty else []
    reproduced = [t for t in tables if t.section == REPRODUCED_SECTION and t.key.get(R.PROTOCOL) != "labels"]
    labels = [t for t in tables if t.section == REPRODUCED_SECTION and t.key.get(R.PROTOCOL) == "labels"]
    papers: dict[str, list] = {}
    for t in tables:
        if t.section != REPRODUCED_SECTION:
            papers.setdefault(t.section_title, []).append(_table_context(t))
    by_dataset: dict[str, list] = {}
    for t in reproduced:
        by_dataset.setdefault(t.dataset, []).append(_table_context(t))
    env = jinja2.Environment(loader=jinja2.PackageLoader("i2ibench.report", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    template = env.get_template(TEMPLATE)
    with atomic_dir(out) as tmp:
        (tmp / MARKER).write_text(f"i2ibench {__version__} report\n")
        log(f"report: {len(runs)} run(s), {len(tables)} table(s)")
        heat_specs = heatmap_figures(select(records, classwise=True), tuple(heatmap_metrics))
        heatmaps = []
        for spec in heat_specs:
            write_figure(spec, tmp / "heatmaps" / f"{spec.name}.png")
            heatmaps.append({"dataset": spec.dataset, "figure": Figure(f"heatmaps/{spec.name}.png", spec.title)})
        log(f"report: {len(heatmaps)} heatmap(s)")
        used: set[str] = set()
        curve_names: set[str] = set()
        curves = [_curve(r, tmp / "curves", curve_names) for r in runs]
        tradeoff = _tradeoff(runs, tmp / "tradeoff")
        run_ctx = [{"name": r.name, "anchor": "run-" + _slug(r.name), "provenance": r.provenance(),
                    "grids": _copy_grids(r, tmp / "img", used)} for r in runs]
        html = template.render(
            version=__version__, generated=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            sources=[r.name for r in runs], datasets=by_dataset, papers=papers, published=published,
            labels=[_table_context(t) for t in labels], heatmaps=heatmaps, curves=curves, tradeoff=tradeoff,
            runs=run_ctx, legend=LEGEND.replace("* best", "Bold: best"), compare_to=compare_to or "")
        (tmp / "index.html").write_text(scrub(html), encoding="utf-8")
    return out / "index.html"
