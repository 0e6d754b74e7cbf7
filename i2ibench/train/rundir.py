"""The run directory: what a run writes where, and when an existing one may be continued.

    config.yaml                  resolved RunConfig
    checkpoints/ckpt_<step>.pt   the ``keep_ckpts`` newest
    samples/{latent,reference,deterministic}_<step>.png
    tb/                          TensorBoard scalars
    train_log.jsonl              one row per ``log_every`` steps: step, losses, it/s
    records.csv                  evaluation records (i2ibench.report.records)
    .lock                        held by the process training the run (rank 0)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import filelock
import torch
import yaml

from i2ibench.config import RunConfig, flatten, to_dict
from i2ibench.defaults import DEFAULT_RUNS_DIR
from i2ibench.errors import I2IError
from i2ibench.fileio import remove_orphan_temps, write_text
from i2ibench.train.checkpoint import list_checkpoints, remove_orphan_checkpoint_temps

CONFIG_FILE = "config.yaml"
LOG_FILE = "train_log.jsonl"
SAMPLES_DIR = "samples"
TB_DIR = "tb"

# Config keys that may change between a run and its resumption without changing what is
# trained: bookkeeping, where the data is, and the evaluation protocol. ``total_iters`` may
# grow to extend a finished run. ``device``, ``channels_last`` and ``plain_step`` change only
# the order of floating-point work (the same updates up to round-off); runs from before
# ``plain_step`` existed (their config lacks it) trained with the plain step.
RESUME_FREE_KEYS = (
    "train.total_iters", "train.log_every", "train.sample_every", "train.ckpt_every",
    "train.keep_ckpts", "train.eval_every", "train.num_workers", "train.device",
    "train.channels_last", "train.plain_step", "data_root",
)
RESUME_FREE_PREFIXES = ("eval.",)

def _normalised(cfg_dict: dict[str, Any]) -> dict[str, Any]:
    # Through YAML and back, so a fresh config compares equal to its dumped copy.
    return flatten(yaml.safe_load(yaml.safe_dump(cfg_dict, sort_keys=False)))


def config_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``key: old -> new`` for every training-relevant key that differs."""
    a, b = _normalised(old), _normalised(new)
    diffs = []
    for key in sorted(set(a) | set(b)):
        if key in RESUME_FREE_KEYS or key.startswith(RESUME_FREE_PREFIXES):
            continue
        if a.get(key, "<unset>") != b.get(key, "<unset>"):
            diffs.append(f"{key}: {a.get(key, '<unset>')!r} -> {b.get(key, '<unset>')!r}")
    return diffs


def check_resumable(out_dir: Path, cfg: RunConfig) -> None:
    """Refuse to continue a run directory that holds a run with other training settings."""
    path = out_dir / CONFIG_FILE
    if not path.is_file():
        return
    try:
        old = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError:
        raise I2IError(f"{path} is not readable YAML; pass --no-resume to start the run over") from None
    diffs = config_differences(old, to_dict(cfg))
    if diffs:
        shown = "; ".join(diffs[:4]) + (f"; and {len(diffs) - 4} more" if len(diffs) > 4 else "")
        raise I2IError(f"{out_dir} holds a run with other training settings ({shown}); "
                       f"pass another --out, or --no-resume to start it over")


def clear_run_outputs(out_dir: Path) -> None:
    """Remove the files a previous run wrote here (only i2ibench's own names)."""
    for _, p in list_checkpoints(out_dir):
        p.unlink(missing_ok=True)
    for p in (out_dir / SAMPLES_DIR).glob("*.png"):
        p.unlink(missing_ok=True)
    for p in (out_dir / TB_DIR).glob("events.out.tfevents.*"):
        p.unlink(missing_ok=True)
    (out_dir / LOG_FILE).unlink(missing_ok=True)


def truncate_log(path: Path, keep_until_step: int) -> None:
    """Drop log rows written after the checkpoint we resume from (they will be re-run)."""
    if not path.is_file():
        return
    rows = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line).get("step", 0) <= keep_until_step:
                rows.append(line)
        except json.JSONDecodeError:
            continue  # a line cut by a kill
    write_text(path, "".join(r + "\n" for r in rows))


def resolve_out_dir(cfg: RunConfig, out: str | Path | None) -> Path:
    """``out``, or ``runs/<method>-<dataset>-<preset>-s<seed>``."""
    if out is not None:
        return Path(out)
    safe_dataset = cfg.dataset.replace("/", "_").replace(":", "_")
    return DEFAULT_RUNS_DIR / f"{cfg.method}-{safe_dataset}-{cfg.preset}-s{cfg.train.seed}"


# --------------------------------------------------------------------------- one writer at a time

LOCK_FILE = ".lock"


class RunLock:
    """The exclusive lock of a run directory, held by the process that trains it (rank 0).

    A second process that tries to train the same directory is refused at once (training can
    take days: waiting is the wrong default) with a one-line ``I2IError``. The lock is the
    operating system's (``filelock``), so a killed process leaves no stale lock behind.
    """

    def __init__(self, out_dir: str | Path):
        self.out_dir = Path(out_dir)
        self._lock: filelock.BaseFileLock | None = None

    @property
    def held(self) -> bool:
        return self._lock is not None

    def acquire(self) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(str(self.out_dir / LOCK_FILE), timeout=0)
        try:
            lock.acquire()
        except filelock.Timeout:
            raise I2IError(f"{self.out_dir} is being trained by another i2ibench process; wait for it to end "
                           f"or pass another --out") from None
        self._lock = lock

    def release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None


def remove_orphan_run_temps(out_dir: Path) -> None:
    """Delete the temp files a killed training process left (checkpoints, config, loss log).

    Only the trainer's own files: records temps belong to evaluations, which clean their own
    under the records lock. Call while holding the run lock.
    """
    remove_orphan_checkpoint_temps(out_dir, min_age_s=0)
    remove_orphan_temps(out_dir, targets=[CONFIG_FILE, LOG_FILE], min_age_s=0)


# --------------------------------------------------------------------------- checkpoints of this run

def check_checkpoint_fits(ckpt: dict[str, Any], cfg: RunConfig, path: Path) -> None:
    """Refuse a checkpoint written by a run with other training settings (its config is in it)."""
    saved = ckpt.get("config")
    if not isinstance(saved, dict):
        raise I2IError(f"{path} holds no run config; it cannot be checked against this run (move it away or "
                       f"pass --no-resume)")
    diffs = config_differences(saved, to_dict(cfg))
    if diffs:
        shown = "; ".join(diffs[:3]) + (f"; and {len(diffs) - 3} more" if len(diffs) > 3 else "")
        raise I2IError(f"{path} was written by a run with other training settings ({shown}); move it away, "
                       f"pass another --out, or --no-resume to start over")


def load_method_state(method: Any, state: dict[str, Any], path: Path) -> None:
    """``method.load_state_dict(state)``, a mismatch of networks as a one-line ``I2IError``."""
    try:
        method.load_state_dict(state)
    except (RuntimeError, KeyError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise I2IError(f"{path} does not fit {method.name}'s networks: {first}") from None


def nonfinite_weights(method: Any) -> str:
    """'' when every floating-point tensor of the nets and EMA nets is finite, else a summary
    (how many values, first tensor)."""
    count, first = 0, ""
    for prefix, nets in (("nets", method.nets), ("nets_ema", method.nets_ema)):
        for key, value in nets.state_dict().items():
            if value.is_floating_point():
                bad = int((~torch.isfinite(value)).sum())
                if bad:
                    count += bad
                    first = first or f"{prefix}.{key}"
    return f"{count:,} values, first in {first}" if count else ""
