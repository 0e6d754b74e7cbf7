"""Loading a run directory's method from its config and a checkpoint, and evaluating it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from i2ibench.config import RunConfig, apply_overrides, load_run_config
from i2ibench.data.catalog import run_dataset
from i2ibench.errors import ConfigError, I2IError
from i2ibench.evaluation.harness import Log, _print, evaluate
from i2ibench.method import DataInfo, Method
from i2ibench.registry import create_method
from i2ibench.train.checkpoint import latest_checkpoint, load_checkpoint
from i2ibench.train.device import select_device
from i2ibench.train.rundir import CONFIG_FILE, load_method_state


def load_run(run_dir: str | Path, checkpoint: str | Path | None = None, device: str | None = None,
             data_root: str | None = None) -> tuple[Method, RunConfig, int, Any]:
    """``(method, cfg, step, val)`` from a run directory's ``config.yaml`` and a checkpoint (default: the newest).

    ``data_root``: where the run's dataset is now, if it moved (the run's config is not changed).
    Raises ``I2IError`` when ``run_dir`` is no run directory or holds no checkpoint.
    """
    run_dir = Path(run_dir)
    cfg_path = run_dir / CONFIG_FILE
    if not cfg_path.is_file():
        raise I2IError(f"{run_dir} is not a run directory (no {CONFIG_FILE})")
    cfg = load_run_config(cfg_path)
    if data_root is not None:
        cfg.data_root = data_root
    ckpt_path = Path(checkpoint) if checkpoint is not None else latest_checkpoint(run_dir)
    if ckpt_path is None:
        raise I2IError(f"{run_dir} has no checkpoint to evaluate (expected checkpoints/ckpt_<step>.pt)")
    # Under torchrun each process evaluates on its own GPU.
    dev = select_device(device or cfg.train.device, int(os.environ.get("LOCAL_RANK", "0")))
    ckpt = load_checkpoint(ckpt_path, map_location=dev)
    val = run_dataset(cfg, "val")
    method = create_method(cfg.method, cfg, DataInfo.of(cfg, val), dev)
    method.to(dev)
    load_method_state(method, ckpt["method"], ckpt_path)
    return method, cfg, int(ckpt["step"]), val


def evaluate_run(run_dir: str | Path, checkpoint: str | Path | None = None, *, overrides: dict[str, Any] | None = None,
                 device: str | None = None, data_root: str | None = None, log: Log | None = _print,
                 **kwargs: Any) -> pd.DataFrame:
    """Evaluate a run directory's newest (or the given) checkpoint; writes ``RUN_DIR/records.csv``.

    ``overrides``: dotted ``eval.*`` keys applied on top of the run's config (e.g. sample
    counts); any other key raises ``ConfigError``.
    """
    method, cfg, step, val = load_run(run_dir, checkpoint, device, data_root)
    if overrides:
        bad = [key for key in overrides if not key.startswith("eval.")]
        if bad:
            raise ConfigError(f"only eval.* keys can be changed when evaluating a trained run, got {', '.join(bad)}")
        apply_overrides(cfg, overrides)
    kwargs.setdefault("val", val)
    return evaluate(method, cfg, out_dir=run_dir, iterations=step, log=log, **kwargs)
