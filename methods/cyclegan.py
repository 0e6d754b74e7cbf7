"""CycleGAN (Zhu et al., ICCV 2017), the CLIPTraVeLGAN paper's baseline, on TraVeLGAN's G and D.

Two generators (A -> B, B -> A) and two discriminators, all the networks of
``i2ibench/nets/travelgan.py`` (the CLIPTraVeLGAN paper, §4: "the generators and
discriminators of all models were identical"). Losses: non-saturating BCE for both directions
(D: ``0.5·BCE(real, 1) + 0.5·BCE(fake, 0)``), cycle consistency ``|x - G_BA(G_AB(x))|_1`` both
ways with ``lambda_cyc`` 10, and optionally CycleGAN's identity term ``|G_AB(b) - b|_1`` with
``lambda_identity`` (official CycleGAN: 0.5·λ_cyc for photo <-> painting; default 0 here).

Departures from the official CycleGAN (junyanz/pytorch-CycleGAN-and-pix2pix): BCE instead of its
least-squares GAN loss, no image pool of past fakes, TraVeLGAN's U-Net and dense-logit D instead
of its ResNet generator and PatchGAN, Adam β1 0.5 at 2e-4 with no linear decay; all so that the
comparison with (CLIP)TraVeLGAN differs in the content term only.

Deterministic, serves A -> B and B -> A. Batches: ``x_src`` from A, ``x_ref`` from B.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from i2ibench.config import RunConfig
from i2ibench.errors import ConfigError
from i2ibench.method import Batch, DataInfo, Method
from i2ibench.methods.travel_losses import bce_d_loss, bce_g_loss, cycle_loss
from i2ibench.names import DETERMINISTIC, GROUND_TRUTH
from i2ibench.nets.travelgan import Discriminator, UNetGenerator
from i2ibench.registry import register_method

A, B = 0, 1


@dataclass
class CycleGANConfig:
    nfilt: int = 64
    lr: float = 2e-4
    d_lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    d_steps: int = 1
    lambda_adv: float = 1.0
    lambda_cyc: float = 10.0
    lambda_identity: float = 0.0


PRESETS: dict[str, dict[str, Any]] = {
    # The CLIPTraVeLGAN paper's comparison: the same G, D, image size and batch as cliptravelgan.
    "paper": {
        "train.img_size": 256, "train.batch_size": 128, "train.total_iters": 20_000,
        "train.log_every": 50, "train.sample_every": 2_000, "train.ckpt_every": 2_000, "model.nfilt": 64,
        "eval.max_src_per_domain": 0, "eval.max_real_per_domain": 0, "eval.outs_per_input": 1,
    },
    "cpu": {
        "train.img_size": 32, "train.batch_size": 16, "train.total_iters": 5_000,
        "train.log_every": 50, "train.sample_every": 500, "train.ckpt_every": 500, "model.nfilt": 16,
        "eval.max_src_per_domain": 200, "eval.max_real_per_domain": 500, "eval.outs_per_input": 1,
        "eval.batch_size": 50,
    },
    "smoke": {
        "train.img_size": 32, "train.batch_size": 4, "train.total_iters": 4,
        "train.log_every": 1, "train.sample_every": 2, "train.ckpt_every": 2, "model.nfilt": 4,
        "eval.max_src_per_domain": 3, "eval.max_real_per_domain": 6, "eval.outs_per_input": 1,
        "eval.batch_size": 16,
    },
}


@register_method("cyclegan")
class CycleGAN(Method):
    """CycleGAN (Zhu et al., ICCV 2017) on TraVeLGAN's networks: A <-> B with a cycle loss (module doc)."""

    Config = CycleGANConfig
    presets = PRESETS
    modes = (DETERMINISTIC,)
    label_kind = GROUND_TRUTH
    batch_domains = (A, B)

    def __init__(self, cfg: RunConfig, info: DataInfo, device: torch.device | str = "cpu"):
        super().__init__(cfg, info, device)
        m: CycleGANConfig = cfg.model
        if info.num_domains < 2:
            raise ConfigError(f"cyclegan needs 2 classes (A, B), got {info.num_domains}")
        if m.d_steps < 1:
            raise ConfigError(f"model.d_steps must be >= 1, got {m.d_steps}")
        if cfg.vlm:
            raise ConfigError("cyclegan uses no VLM: drop --vlm (records would name a model it never used)")
        size = cfg.train.img_size
        for name in ("generator_ab", "generator_ba"):
            self.nets[name] = UNetGenerator(size, m.nfilt)
        for name in ("discriminator_a", "discriminator_b"):
            self.nets[name] = Discriminator(size, m.nfilt)
        self.nets.to(self.device)
        betas = (float(m.beta1), float(m.beta2))
        # Adam is per parameter: one optimiser per net equals the official one over both G's (and both D's).
        for name, net in self.nets.items():
            lr = m.d_lr if name.startswith("discriminator") else m.lr
            self.optims[name] = torch.optim.Adam(net.parameters(), lr=lr, betas=betas)

    def serves(self, src: int, trg: int, mode: str) -> bool:
        """A -> B and B -> A (classes 0 and 1), deterministic."""
        return mode == DETERMINISTIC and (src, trg) in ((A, B), (B, A))

    def setting(self) -> str:
        m: CycleGANConfig = self.mcfg
        return f"lambda_cyc={m.lambda_cyc:g}, lambda_identity={m.lambda_identity:g}, d_steps={m.d_steps}"

    def domain_labels(self, x: torch.Tensor) -> torch.Tensor:
        raise TypeError("cyclegan trains with the ground-truth domains A and B")

    def training_step(self, batch: Batch, step: int) -> dict[str, float]:
        """``batch.x_src``: images of A; ``batch.x_ref``: images of B (``batch_domains``)."""
        m: CycleGANConfig = self.mcfg
        G_ab, G_ba = self.nets["generator_ab"], self.nets["generator_ba"]
        D_a, D_b = self.nets["discriminator_a"], self.nets["discriminator_b"]
        a, b = batch.x_src, batch.x_ref
        logs: dict[str, Any] = {}
        try:
            self.set_trainable("discriminator_a", "discriminator_b")
            for _ in range(m.d_steps):
                with torch.no_grad():
                    fake_b, fake_a = G_ab(a), G_ba(b)
                loss_d = bce_d_loss(D_b(b), D_b(fake_b)) + bce_d_loss(D_a(a), D_a(fake_a))
                self.optimize(loss_d, ["discriminator_a", "discriminator_b"])
            logs["D/loss"] = loss_d

            self.set_trainable("generator_ab", "generator_ba")
            fake_b, fake_a = G_ab(a), G_ba(b)
            adv = bce_g_loss(D_b(fake_b)) + bce_g_loss(D_a(fake_a))
            cyc = cycle_loss(a, G_ba(fake_b)) + cycle_loss(b, G_ab(fake_a))
            loss = m.lambda_adv * adv + m.lambda_cyc * cyc
            logs.update({"G/adv": adv, "G/cycle": cyc})
            if m.lambda_identity:
                idt = cycle_loss(b, G_ab(b)) + cycle_loss(a, G_ba(a))
                loss = loss + m.lambda_identity * idt
                logs["G/identity"] = idt
            self.optimize(loss, ["generator_ab", "generator_ba"])
            logs["G/loss"] = loss
        finally:
            self.set_trainable(*self.nets.keys())
        return self.loss_values(logs)

    @torch.no_grad()
    def translate(self, x: torch.Tensor, target: torch.Tensor | None, *, z: torch.Tensor | None = None,
                  ref: torch.Tensor | None = None) -> torch.Tensor:
        """Images ``[n, 3, S, S]`` in [-1, 1] into ``target`` (LongTensor ``[n]`` of 0 = A / 1 = B, or an
        int): ``G_AB`` for target B, ``G_BA`` for A; generators in eval mode. No ``z``/``ref``."""
        if z is not None or ref is not None:
            raise ValueError("cyclegan is deterministic: no latent code or reference")
        if target is None:
            raise ValueError("cyclegan needs a target domain (0 = A, 1 = B)")
        t = torch.as_tensor(target, device=x.device).expand(x.shape[0]) if torch.as_tensor(target).dim() == 0 \
            else torch.as_tensor(target, device=x.device)
        if bool(((t != A) & (t != B)).any()):
            raise ValueError("cyclegan translates between classes 0 (A) and 1 (B) only")
        out = torch.empty_like(x)
        for d, name in ((B, "generator_ab"), (A, "generator_ba")):
            rows = t == d
            if bool(rows.any()):
                G = self.nets[name]
                was = G.training
                G.eval()
                try:
                    out[rows] = G(x[rows])
                finally:
                    G.train(was)
        return out
