"""Training checkpoints: one file per saved step, written atomically, loaded weights-only.

A run directory keeps its checkpoints as ``checkpoints/ckpt_<step>.pt``. A checkpoint is a
dict of tensors, dicts, lists, numbers and strings (never an arbitrary pickle):

    {"format": 1, "step": int, "method": Method.state_dict(), "rng": [per-rank RNG states],
     "config": the resolved RunConfig as a dict, "world_size": int}
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from i2ibench.errors import I2IError
from i2ibench.fileio import remove_orphan_temps, torch_save

CKPT_DIRNAME = "checkpoints"
CKPT_FORMAT = 1
_CKPT_RE = re.compile(r"^ckpt_(\d+)\.pt$")
CKPT_TEMP_TARGETS = ("ckpt_*",)  # atomic_path temps of checkpoints: .ckpt_<step>.pt.XXXXXXXX.tmp


def remove_orphan_checkpoint_temps(run_dir: str | Path, min_age_s: float | None = None) -> list[Path]:
    """Delete ``.ckpt_*.tmp`` files a killed checkpoint write left in ``checkpoints/``.

    Default: only those untouched for ``fileio.ORPHAN_AGE_S`` (a live writer in another
    process keeps its temp fresh). The engine passes ``min_age_s=0`` at run start, while it
    holds the run lock, so every leftover goes at once. Returns the removed paths.
    """
    kwargs = {} if min_age_s is None else {"min_age_s": min_age_s}
    return remove_orphan_temps(checkpoint_dir(run_dir), CKPT_TEMP_TARGETS, **kwargs)


def checkpoint_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / CKPT_DIRNAME


def checkpoint_path(run_dir: str | Path, step: int) -> Path:
    return checkpoint_dir(run_dir) / f"ckpt_{step:08d}.pt"


def list_checkpoints(run_dir: str | Path) -> list[tuple[int, Path]]:
    """``(step, path)`` of every checkpoint in the run directory, oldest first."""
    folder = checkpoint_dir(run_dir)
    if not folder.is_dir():
        return []
    remove_orphan_checkpoint_temps(run_dir)
    found = []
    for p in folder.iterdir():
        m = _CKPT_RE.match(p.name)
        if m:
            found.append((int(m.group(1)), p))
    return sorted(found)


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    ckpts = list_checkpoints(run_dir)
    return ckpts[-1][1] if ckpts else None


def save_checkpoint(run_dir: str | Path, step: int, state: dict[str, Any], keep: int = 0) -> Path:
    """Write ``state`` for ``step`` atomically, then delete all but the ``keep`` newest (0: keep all).

    Old checkpoints are removed only after the new one is in place, so a failure at any
    point leaves at least the previous checkpoint intact.
    """
    path = checkpoint_path(run_dir, step)
    remove_orphan_checkpoint_temps(run_dir)
    torch_save({"format": CKPT_FORMAT, "step": int(step), **state}, path)
    if keep > 0:
        for _, old in list_checkpoints(run_dir)[:-keep]:
            old.unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; a bad file is a one-line ``I2IError``."""
    path = Path(path)
    if not path.is_file():
        raise I2IError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # truncated, foreign or non-weights-only pickle
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise I2IError(f"cannot load checkpoint {path}: {first}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CKPT_FORMAT or "method" not in ckpt:
        raise I2IError(f"{path} is not an i2ibench checkpoint (format {CKPT_FORMAT})")
    return ckpt
