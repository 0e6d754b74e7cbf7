"""``i2ibench run``: train a method on a dataset, then evaluate it."""

from __future__ import annotations

import time
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from i2ibench.errors import I2IError


class Precision(str, Enum):
    fp32 = "fp32"
    bf16 = "bf16"


RUN_HELP = """Train METHOD on DATASET into a run directory, then evaluate it.

The run directory gets the resolved config (config.yaml), checkpoints (checkpoints/), PNG sample
grids (samples/), TensorBoard scalars (tb/) and a loss log (train_log.jsonl). Running the same
command again resumes from the newest checkpoint and ends exactly where an uninterrupted run
would. Settings are resolved as: method defaults, then the --preset, then --config FILE, then
--set key=value, then the dedicated options (--seed, --precision, ...).

Several processes: torchrun --nproc_per_node N -m i2ibench.cli run ... (NCCL on GPUs, gloo on CPU).
"""


def _run(method: str, dataset: str, preset: str, out: Optional[Path], seed: Optional[int], resume: bool,
         sets: Optional[list[str]], config: Optional[Path], data_root: Optional[str], vlm: Optional[str],
         precision: Optional[str], channels_last: bool, no_eval: bool, max_steps: Optional[int],
         progress: bool) -> None:
    from i2ibench.config import build_run_config, ema_horizon_warning, load_overrides_file, parse_set_args
    from i2ibench.fileio import check_writable_dir
    from i2ibench.pipeline.run import train_and_evaluate
    from i2ibench.train import distributed
    from i2ibench.train.rundir import resolve_out_dir

    overrides: dict = {}
    if config is not None:
        overrides.update(load_overrides_file(config))
    overrides.update(parse_set_args(sets))
    if seed is not None:
        overrides["train.seed"] = seed
    if precision is not None:
        overrides["train.precision"] = precision
    if channels_last:
        overrides["train.channels_last"] = True
    cfg = build_run_config(method, dataset, preset, overrides, data_root=data_root, vlm=vlm)
    out_dir = resolve_out_dir(cfg, out)
    warning = ema_horizon_warning(cfg)
    if warning is not None:
        typer.echo(f"warning: {warning}", err=True)
    # Before anything is trained or written: a file, a path under a file or a read-only folder
    # would otherwise fail at the first checkpoint (or, for config.yaml, with a traceback).
    check_writable_dir(out_dir, "--out")

    t0 = time.perf_counter()
    try:
        # Every rank takes part in evaluations (features are gathered across ranks); rank 0 writes.
        _, records = train_and_evaluate(cfg, out_dir, resume=resume, progress=progress, max_steps=max_steps,
                                        evaluate_at_end=not no_eval)
        if distributed.is_main_process():
            typer.echo(f"{'trained and evaluated' if records is not None else 'trained'} {cfg.method} on "
                       f"{cfg.dataset} ({cfg.preset}) in {time.perf_counter() - t0:.0f} s; run directory: {out_dir}")
    finally:
        distributed.cleanup()


def _seed_runs(seed: Optional[int], seeds: Optional[str], out: Optional[Path]) -> list[tuple[Optional[int], Optional[Path]]]:
    """``(seed, out)`` of each run that ``--seed``/``--seeds``/``--out`` ask for, checked before any trains."""
    from i2ibench.errors import ConfigError

    if seeds is None:
        if out is not None and "{seed}" in str(out):
            raise ConfigError("--out contains {seed}, which only --seeds fills in")
        return [(seed, out)]
    if seed is not None:
        raise ConfigError("give --seed or --seeds, not both")
    try:
        values = [int(s) for s in seeds.split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"--seeds expects comma-separated non-negative integers such as 0,1,2, got '{seeds}'") from None
    if not values or min(values) < 0 or len(set(values)) != len(values):
        raise ConfigError(f"--seeds expects distinct non-negative integers such as 0,1,2, got '{seeds}'")
    if out is not None and "{seed}" not in str(out):
        raise ConfigError("with --seeds, --out must contain {seed} (e.g. runs/lanit-s{seed}) so the runs do not share "
                          "one directory")
    return [(v, None if out is None else Path(str(out).replace("{seed}", str(v)))) for v in values]


def register(app: typer.Typer) -> None:
    @app.command("run", help=RUN_HELP, no_args_is_help=True)
    def run(
        method: str = typer.Option(..., "--method", "-m", help="Registered method name (see `i2ibench methods`)."),
        dataset: str = typer.Option(..., "--dataset", "-d",
                                    help="Registered dataset name, or folder:<path> / twodomain:<path>."),
        preset: str = typer.Option("cpu", "--preset", "-p", help="Method preset: paper, cpu or smoke (lanit also: quick, the main job's)."),
        out: Optional[Path] = typer.Option(None, "--out", "-o",
                                           help="Run directory [default: runs/<method>-<dataset>-<preset>-s<seed>]."),
        seed: Optional[int] = typer.Option(None, "--seed", help="Training seed (train.seed)."),
        seeds: Optional[str] = typer.Option(None, "--seeds", help="Several seeds, one run after another, e.g. 0,1,2 "
                                            "(--out, if given, must contain {seed}); for more, `i2ibench bench`."),
        resume: bool = typer.Option(True, "--resume/--no-resume",
                                    help="Continue from the newest checkpoint in the run directory, or start over "
                                         "(deleting that run's checkpoints, samples and logs)."),
        sets: Optional[list[str]] = typer.Option(None, "--set", "-s", metavar="KEY=VALUE",
                                                 help="Override one config key (repeatable), e.g. "
                                                      "--set train.batch_size=16 --set model.lambda_ds=2."),
        config: Optional[Path] = typer.Option(None, "--config", "-c",
                                              help="YAML or JSON file of overrides (nested or dotted keys)."),
        data_root: Optional[str] = typer.Option(None, "--data-root", help="Folder holding the dataset's files."),
        vlm: Optional[str] = typer.Option(None, "--vlm", help="Vision-language model name (lanit, cliptravelgan)."),
        precision: Optional[Precision] = typer.Option(None, "--precision", case_sensitive=False,
                                                      help="fp32, or bf16 autocast for the training step."),
        channels_last: bool = typer.Option(False, "--channels-last", help="channels_last memory format for nets and inputs."),
        no_eval: bool = typer.Option(False, "--no-eval", help="Skip the evaluation after training."),
        max_steps: Optional[int] = typer.Option(None, "--max-steps", min=0,
                                                help="Pause after this many steps (checkpointed; run again to resume)."),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the progress bar."),
    ) -> None:
        try:
            for one_seed, one_out in _seed_runs(seed, seeds, out):
                _run(method, dataset, preset, one_out, one_seed, resume, sets, config, data_root, vlm,
                     precision.value if precision is not None else None,
                     channels_last, no_eval, max_steps, progress)
        except I2IError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from None
