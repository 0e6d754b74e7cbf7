"""Command `i2ibench report`: a static HTML report of runs."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command("report")
    def report_cmd(
        runs: List[Path] = typer.Argument(..., help="Run folders, folders searched for runs (records.csv or config.yaml), or records files, e.g. results/ or results/campaigns/fashion10-cpu."),
        out: Path = typer.Option(..., "--out", "-o", help="Folder to write (index.html, heatmaps/, curves/, img/). It may be missing, empty or an earlier report; any other folder is refused."),
        compare: Optional[str] = typer.Option(None, "--compare", "-c", help="Add the difference of mFID to this method in the tables."),
        published: bool = typer.Option(True, "--published/--no-published", help="Show the papers' numbers (results/published/) beside the runs' tables."),
        heatmap_metric: Optional[List[str]] = typer.Option(None, "--heatmap-metric", help="Per-task / per-domain metrics drawn as heatmaps (repeatable; default fid), e.g. --heatmap-metric fid --heatmap-metric coverage."),
    ) -> None:
        """Write a static HTML report (opens from a file:// URL, no network): the compact tables beside the published numbers, label quality, class-wise heatmaps, mFID against iteration, the CLIPTraVeLGAN trade-off plot, and each run's provenance and final sample grids.

        `i2ibench report results/ --out report/` then open report/index.html.
        """
        from i2ibench.errors import I2IError
        from i2ibench.registry import METRICS, suggest
        from i2ibench.report.html import REPORT_HEATMAP_METRICS, build_report

        metrics = tuple(heatmap_metric) if heatmap_metric else REPORT_HEATMAP_METRICS
        for m in metrics:
            if m not in METRICS:
                raise I2IError(f"--heatmap-metric {m}: not a metric key.{suggest(m, METRICS.in_order())}")
        index = build_report([str(r) for r in runs], out, published=published, compare_to=compare,
                             heatmap_metrics=metrics, log=lambda s: typer.echo(s, err=True))
        typer.echo(f"wrote {index}")
