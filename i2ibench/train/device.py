"""Where and in which precision a run computes."""

from __future__ import annotations

import torch

from i2ibench.errors import ConfigError
from i2ibench.names import PRECISIONS


def select_device(preference: str, local_rank: int = 0) -> torch.device:
    """``auto``: CUDA (GPU ``local_rank``) if available, else CPU."""
    if preference == "auto":
        preference = "cuda" if torch.cuda.is_available() else "cpu"
    if preference == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("train.device=cuda but no CUDA device is available; use auto or cpu")
        return torch.device("cuda", local_rank)
    if preference == "cpu":
        return torch.device("cpu")
    raise ConfigError(f"train.device must be auto, cpu or cuda, got '{preference}'")


def device_type(preference: str) -> str:
    if preference == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return preference


def check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise ConfigError(f"train.precision must be fp32 or bf16, got '{precision}'")
