"""How a result was made: the columns every record of one evaluation shares.

Method, dataset, preset, seed, iterations, real split, feature extractor, the frozen models the
method used (its VLM), the protocol parameters, the code version and the date.
"""

from __future__ import annotations

import subprocess
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

from i2ibench import __version__
from i2ibench.config import EvalConfig, RunConfig
from i2ibench.method import Method
from i2ibench.report import records as R

# The protocol parameters written into every record's eval_params column, in this order.
EVAL_PARAM_KEYS = ("max_src_per_domain", "outs_per_input", "max_real_per_domain", "nearest_k", "seed",
                   "feature_precision")
# Written only when they differ from these values, so that records of evaluations that do not
# use them keep the parameter string they always had.
OPTIONAL_EVAL_PARAMS = {"rounds": 1, "fakes_per_target": 0}


@lru_cache(maxsize=1)
def code_version() -> str:
    """``i2ibench.__version__`` plus the git short hash of the source tree when there is one."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=5)
        if out.returncode == 0 and out.stdout.strip():
            return f"{__version__}+g{out.stdout.strip()}"
    except (OSError, subprocess.SubprocessError):
        pass
    return __version__


def eval_params(ev: EvalConfig) -> str:
    """``key=value;...`` of the protocol parameters that are not columns of their own."""
    keys = list(EVAL_PARAM_KEYS) + [k for k, default in OPTIONAL_EVAL_PARAMS.items() if getattr(ev, k) != default]
    return ";".join(f"{k}={getattr(ev, k)}" for k in keys)


def vlm_name(method: Method, cfg: RunConfig) -> str:
    """The vision-language model a method used: its declared frozen VLM, else ``--vlm`` ('' for none)."""
    return method.frozen_models().get("vlm") or cfg.vlm or ""


def common_columns(method: Method, cfg: RunConfig, iterations: int | None, features_name: str, real_split: str,
                   run: str) -> dict[str, Any]:
    """The record columns shared by every row of one evaluation."""
    return {R.METHOD: cfg.method, R.DATASET: cfg.dataset, R.PRESET: cfg.preset, R.SEED: cfg.train.seed,
            R.ITERATIONS: iterations, R.N_SEEDS: 1, R.REAL_SPLIT: real_split, R.FEATURES: features_name,
            R.VLM: vlm_name(method, cfg), R.EVAL_PARAMS: eval_params(cfg.eval), R.CODE_VERSION: code_version(),
            R.DATE: datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), R.SOURCE: R.SOURCE_REPRODUCED,
            R.RUN: run, R.SETTING: method.setting()}
