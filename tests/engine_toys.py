"""A tiny GAN-shaped Method and in-memory dataset for the engine tests (fast on one CPU thread).

The toy method draws from every global generator (torch, numpy, python) in each step, has
per-domain heads that a batch may leave unused, a BatchNorm buffer, EMA nets and Adam state,
so any of these not checkpointed or not synchronised shows up in the bit-identity tests.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from i2ibench.method import Batch, Method
from i2ibench.registry import METHODS, register_method

TOY = "toy-engine"


@dataclass
class ToyConfig:
    width: int = 4
    latent_dim: int = 3
    lr: float = 1e-2
    nan_at: int = -1        # training_step returns a NaN loss at this step
    poison_at: int = -1     # training_step leaves NaN weights (with finite losses) at this step


# Not config keys (a resumed run must have the same config): set by tests to simulate a kill.
CRASH_AT = {"step": -1}  # training_step raises at this step
SLEEP_ENV = "I2IBENCH_TOY_SLEEP_S"  # seconds per step, so a subprocess can be killed mid-run


class _Mapping(nn.Module):
    def __init__(self, latent: int, width: int, k: int):
        super().__init__()
        self.trunk = nn.Linear(latent, width)
        self.heads = nn.ModuleList(nn.Linear(width, width) for _ in range(k))

    def forward(self, z, y):
        h = F.relu(self.trunk(z))
        out = torch.stack([head(h) for head in self.heads], 1)  # every head runs...
        return out[torch.arange(len(y)), y]  # ...but only the chosen ones get a gradient


class _Encoder(nn.Module):
    def __init__(self, width: int, k: int):
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3, padding=1)
        self.heads = nn.ModuleList(nn.Linear(width, width) for _ in range(k))

    def forward(self, x, y):
        h = F.relu(self.conv(x)).mean((2, 3))
        return torch.stack([self.heads[int(d)](h[i]) for i, d in enumerate(y)])  # unused heads: no grad


class _Generator(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.inp = nn.Conv2d(3, width, 3, padding=1)
        self.out = nn.Conv2d(width, 3, 3, padding=1)

    def forward(self, x, s):
        return torch.tanh(self.out(F.relu(self.inp(x) + s[:, :, None, None])))


class _Discriminator(nn.Module):
    def __init__(self, width: int, k: int):
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3, stride=2, padding=1)
        self.norm = nn.BatchNorm2d(width)  # a buffer that must be synchronised and checkpointed
        self.head = nn.Linear(width, k)

    def forward(self, x, y):
        h = F.leaky_relu(self.norm(self.conv(x)), 0.2).mean((2, 3))
        return self.head(h)[torch.arange(len(y)), y]


@register_method(TOY) if TOY not in METHODS._entries else (lambda c: c)
class ToyMethod(Method):
    """Tiny GAN-shaped method for engine tests."""

    Config = ToyConfig
    presets = {
        "smoke": {"train.augment": "crop_flip", "train.img_size": 8, "train.batch_size": 4, "train.total_iters": 6, "train.log_every": 1,
                  "train.sample_every": 0, "train.ckpt_every": 2, "train.keep_ckpts": 0},
    }

    def __init__(self, cfg, info, device="cpu"):
        super().__init__(cfg, info, device)
        w, k = self.mcfg.width, info.num_domains
        self.nets["generator"] = _Generator(w)
        self.nets["mapping"] = _Mapping(self.mcfg.latent_dim, w, k)
        self.nets["encoder"] = _Encoder(w, k)
        self.nets["discriminator"] = _Discriminator(w, k)
        for n, net in self.nets.items():
            self.optims[n] = torch.optim.Adam(net.parameters(), lr=self.mcfg.lr, betas=(0.0, 0.99),
                                              weight_decay=1e-4)
        self.make_ema("generator", "mapping", "encoder")
        self.to(device)

    def training_step(self, batch: Batch, step: int) -> dict[str, float]:
        if step == CRASH_AT["step"]:
            raise RuntimeError(f"simulated crash at step {step}")
        time.sleep(float(os.environ.get(SLEEP_ENV, "0")))
        G, M, E, D = (self.nets[n] for n in ("generator", "mapping", "encoder", "discriminator"))
        z = torch.randn(len(batch.x_src), self.mcfg.latent_dim, device=self.device)
        jitter = float(np.random.rand()) * 0.01 + random.random() * 0.01  # numpy and python RNG in the math
        s = M(z, batch.y_ref) if step % 2 == 0 else E(batch.x_ref, batch.y_ref)
        fake = G(batch.x_src, s)
        d_loss = (F.softplus(-D(batch.x_src, batch.y_src)) + F.softplus(D(fake.detach(), batch.y_ref))).mean()
        self.optimize(d_loss, ["discriminator"])
        s = M(z, batch.y_ref) if step % 2 == 0 else E(batch.x_ref, batch.y_ref)
        fake = G(batch.x_src + jitter, s)
        g_loss = F.softplus(-D(fake, batch.y_ref)).mean() + (fake - batch.x_ref2).abs().mean()
        self.optimize(g_loss, ["generator", "mapping", "encoder"] if step % 2 == 0 else ["generator", "encoder"])
        self.update_ema(0.9)
        out = {"d_loss": d_loss.item(), "g_loss": g_loss.item()}
        if step == self.mcfg.nan_at:
            out["g_loss"] = float("nan")
        if step == self.mcfg.poison_at:  # a diverged update whose loss still looked finite
            with torch.no_grad():
                self.nets["generator"].out.weight.fill_(float("nan"))
        return out

    @torch.no_grad()
    def translate(self, x, target, *, z=None, ref=None):
        # Draws from the global generators, as a method's sampling may: the engine must isolate it.
        torch.rand(1), np.random.rand(), random.random()
        G, M, E = (self.nets_ema[n] for n in ("generator", "mapping", "encoder"))
        s = M(z, target) if z is not None else E(ref, target)
        return G(x, s)

    @torch.no_grad()
    def domain_labels(self, x):
        raise ValueError("the toy method trains with ground-truth labels")


class ToyDataset(torch.utils.data.Dataset):
    """Random images (fixed by ``seed``) with labels 0..k-1, the ImageDataset surface the engine uses."""

    def __init__(self, n: int = 24, k: int = 3, size: int = 8, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.pixels = torch.rand(n, 3, size, size, generator=g) * 2 - 1
        self.labels = torch.arange(n) % k
        self.domains = [f"d{i}" for i in range(k)]
        self.img_size = size

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        return self.pixels[i], self.labels[i]

    def images(self, indices) -> torch.Tensor:
        return self.pixels[torch.as_tensor(indices, dtype=torch.long)].clone()


def toy_config(**overrides):
    from i2ibench.config import build_run_config

    return build_run_config(TOY, "toy", "smoke", overrides)


def all_tensors(method: Method) -> dict[str, torch.Tensor]:
    """Every tensor of a method's state (nets, EMA, optimiser state), flattened by key."""
    out: dict[str, torch.Tensor] = {}

    def walk(prefix, obj):
        if isinstance(obj, torch.Tensor):
            out[prefix] = obj
        elif isinstance(obj, dict):
            for k, v in obj.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(obj, (list, tuple)):
            for i, v in enumerate(obj):
                walk(f"{prefix}.{i}", v)

    walk("", method.state_dict())
    return out
