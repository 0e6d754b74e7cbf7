"""The ``Method`` interface every translation method implements.

GANs need manual optimisation, so a method owns its update step and the engine owns the loop.
A method keeps its trainable networks in ``self.nets`` (an ``nn.ModuleDict``), their EMA copies
in ``self.nets_ema``, and one optimiser per trainable net in ``self.optims``. It updates them
only through ``self.optimize(loss, names)``, which is where the engine hooks gradient
averaging across processes in distributed runs.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Iterable

import torch
from torch import nn

from i2ibench.config import RunConfig


@dataclass
class DataInfo:
    """What a method may know about its dataset when it is built."""

    dataset: str
    domains: list[str]
    img_size: int
    multi_label: bool = False

    @property
    def num_domains(self) -> int:
        return len(self.domains)


@dataclass
class Batch:
    """One training batch, on the method's device, images in [-1, 1].

    ``x_src``/``y_src``: source images and their ground-truth domains. ``x_ref``, ``x_ref2``:
    two reference images of the same domain ``y_ref`` (reference-guided training). Methods
    that learn without labels (tunit, lanit) must not read ``y_src``/``y_ref`` except where
    their config says labels are given (e.g. tunit's semi-supervised fraction).
    """

    x_src: torch.Tensor
    y_src: torch.Tensor
    x_ref: torch.Tensor
    x_ref2: torch.Tensor
    y_ref: torch.Tensor
    labelled: torch.Tensor | None = None  # bool per x_src: may this label be used? (semi-supervised)

    def to(self, device: torch.device | str, memory_format=torch.contiguous_format) -> "Batch":
        def mv(t):
            if t is None:
                return None
            t = t.to(device, non_blocking=True)
            return t.contiguous(memory_format=memory_format) if t.dim() == 4 else t
        return Batch(**{k: mv(v) for k, v in self.__dict__.items()})


class Method(ABC):
    """Base class. Subclasses set ``Config``, ``presets`` and implement the abstract methods."""

    name: ClassVar[str] = ""
    Config: ClassVar[type]
    presets: ClassVar[dict[str, dict[str, Any]]] = {}
    modes: ClassVar[tuple[str, ...]] = ("latent", "reference")  # translation modes it supports
    label_kind: ClassVar[str] = "ground_truth"  # ground_truth | clusters | clip_multi_hot

    def __init__(self, cfg: RunConfig, info: DataInfo, device: torch.device | str = "cpu"):
        self.cfg = cfg
        self.mcfg = cfg.model
        self.info = info
        self.device = torch.device(device)
        self.nets = nn.ModuleDict()
        self.nets_ema = nn.ModuleDict()
        self.optims: dict[str, torch.optim.Optimizer] = {}
        # Set by the engine in distributed runs: averages gradients of the given modules.
        self.grad_sync: Callable[[Iterable[nn.Module]], None] | None = None

    # ----------------------------------------------------------------- to implement
    @abstractmethod
    def training_step(self, batch: Batch, step: int) -> dict[str, float]:
        """One iteration (discriminator and generator updates, EMA). Returns scalar losses."""

    @abstractmethod
    def translate(self, x: torch.Tensor, target: torch.Tensor, *, z: torch.Tensor | None = None,
                  ref: torch.Tensor | None = None) -> torch.Tensor:
        """Translate ``x`` to ``target`` domains (index per image, or multi-hot rows) with the EMA nets.

        Latent-guided when ``z`` is given, reference-guided when ``ref`` is given.
        """

    @abstractmethod
    def domain_labels(self, x: torch.Tensor) -> torch.Tensor:
        """The labels the method trains with, for images ``x`` (ground truth methods: not applicable)."""

    # ----------------------------------------------------------------- helpers
    def optimize(self, loss: torch.Tensor, names: Iterable[str]) -> None:
        """zero_grad, backward, (sync gradients across processes), step for the named nets."""
        names = list(names)
        for n in names:
            self.optims[n].zero_grad(set_to_none=True)
        loss.backward()
        if self.grad_sync is not None:
            self.grad_sync([self.nets[n] for n in names])
        for n in names:
            self.optims[n].step()

    def zero_grad(self) -> None:
        for opt in self.optims.values():
            opt.zero_grad(set_to_none=True)

    @torch.no_grad()
    def update_ema(self, beta: float, names: Iterable[str] | None = None) -> None:
        for n in names if names is not None else self.nets_ema.keys():
            for p_ema, p in zip(self.nets_ema[n].parameters(), self.nets[n].parameters()):
                p_ema.lerp_(p.detach(), 1.0 - beta)
            for b_ema, b in zip(self.nets_ema[n].buffers(), self.nets[n].buffers()):
                b_ema.copy_(b)

    def make_ema(self, *names: str) -> None:
        for n in names:
            self.nets_ema[n] = copy.deepcopy(self.nets[n]).eval().requires_grad_(False)

    def to(self, device=None, memory_format=None) -> "Method":
        if device is not None:
            self.device = torch.device(device)
        for mods in (self.nets, self.nets_ema):
            mods.to(self.device)
            if memory_format is not None:
                mods.to(memory_format=memory_format)
        return self

    def train(self, mode: bool = True) -> "Method":
        self.nets.train(mode)
        return self

    def extra_state(self) -> dict[str, Any]:
        """Method state beyond nets/EMA/optimisers (queues, learned prompts, ...): tensors and plain data."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {
            "nets": self.nets.state_dict(),
            "nets_ema": self.nets_ema.state_dict(),
            "optims": {k: o.state_dict() for k, o in self.optims.items()},
            "extra": self.extra_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.nets.load_state_dict(state["nets"])
        self.nets_ema.load_state_dict(state["nets_ema"])
        for k, o in self.optims.items():
            o.load_state_dict(state["optims"][k])
        self.load_extra_state(state.get("extra", {}))

    def num_parameters(self) -> dict[str, int]:
        return {k: sum(p.numel() for p in m.parameters()) for k, m in self.nets.items()}
