"""Commands `i2ibench eval`, `i2ibench table` and `i2ibench regress`."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import List, Optional

import typer

from i2ibench.errors import ConfigError, I2IError
from i2ibench.registry import suggest


def _records_for_table(runs: list[str] | None, published: bool):
    import pandas as pd

    from i2ibench.defaults import DEFAULT_RUNS_DIR
    from i2ibench.report import records as R
    from i2ibench.report.published import load_published

    paths = runs if runs else [str(DEFAULT_RUNS_DIR)]
    for p in runs or []:
        if not Path(p).exists():
            raise I2IError(f"--runs {p}: no such file or folder")
    frames = [R.load_records(paths)]
    if published:
        frames.append(load_published())
    frames = [f for f in frames if not f.empty]
    return R.normalize(pd.concat(frames, ignore_index=True)) if frames else R.load_records([])


def _check_values(option: str, given: list[str] | None, valid: list[str]) -> None:
    """A filter value no record has is most likely a typo: say so, with the valid values."""
    valid_lower = {v.lower() for v in valid}
    for g in given or []:
        for part in str(g).split(","):
            part = part.strip()
            if part and part.lower() not in valid_lower:
                raise I2IError(f"{option} {part}: no record has it.{suggest(part, valid)}")


def register(app: typer.Typer) -> None:
    @app.command("eval")
    def eval_cmd(
        path: Optional[Path] = typer.Argument(None, help="A run directory, or one checkpoint file (RUN_DIR/checkpoints/ckpt_<step>.pt)."),
        real: Optional[Path] = typer.Option(None, "--real", help="Folder of real images, or a statistics file STATS.npz (i2ibench stats export, pytorch-fid, clean-fid), with --fake."),
        fake: Optional[Path] = typer.Option(None, "--fake", help="Folder of generated images (with --real)."),
        set_: Optional[List[str]] = typer.Option(None, "--set", help="Override an eval.* key of the run, e.g. --set eval.max_src_per_domain=20 (repeatable)."),
        k: int = typer.Option(5, "--k", help="Nearest neighbours for density & coverage (folders)."),
        device: Optional[str] = typer.Option(None, help="cpu | cuda (default: the run's train.device; for folders cuda if available)."),
        precision: str = typer.Option("fp32", help="Inception precision for folder scoring: fp32 | bf16."),
        batch_size: int = typer.Option(50, help="Inception batch size for folder scoring."),
        as_json: bool = typer.Option(False, "--json", help="Print the scores (folders) or the overall records (a run) as JSON."),
        cache: bool = typer.Option(True, "--cache/--no-cache", help="Reuse (and store) the real images' features in the statistics cache, and an unchanged checkpoint's translation features in the fake-feature cache."),
        data_root: Optional[str] = typer.Option(None, "--data-root", help="Where the run's dataset is now, if its files moved (folder: and twodomain: datasets too)."),
    ) -> None:
        """Evaluate a trained run (both protocols, both modes) into RUN_DIR/records.csv, or score two image folders.

        `i2ibench eval runs/stargan2-fashion10-smoke-s777` evaluates the newest checkpoint; `i2ibench eval --real DIR --fake DIR` prints FID, density and coverage of the two folders (each searched with its sub-folders, symlinked ones included, hidden ones skipped; how many images were read from where goes to stderr).
        """
        if real is not None or fake is not None:
            if real is None or fake is None or path is not None:
                raise ConfigError("score two folders with both --real DIR and --fake DIR (and no run directory)")
            from i2ibench.evaluation.folders import score_folders

            if device is None:
                import torch

                device = "cuda" if torch.cuda.is_available() else "cpu"
            # Where the images came from goes to stderr: stdout stays the scores alone.
            scores = score_folders(real, fake, k=k, device=device, precision=precision, batch_size=batch_size,
                                   cache=cache, log=lambda line: typer.echo(line, err=True))
            if as_json:
                typer.echo(json.dumps({key: (None if isinstance(v, float) and math.isnan(v) else v)
                                       for key, v in scores.items()}))
            else:
                keys = ("fid", "kid", "kid_std", "precision", "recall", "density", "coverage", "n_real", "n_fake")
                for key in keys:
                    v = scores[key]
                    if isinstance(v, float) and math.isnan(v):
                        continue  # said once below, not as a column of "nan"
                    typer.echo(f"{key}: {v:.6f}" if isinstance(v, float) else f"{key}: {v}")
                missing = [key for key in keys if isinstance(scores[key], float) and math.isnan(scores[key])]
                if missing:
                    why = ("a statistics file holds only mu and sigma" if real.suffix == ".npz"
                           else "too few images for them")
                    typer.echo(f"not computed: {', '.join(missing)} ({why})", err=True)
            return
        if path is None:
            raise ConfigError("give a run directory or checkpoint to evaluate, or --real DIR --fake DIR")
        from i2ibench.config import parse_set_args
        from i2ibench.evaluation.runs import evaluate_run

        checkpoint = None
        run_dir = path
        if path.is_file():
            checkpoint, run_dir = path, path.parent.parent
        elif not path.is_dir():
            raise I2IError(f"no such run directory or checkpoint: {path}")
        # With --json the progress and summary go to stderr and stdout holds the JSON alone.
        log = (lambda line: typer.echo(line, err=True)) if as_json else print
        df = evaluate_run(run_dir, checkpoint, overrides=parse_set_args(set_), device=device, cache=cache,
                          data_root=data_root, log=log)
        if as_json:
            from i2ibench.report import records as R

            typer.echo(R.to_json(df[df[R.SCOPE] == R.SCOPE_OVERALL]))

    @app.command("table")
    def table_cmd(
        dataset: Optional[List[str]] = typer.Option(None, "--dataset", "-d", help="Only these datasets (repeatable or comma list)."),
        method: Optional[List[str]] = typer.Option(None, "--method", "-m", help="Only these methods."),
        metric: Optional[List[str]] = typer.Option(None, "--metric", help="Only these metrics (mfid, density, coverage, lpips, ...)."),
        protocol: Optional[List[str]] = typer.Option(None, "--protocol", help="Only these protocols (pairwise, pooled, labels, labels-initial, unspecified; stargan2 = pairwise)."),
        mode: Optional[List[str]] = typer.Option(None, "--mode", help="Only these modes (latent, reference)."),
        table: Optional[List[str]] = typer.Option(None, "--table", "-t", help="Only these sections: a published table id (lanit-table1, lanit-table2, stargan2-readme, cliptravelgan-table1, cliptravelgan-monet) or 'reproduced'."),
        compare: Optional[str] = typer.Option(None, "--compare", "-c", help="Add the difference to this method on the same dataset, protocol and mode."),
        classwise: bool = typer.Option(False, "--classwise", help="Per-domain (pooled) and per-task (pairwise) results instead of the means."),
        fmt: str = typer.Option("text", "--format", "-f", help="text | csv | markdown | latex"),
        runs: Optional[List[str]] = typer.Option(None, "--runs", help="Folders searched for records.csv, or records files (default: runs/). E.g. --runs results/regression/smoke.csv"),
        published: bool = typer.Option(True, "--published/--no-published", help="Include the papers' numbers (results/published/)."),
        output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the table to this file (atomically) instead of printing it."),
        heatmaps: Optional[Path] = typer.Option(None, "--heatmaps", help="Also write source x target heatmaps (PNG) of the per-task results of the selected runs into this folder."),
        as_json: bool = typer.Option(False, "--json", help="Print the selected records (one JSON object per row) instead of tables."),
        wide: bool = typer.Option(False, "--wide", help="The full view: every configuration field and metric in columns, one table per section (csv and --classwise are always full)."),
    ) -> None:
        """Result tables: reproduced runs (mean ± std (n) over seeds) and the published numbers.

        `i2ibench table --compare tunit` prints every published table (LANIT Table 1 and 2, StarGAN v2 README, CLIPTraVeLGAN) and the reproduced runs found under runs/, each with the difference to TUNIT where TUNIT has a number on the same dataset, protocol and mode. Published and reproduced numbers are in separate tables: the papers used other feature extractors and protocols. By default the tables are compact (one per dataset, protocol and mode; text fits 120 columns; the best value per column marked; how the rows were made printed once under each table); --wide gives every field in columns.
        """
        from i2ibench.fileio import check_output_file, check_writable_dir, write_text
        from i2ibench.report import records as R
        from i2ibench.report.published import TABLES
        from i2ibench.report.tables import FORMATS, REPRODUCED_SECTION, build_tables, render

        if fmt not in FORMATS:
            raise ConfigError(f"unknown format '{fmt}'.{suggest(fmt, list(FORMATS))}")
        # Checked before the records are read, so a wrong path fails at once with one line.
        if output is not None:
            check_output_file(output, "--output")
        if heatmaps is not None:
            check_writable_dir(heatmaps, "--heatmaps")
        records = _records_for_table(runs, published)
        _check_values("--table", table, list(TABLES) + [REPRODUCED_SECTION])
        if not records.empty:
            for option, given, col in (("--dataset", dataset, R.DATASET), ("--method", method, R.METHOD),
                                       ("--protocol", protocol, R.PROTOCOL), ("--mode", mode, R.MODE)):
                _check_values(option, given, sorted(set(records[col])))
            metrics = sorted(set(records[R.METRIC]) | {"fid", "mfid"})
            _check_values("--metric", metric, metrics)
            if compare:
                _check_values("--compare", [compare], sorted(set(records[R.METHOD])))
        filters = dict(datasets=dataset, methods=method, metrics=metric, protocols=protocol, modes=mode, tables=table)
        if heatmaps is not None:
            from i2ibench.report.heatmaps import write_heatmaps
            from i2ibench.report.tables import select

            paths = write_heatmaps(select(records, classwise=True, **filters), heatmaps)
            typer.echo(f"wrote {len(paths)} heatmap(s) to {heatmaps}", err=True)
        if as_json:
            from i2ibench.report.tables import select

            chosen = select(records, classwise=classwise, **filters)
            typer.echo(R.to_json(chosen))
            return
        if wide or classwise or fmt == "csv":
            secs = build_tables(records, compare_to=compare, classwise=classwise, **filters)
            text = render(secs, fmt) if secs else ""
        else:
            from i2ibench.report.compact import build_compact
            from i2ibench.report.layout import render_compact

            text = render_compact(build_compact(records, compare_to=compare, **filters), fmt)
        if not text:
            typer.echo("no records match (reproduced runs are read from runs/**/records.csv; see --runs)", err=True)
            return
        if output is not None:
            write_text(output, text)
            typer.echo(f"wrote {output}", err=True)
        else:
            typer.echo(text, nl=False)

    @app.command("regress")
    def regress_cmd(
        update: bool = typer.Option(False, "--update", help="Rewrite the committed table with the re-computed records."),
        table_path: Optional[Path] = typer.Option(None, "--table", help="Regression table (default results/regression/smoke.csv; tolerances.yaml beside it)."),
        method: Optional[List[str]] = typer.Option(None, "--method", "-m", help="Only these methods (with --update: also methods not in the table yet)."),
        keep: Optional[Path] = typer.Option(None, "--keep", help="Keep the run directories here instead of a temporary folder."),
        dataset: Optional[str] = typer.Option(None, "--dataset", "-d", help="With --update: the dataset of runs added for methods not in the table yet (default fashion10)."),
        verbose: bool = typer.Option(False, "--verbose", "-v", help="List every compared row, not only the regressions."),
    ) -> None:
        """CI regression: re-run the committed smoke runs, compare with per-metric tolerances.

        Exits 1 and prints method / metric / old / new for every value outside its tolerance (tolerances in results/regression/tolerances.yaml).
        """
        from i2ibench.pipeline.regress import regress

        code = regress(table_path, update=update, methods=method, workdir=keep, verbose=verbose,
                       log=lambda s: typer.echo(s), dataset=dataset)
        if code:
            sys.stdout.flush()
            raise typer.Exit(code)
