"""``i2ibench bench SPEC``: run, watch and collect a benchmark campaign."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

BENCH_HELP = """Run the campaign in SPEC (methods x datasets x presets x seeds; see benchmarks/campaigns/).

Each run is an `i2ibench run` directory under runs/bench/<campaign>/<run>/: finished runs are
skipped, stopped ones resume from their newest checkpoint. Runs go to submitit: --workers local
processes (default), or a Slurm job array (--executor slurm). Without --detach the command waits
and prints the progress view whenever a run moves; --status prints it once; --dry-run lists what
would run; --stop ends this machine's workers (runs resume later); --collect copies finished runs' records, configs, loss logs and final grids into
results/campaigns/<campaign>/ for committing (no checkpoints).
"""


def register(app: typer.Typer) -> None:
    @app.command("bench", help=BENCH_HELP, no_args_is_help=True)
    def bench(
        spec: Path = typer.Argument(..., help="Campaign spec (YAML), e.g. benchmarks/campaigns/fashion10-cpu.yaml."),
        dry_run: bool = typer.Option(False, "--dry-run", help="List each run, its state and its command; run nothing."),
        status: bool = typer.Option(False, "--status", help="Print where each run stands and exit."),
        collect: bool = typer.Option(False, "--collect", help="Copy finished runs into results/campaigns/<name>/ and exit."),
        stop: bool = typer.Option(False, "--stop", help="Stop this machine's workers and their runs (they resume next time)."),
        executor: str = typer.Option("local", "--executor", help="local (worker processes) or slurm (job array)."),
        workers: int = typer.Option(2, "--workers", "-j", help="Runs at a time (local processes / array parallelism)."),
        threads: int = typer.Option(1, "--threads", help="Torch threads per run (OMP_NUM_THREADS; 0: torch's default)."),
        detach: bool = typer.Option(False, "--detach", help="Submit and return; watch later with --status."),
        refresh: float = typer.Option(60.0, "--refresh", help="Seconds between progress checks while waiting."),
        timeout_min: int = typer.Option(7 * 24 * 60, "--timeout-min", help="Job time limit in minutes (submitit)."),
        slurm: Optional[List[str]] = typer.Option(None, "--slurm", metavar="KEY=VALUE",
                                                  help="submitit Slurm parameter (repeatable), e.g. "
                                                       "--slurm slurm_partition=gpu --slurm gpus_per_node=1."),
        runs_root: Path = typer.Option(Path("runs/bench"), "--runs-root", help="Parent folder of campaign run folders."),
        results_root: Path = typer.Option(Path("results/campaigns"), "--results-root",
                                          help="Parent folder that --collect writes to."),
    ) -> None:
        from i2ibench.config import parse_set_args
        from i2ibench.errors import ConfigError
        from i2ibench.pipeline import bench as B
        from i2ibench.pipeline.campaign import load_campaign

        if sum([dry_run, status, collect, stop]) > 1:
            raise ConfigError("give one of --dry-run, --status, --collect, --stop")
        slurm_params = {k: _typed(v) for k, v in parse_set_args(slurm).items()}
        if slurm_params and executor != "slurm":
            raise ConfigError("--slurm parameters need --executor slurm")
        campaign = load_campaign(spec, runs_root=runs_root, results_root=results_root)
        if dry_run:
            typer.echo(B.dry_run_text(campaign))
            return
        if status:
            typer.echo(B.status_text(campaign))
            return
        if collect:
            B.collect(campaign, say=typer.echo)
            return
        if stop:
            n = B.stop_local(campaign, say=typer.echo)
            typer.echo(f"campaign {campaign.name}: {n} run(s) stopped; the same `bench` command resumes them")
            return
        sub = B.submit(campaign, executor=executor, workers=workers, threads=threads or None,
                       timeout_min=timeout_min, slurm=slurm_params)
        if not sub.jobs:
            typer.echo(f"campaign {campaign.name}: all {len(campaign.runs)} runs are done "
                       f"(--collect copies them into {campaign.results_dir})")
            return
        typer.echo(f"campaign {campaign.name}: {len(sub.runs)} unfinished run(s) handed to {len(sub.jobs)} "
                   f"{executor} job(s) ({', '.join(str(j.job_id) for j in sub.jobs[:4])}"
                   f"{'...' if len(sub.jobs) > 4 else ''}); logs in {campaign.out_dir / 'logs'}")
        if detach:
            typer.echo(f"detached: `i2ibench bench {spec} --status` shows progress")
            return
        try:
            states = B.wait(campaign, sub, refresh_s=refresh, say=typer.echo)
        except KeyboardInterrupt:
            for job in sub.jobs:
                job.cancel(check=False)
            typer.echo("interrupted: jobs cancelled; each run resumes from its newest checkpoint next time", err=True)
            raise typer.Exit(130) from None
        left = [n for n, s in states.items() if s != B.DONE]
        if left:
            typer.echo(f"{len(left)} run(s) not finished ({', '.join(left[:3])}{'...' if len(left) > 3 else ''}): "
                       f"see {campaign.out_dir / 'logs'}; run the same command to resume", err=True)
            raise typer.Exit(1)
        typer.echo(f"campaign {campaign.name}: all runs done; --collect copies them into {campaign.results_dir}")


def _typed(value: str):
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value
