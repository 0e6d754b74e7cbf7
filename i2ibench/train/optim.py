"""Optimisers built one way for every method: fused or multi-tensor kernels unless the plain step is asked for.

``torch.optim.Adam(fused=True)`` updates all of a net's parameters in one kernel per tensor
(no per-parameter chain of ~10 element-wise ops) and ``foreach=True`` (RMSprop, which has no
fused CPU kernel) in multi-tensor ops; both compute the same update as the per-parameter loop
up to fp32 round-off (``tests/test_train_speed.py``). ``plain=True`` (``train.plain_step``)
gives torch's default per-parameter implementation on CPU.
"""

from __future__ import annotations

from typing import Iterable

import torch


def adam(params: Iterable[torch.nn.Parameter], *, lr: float, betas: tuple[float, float] = (0.9, 0.999),
         weight_decay: float = 0.0, plain: bool = False) -> torch.optim.Adam:
    """Adam (L2 weight decay added to the gradient, as ``torch.optim.Adam``); fused unless ``plain``.

    ``betas`` must be floats (torch 2.14 rejects an int 0).
    """
    kw = {} if plain else {"fused": True}
    return torch.optim.Adam(params, lr=lr, betas=betas, weight_decay=weight_decay, **kw)


def rmsprop(params: Iterable[torch.nn.Parameter], *, lr: float, weight_decay: float = 0.0,
            plain: bool = False) -> torch.optim.RMSprop:
    """RMSprop with torch's defaults (alpha 0.99, eps 1e-8); multi-tensor (``foreach``) unless ``plain``."""
    return torch.optim.RMSprop(params, lr=lr, weight_decay=weight_decay, foreach=not plain)

