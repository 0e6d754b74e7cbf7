"""Default locations. Override the cache with the environment variable I2IBENCH_CACHE."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """``$I2IBENCH_CACHE`` (default ``~/.cache/i2ibench``) joined with ``parts``; created on use."""
    root = Path(os.environ.get("I2IBENCH_CACHE", Path.home() / ".cache" / "i2ibench"))
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


DEFAULT_RUNS_DIR = Path("runs")
