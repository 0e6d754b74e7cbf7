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


def configure_fast_mode(device: torch.device, precision: str, channels_last: bool) -> bool:
    """The fast mode's GPU part: with bf16 autocast or channels_last on CUDA, let cuDNN time its
    kernels per input shape and keep the fastest (``torch.backends.cudnn.benchmark``; results may
    then differ run to run in the last bits). Never set otherwise: fp32 runs stay reproducible.
    Returns whether it was set. The training shapes are fixed per run, so the timing is paid once.
    """
    if device.type != "cuda" or (precision != "bf16" and not channels_last):
        return False
    torch.backends.cudnn.benchmark = True
    return True
