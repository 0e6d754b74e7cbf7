"""CLIPTraVeLGAN (Bodyanskiy, Ryabova & Lavrynenko, COLINS 2023; seed 003) and TraVeLGAN (Amodio &
Krishnaswamy, CVPR 2019): one-sided two-domain translation A -> B, deterministic (no style).

Networks: TraVeLGAN's U-Net generator G and discriminator D (``i2ibench/nets/travelgan.py``,
sized as the official code: at 128 px, ``nfilt`` 64, 4.07 M and 27.8 M parameters; the paper
uses the same G and D for every compared model). Adversarial loss: non-saturating BCE, D's loss
``0.5·BCE(real, 1) + 0.5·BCE(fake, 0)`` (official ``_build_loss_D``).

Generator objective (paper Eq. 1): ``L_G = λ_adv·L_adv + λ·L_travel``, where the TraVeL loss
(Eq. 2) compares the transformation vectors ``v_ij = S(x_i) - S(x_j)`` and
``v'_ij = S(G(x_i)) - S(G(x_j))`` of every ordered pair i != j of the batch:
``Σ (1 - cos(v_ij, v'_ij))``, ``model.reduction`` = ``sum`` (paper) or ``mean`` over the B(B-1)
pairs; ``λ_mean = λ_sum·B(B-1)`` gives the same objective (paper B = 128: ×16,256; see
``travel_losses``). The variant that ran is the ``setting`` column of every record.

The encoder S (``model.encoder``):

- ``clip`` (CLIPTraVeLGAN): a frozen VLM image encoder (``--vlm``; default ``tiny-clip`` on the
  offline datasets, ``openai/ViT-B-32`` elsewhere; the paper used CLIP ViT-L/14:
  ``--vlm open_clip:ViT-L-14/openai``). S sees the centre crop of ``crop_fraction`` of the image
  side (paper: 224 of 256 = 0.875), then the VLM's own resize and normalisation
  (``VLM.preprocess``); its embedding is the projected image embedding, not L2-normalised.
  Frozen: no parameter gradient, kept out of ``nets`` (never checkpointed), named in every
  record through ``frozen_models``; gradients flow through it into G.
- ``random``: the same VLM architecture with random weights (the paper's ablation, Fig. 6),
  named ``random-weights:ARCH@seed=N`` in every record.
- ``trained`` (TraVeLGAN): the official siamese network (domain-specific first layer, latent
  1000), trained with G's optimiser (one Adam over G's and S's parameters, as the official
  ``Gvars``) on ``margin`` + ``mse`` + ``cos`` (``travel_losses.siamese_losses``), weight
  ``lambda_siamese`` 10; ``lambda_travel`` is not used. Registered on its own as ``travelgan``.

``model.loss = identity`` (CLIP encoders only) replaces the TraVeL loss by
``Σ_i (1 - cos(S(x_i), S(G(x_i))))``, the paper's negative result (§6).

Batches: ``batch_domains = (0, 1)``: every source of a batch is from class 0 (A) and every
reference from class 1 (B) (on a dataset with more classes, the first two are A and B).

Where i2ibench departs from the official code (the README has the table):
- The official TraVeLGAN is two-sided (G12, G21, D1, D2, one S); here one-sided, as the
  CLIPTraVeLGAN paper, with S embedding real A through its domain-A first layer and G(x)
  through the domain-B one.
- The official loop runs D twice then G once per iteration, each on a new batch drawn from an
  unshuffled pipeline; here ``d_steps`` D updates then one G update on the same batch (travelgan's
  presets: ``d_steps`` 2, as official; cliptravelgan: 1, as the Kaggle CLIPTraVeLGAN notebook).
- The Kaggle notebook's S output is CLIP's ``pooler_output`` (pre-projection) and its D a
  PatchGAN; here the projected embedding and TraVeLGAN's D, as the paper says the compared
  models share TraVeLGAN's G and D. D's learning rate equals G's (the notebook: 2×).
- No EMA (none in either code); translation uses G in eval mode (batch-norm moving averages,
  official ``is_training=False``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from i2ibench.config import RunConfig
from i2ibench.errors import ConfigError, TrainingError
from i2ibench.method import Batch, DataInfo, Method
from i2ibench.methods.travel_losses import (
    REDUCTIONS,
    bce_d_loss,
    bce_g_loss,
    identity_loss,
    siamese_losses,
    travel_loss,
)
from i2ibench.names import DETERMINISTIC, GROUND_TRUTH
from i2ibench.nets.travelgan import Discriminator, SiameseNet, UNetGenerator
from i2ibench.registry import register_method

ENCODERS = ("clip", "random", "trained")
LOSSES = ("travel", "identity")
PAPER_BATCH = 128
A, B = 0, 1


@dataclass
class CLIPTraVeLGANConfig:
    nfilt: int = 64                 # official TraVeLGAN --nfilt
    lr: float = 2e-4                # Adam, G (and S when trained); official TraVeLGAN
    d_lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    d_steps: int = 1                # D updates per G update (official TraVeLGAN: 2)
    lambda_adv: float = 1.0
    encoder: str = "clip"           # clip | random | trained
    loss: str = "travel"            # travel | identity (clip/random encoders)
    lambda_travel: float = 0.001    # paper λ (sum form at batch 128)
    reduction: str = "sum"          # sum (paper) | mean over the B(B-1) pairs
    crop_fraction: float = 0.875    # S sees the centre 224 of 256
    random_seed: int = 0            # encoder=random: seed of the random VLM weights
    siamese_dim: int = 1000         # encoder=trained: official --siamese_latentdim
    siamese_margin: float = 10.0
    lambda_siamese: float = 10.0


def _presets(encoder: str, d_steps: int) -> dict[str, dict[str, Any]]:
    return {
        # The paper: 256 px, batch 128, Adam; λ 0.001 at 20k updates (Table 1: FID 6.81, no flipping).
        "paper": {
            "train.img_size": 256, "train.batch_size": PAPER_BATCH, "train.total_iters": 20_000,
            "train.log_every": 50, "train.sample_every": 2_000, "train.ckpt_every": 2_000,
            "model.nfilt": 64, "model.encoder": encoder, "model.d_steps": d_steps,
            "model.lambda_travel": 0.001, "model.reduction": "sum",
            "eval.max_src_per_domain": 0, "eval.max_real_per_domain": 0, "eval.outs_per_input": 1,
        },
        # 32 px, nfilt 16, batch 16; the TraVeL term in mean form at the paper's balance
        # (λ_mean = λ_paper·128·127: 0.001 -> 16.256). See README for the measured s/iter.
        "cpu": {
            "train.img_size": 32, "train.batch_size": 16, "train.total_iters": 5_000,
            "train.log_every": 50, "train.sample_every": 500, "train.ckpt_every": 500,
            "model.nfilt": 16, "model.encoder": encoder, "model.d_steps": d_steps,
            "model.lambda_travel": 16.256, "model.reduction": "mean", "model.siamese_dim": 128,
            "eval.max_src_per_domain": 200, "eval.max_real_per_domain": 500, "eval.outs_per_input": 1,
            "eval.batch_size": 50,
        },
        "smoke": {
            "train.img_size": 32, "train.batch_size": 4, "train.total_iters": 4,
            "train.log_every": 1, "train.sample_every": 2, "train.ckpt_every": 2,
            "model.nfilt": 4, "model.encoder": encoder, "model.d_steps": d_steps,
            "model.lambda_travel": 16.256, "model.reduction": "mean", "model.siamese_dim": 16,
            "eval.max_src_per_domain": 3, "eval.max_real_per_domain": 6, "eval.outs_per_input": 1,
            "eval.batch_size": 16,
        },
    }


def center_crop(x: torch.Tensor, fraction: float) -> torch.Tensor:
    """The centre ``round(fraction·H) x round(fraction·W)`` of images ``[n, C, H, W]`` (at least 1 px)."""
    if not 0.0 < fraction <= 1.0:
        raise ConfigError(f"model.crop_fraction must be in (0, 1], got {fraction}")
    h, w = x.shape[-2:]
    ch, cw = max(1, round(fraction * h)), max(1, round(fraction * w))
    top, left = (h - ch) // 2, (w - cw) // 2
    return x[..., top:top + ch, left:left + cw]


def default_vlm(dataset: str) -> str:
    """``--vlm`` when none is given: LANIT's rule (the offline stand-in on the offline datasets)."""
    from i2ibench.methods.lanit import default_vlm as lanit_default

    return lanit_default(dataset)


@register_method("cliptravelgan")
class CLIPTraVeLGAN(Method):
    """CLIPTraVeLGAN (Bodyanskiy et al. 2023): one-sided A -> B, TraVeL loss on a frozen VLM (module doc)."""

    Config = CLIPTraVeLGANConfig
    presets = _presets("clip", 1)
    modes = (DETERMINISTIC,)
    label_kind = GROUND_TRUTH
    batch_domains = (A, B)

    def __init__(self, cfg: RunConfig, info: DataInfo, device: torch.device | str = "cpu", vlm=None):
        super().__init__(cfg, info, device)
        m: CLIPTraVeLGANConfig = cfg.model
        self._check(m, info)
        size = cfg.train.img_size
        self.nets["generator"] = UNetGenerator(size, m.nfilt)
        self.nets["discriminator"] = Discriminator(size, m.nfilt)
        self.vlm = None
        if m.encoder == "trained":
            self.nets["siamese"] = SiameseNet(size, m.nfilt, m.siamese_dim)
        else:
            if vlm is None:  # tests pass one; runs load the configured one
                name = cfg.vlm or default_vlm(info.dataset)
                if m.encoder == "random":
                    from i2ibench.vlm.clip import random_weight_vlm
                    vlm = random_weight_vlm(name, m.random_seed)
                else:
                    from i2ibench.vlm.clip import load_vlm
                    vlm = load_vlm(name)
            self.vlm = vlm.eval().requires_grad_(False)
        self.nets.to(self.device)
        if self.vlm is not None:
            self.vlm.to(self.device)
        betas = (float(m.beta1), float(m.beta2))
        # Official Gvars: G and S under one Adam (S is trained with G's optimiser, on G's loss).
        g_groups = [{"params": list(self.nets["generator"].parameters())}]
        if "siamese" in self.nets:
            g_groups.append({"params": list(self.nets["siamese"].parameters())})
        self.optims["generator"] = torch.optim.Adam(g_groups, lr=m.lr, betas=betas)
        self.optims["discriminator"] = torch.optim.Adam(self.nets["discriminator"].parameters(), lr=m.d_lr, betas=betas)

    # ----------------------------------------------------------------- checks and declarations
    def _check(self, m: CLIPTraVeLGANConfig, info: DataInfo) -> None:
        if m.encoder not in ENCODERS:
            raise ConfigError(f"model.encoder must be one of {', '.join(ENCODERS)}, got '{m.encoder}'")
        if m.loss not in LOSSES:
            raise ConfigError(f"model.loss must be one of {', '.join(LOSSES)}, got '{m.loss}'")
        if m.encoder == "trained" and self.cfg.vlm:
            raise ConfigError("--vlm is not used with model.encoder=trained (the siamese network is S); "
                              "a VLM encoder is cliptravelgan's model.encoder=clip")
        if m.encoder == "trained" and m.loss != "travel":
            raise ConfigError("model.loss=identity needs a VLM encoder (model.encoder=clip or random)")
        if m.reduction not in REDUCTIONS:
            raise ConfigError(f"model.reduction must be one of {', '.join(REDUCTIONS)}, got '{m.reduction}'")
        if m.d_steps < 1:
            raise ConfigError(f"model.d_steps must be >= 1, got {m.d_steps}")
        if info.num_domains < 2:
            raise ConfigError(f"{self.name or 'cliptravelgan'} translates A -> B and needs 2 classes, got {info.num_domains}")
        center_crop(torch.zeros(1, 1, 4, 4), m.crop_fraction)  # ConfigError for a bad fraction

    def serves(self, src: int, trg: int, mode: str) -> bool:
        """A -> B only (classes 0 -> 1), deterministic."""
        return mode == DETERMINISTIC and (src, trg) == (A, B)

    def frozen_models(self) -> dict[str, str]:
        return {} if self.vlm is None else {"vlm": self.vlm.name}

    def setting(self) -> str:
        m: CLIPTraVeLGANConfig = self.mcfg
        if m.encoder == "trained":
            return f"S=trained siamese, lambda_siamese={m.lambda_siamese:g}, d_steps={m.d_steps}"
        return (f"S={'random-weight ' if m.encoder == 'random' else ''}VLM, loss={m.loss}, "
                f"lambda={m.lambda_travel:g} ({m.reduction} over {'pairs' if m.loss == 'travel' else 'images'}), "
                f"d_steps={m.d_steps}")

    def domain_labels(self, x: torch.Tensor) -> torch.Tensor:
        raise TypeError(f"{self.name} trains with the ground-truth domains A and B")

    def to(self, device=None, memory_format=None) -> "CLIPTraVeLGAN":
        super().to(device, memory_format)
        if self.vlm is not None:
            self.vlm.to(self.device)
        return self

    # ----------------------------------------------------------------- encoder S
    def embed(self, x: torch.Tensor, domain: int) -> torch.Tensor:
        """S(x) ``[n, D]`` of images ``[n, 3, S, S]`` in [-1, 1]: the VLM's embedding of the centre
        crop, or the trained siamese network's (first layer of ``domain``)."""
        if self.vlm is None:
            return self.nets["siamese"](x, domain)
        return self.vlm.encode_image(center_crop(x, self.mcfg.crop_fraction), normalize=False)

    # ----------------------------------------------------------------- training
    def _step_generator(self, loss: torch.Tensor) -> None:
        """One step of G's optimiser (over G and, for encoder=trained, S)."""
        names = [n for n in ("generator", "siamese") if n in self.nets]
        opt = self.optims["generator"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.grad_sync is not None:
            self.grad_sync([self.nets[n] for n in names])
        opt.step()

    def training_step(self, batch: Batch, step: int) -> dict[str, float]:
        """``batch.x_src``: images of A; ``batch.x_ref``: images of B (``batch_domains``)."""
        m: CLIPTraVeLGANConfig = self.mcfg
        G, D = self.nets["generator"], self.nets["discriminator"]
        x, y = batch.x_src, batch.x_ref
        if x.shape[0] < 2:
            raise TrainingError("the TraVeL loss needs at least 2 source images per batch (train.batch_size >= 2)")
        logs: dict[str, Any] = {}
        try:
            self.set_trainable("discriminator")
            for _ in range(m.d_steps):
                with torch.no_grad():
                    fake = G(x)
                loss_d = bce_d_loss(D(y), D(fake))
                self.optimize(loss_d, ["discriminator"])
            logs["D/loss"] = loss_d

            self.set_trainable("generator", "siamese")
            fake = G(x)
            adv = bce_g_loss(D(fake))
            loss = m.lambda_adv * adv
            logs["G/adv"] = adv
            if m.encoder == "trained":
                parts = siamese_losses(self.embed(x, A), self.embed(fake, B), m.siamese_margin)
                loss = loss + m.lambda_siamese * sum(parts.values())
                logs.update({f"S/{k}": v for k, v in parts.items()})
            elif m.lambda_travel:
                with torch.no_grad():
                    e_x = self.embed(x, A)
                e_g = self.embed(fake, B)
                fn = travel_loss if m.loss == "travel" else identity_loss
                term = fn(e_x, e_g, m.reduction)
                loss = loss + m.lambda_travel * term
                logs[f"G/{m.loss}"] = term
            self._step_generator(loss)
            logs["G/loss"] = loss
        finally:
            self.set_trainable(*self.nets.keys())
        return self.loss_values(logs)

    # ----------------------------------------------------------------- inference
    @torch.no_grad()
    def translate(self, x: torch.Tensor, target: torch.Tensor | None, *, z: torch.Tensor | None = None,
                  ref: torch.Tensor | None = None) -> torch.Tensor:
        """G(x) for images of A ``[n, 3, S, S]`` in [-1, 1] (``target`` must be B); G in eval mode
        (batch-norm moving averages), restored afterwards. Deterministic: ``z``/``ref`` must be None."""
        if z is not None or ref is not None:
            raise ValueError(f"{self.name} is deterministic: no latent code or reference")
        if target is not None and bool((torch.as_tensor(target) != B).any()):
            raise ValueError(f"{self.name} translates A -> B only (target {B})")
        G = self.nets["generator"]
        was = G.training
        G.eval()
        try:
            return G(x)
        finally:
            G.train(was)


@dataclass
class TraVeLGANConfig(CLIPTraVeLGANConfig):
    encoder: str = "trained"
    d_steps: int = 2                # official: D twice, then G


@register_method("travelgan")
class TraVeLGAN(CLIPTraVeLGAN):
    """TraVeLGAN (Amodio & Krishnaswamy, CVPR 2019): cliptravelgan with a trained siamese network.

    Its presets are cliptravelgan's (the paper's comparison shares G, D, batch and size); the
    official TraVeLGAN ran 128 px, batch 16, 200k steps: ``-p paper --set train.img_size=128
    --set train.batch_size=16 --set train.total_iters=200000``.
    """

    Config = TraVeLGANConfig
    presets = _presets("trained", 2)

    def _check(self, m: CLIPTraVeLGANConfig, info: DataInfo) -> None:
        if m.encoder != "trained":
            raise ConfigError("travelgan trains its siamese network (model.encoder=trained); "
                              "a VLM encoder is cliptravelgan")
        super()._check(m, info)
