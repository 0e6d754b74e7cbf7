"""StarGAN v2 (Choi et al., CVPR 2020): the supervised multi-domain baseline.

One iteration, in the official order: discriminator step with a latent-guided fake,
discriminator step with a reference-guided fake, generator step latent-guided (updates the
generator, mapping network and style encoder), generator step reference-guided (updates the
generator only), then EMA (0.999) of the generator, mapping network and style encoder.
Losses: non-saturating BCE adversarial, R1 on real images, style reconstruction,
diversity-sensitive (weight decayed linearly to 0 over ``ds_iter``) and cycle consistency.

Target domains of both branches are the reference images' domains (``batch.y_ref``), as in
the official code, whose reference loader is class-balanced; ``latent_target="uniform"``
samples the latent branch's targets uniformly instead. Latent codes and uniform targets come
from torch's global RNG, which the engine seeds and checkpoints, so a resumed run is exact.

The high-pass branch (``w_hpf=1``, CelebA-HQ) is built as officially, but its face masks
need a pretrained FAN landmark network that i2ibench does not ship: ``mask_fn`` is ``None``
unless a caller sets a function ``images -> (mask_32, mask_64)``; without it the generator
runs without the masked high-pass skips.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from i2ibench.config import RunConfig
from i2ibench.errors import ConfigError
from i2ibench.method import Batch, DataInfo, Method
from i2ibench.names import GROUND_TRUTH, LATENT, REFERENCE
from i2ibench.nets.stargan2 import build_backbone, init_weights, set_fused_resampling
from i2ibench.registry import register_method
from i2ibench.train.losses import MaskFn, d_loss, g_loss, linear_decay
from i2ibench.train.optim import adam


@dataclass
class BackboneConfig:
    """The StarGAN v2 backbone, its optimisers and loss weights: shared by the methods on the backbone."""

    # backbone (image size comes from train.img_size)
    dim_in: int = 0                 # first conv channels of G, E and D; 0: official 2**14 // img_size
    max_conv_dim: int = 512
    style_dim: int = 64
    latent_dim: int = 16
    w_hpf: float = 0.0              # >0: high-pass branch (extra level, filter scaled 1/w_hpf)
    mapping_hidden: int = 512
    num_shared_mapping_layers: int = 4
    num_head_mapping_layers: int = 4
    # optimisation
    lr: float = 1e-4                # generator, style encoder, discriminator
    f_lr: float = 1e-6              # mapping network
    beta1: float = 0.0
    beta2: float = 0.99
    weight_decay: float = 1e-4
    ema_beta: float = 0.999
    # loss weights
    lambda_reg: float = 1.0         # R1
    lambda_sty: float = 1.0
    lambda_ds: float = 1.0          # initial diversity weight (AFHQ README uses 2)
    ds_iter: int = 100_000          # iterations over which lambda_ds decays linearly to 0
    lambda_cyc: float = 1.0


@dataclass
class StarGAN2Config(BackboneConfig):
    latent_target: str = "ref"      # ref (official: y_trg = reference domain) | uniform


# Presets: flat dotted overrides over RunConfig. The cpu preset was timed on the project's
# 2-core machine (see the method's report / benchmarks/): ~1 h for a full run.
# The rule for presets that shorten training (cpu, smoke; README "Presets"): they shrink image
# size, widths, lengths (and the schedules tied to them) and evaluation counts, and give every
# method on the shared backbone the same optimiser settings. StarGAN v2's mapping-network lr of
# 1e-6 is a 100k-iteration setting that leaves the mapping network almost untrained in 3k
# steps, so the shortened presets use LANIT's 1e-4 for it, as for the other nets.
SHORT_PRESET_LR = {"model.lr": 1e-4, "model.f_lr": 1e-4}
PRESETS = {
    "paper": {
        "train.resize": "squash", "train.augment": "crop_flip", "train.img_size": 256, "train.batch_size": 8, "train.total_iters": 100_000,
        "train.log_every": 10, "train.sample_every": 5_000, "train.ckpt_every": 10_000,
        "model.dim_in": 0, "model.max_conv_dim": 512, "model.style_dim": 64, "model.latent_dim": 16,
        "model.mapping_hidden": 512, "model.ds_iter": 100_000,
        # official metrics/eval.py: every val image of a source, 10 outputs, FID against the target's
        # *training* images
        "eval.max_src_per_domain": 0, "eval.outs_per_input": 10, "eval.max_real_per_domain": 0,
        "eval.real_split": "train",
    },
    "cpu": {
        "train.augment": "crop_flip", "train.img_size": 32, "train.batch_size": 8, "train.total_iters": 3_000,
        "train.log_every": 20, "train.sample_every": 250, "train.ckpt_every": 250,
        "model.dim_in": 32, "model.max_conv_dim": 128, "model.style_dim": 32, "model.latent_dim": 16,
        "model.mapping_hidden": 128, "model.ds_iter": 3_000, **SHORT_PRESET_LR,
        "eval.max_src_per_domain": 5, "eval.outs_per_input": 2, "eval.max_real_per_domain": 200,
    },
    "smoke": {
        "train.augment": "crop_flip", "train.img_size": 32, "train.batch_size": 4, "train.total_iters": 4,
        "train.log_every": 1, "train.sample_every": 2, "train.ckpt_every": 2,
        "model.dim_in": 8, "model.max_conv_dim": 16, "model.style_dim": 8, "model.latent_dim": 4,
        "model.mapping_hidden": 16, "model.ds_iter": 4, **SHORT_PRESET_LR,
        "eval.max_src_per_domain": 1, "eval.outs_per_input": 2, "eval.max_real_per_domain": 6,
        "eval.batch_size": 16, "eval.style_plot_per_domain": 10,
    },
}


def check_stargan2_config(m: StarGAN2Config) -> None:
    """The StarGAN v2 settings the config rules cannot express (stargan2, and hmu built on it)."""
    if m.latent_target not in ("ref", "uniform"):
        raise ConfigError(f"model.latent_target must be 'ref' or 'uniform', got '{m.latent_target}'")
    if m.ds_iter < 1:
        raise ConfigError(f"model.ds_iter must be >= 1, got {m.ds_iter}")


# --------------------------------------------------------------------------- method

@register_method("stargan2")
class StarGAN2(Method):
    Config = StarGAN2Config
    presets = PRESETS
    modes = (LATENT, REFERENCE)
    label_kind = GROUND_TRUTH

    def __init__(self, cfg: RunConfig, info: DataInfo, device: torch.device | str = "cpu"):
        super().__init__(cfg, info, device)
        m: StarGAN2Config = cfg.model
        check_stargan2_config(m)
        if info.num_domains < 2:
            raise ConfigError(f"stargan2 needs at least 2 domains, dataset '{info.dataset}' has {info.num_domains}")
        if info.multi_label:
            raise ConfigError(f"stargan2 trains with one ground-truth domain per image; dataset '{info.dataset}' "
                              f"is multi-label (use lanit, which takes multi-hot labels)")
        # Official order (core/model.py build_model, then Solver.__init__): the EMA copies are taken
        # before He initialisation, which only the trained nets get.
        self.nets = build_backbone(m, cfg.train.img_size, info.num_domains, he_init=False).to(self.device)
        self.make_ema("generator", "mapping_network", "style_encoder")
        init_weights(self.nets)
        plain = cfg.train.plain_step
        for mods in (self.nets, self.nets_ema):
            set_fused_resampling(mods, not plain)
        for name, net in self.nets.items():
            lr = m.f_lr if name == "mapping_network" else m.lr
            self.optims[name] = adam(net.parameters(), lr=lr, betas=(float(m.beta1), float(m.beta2)),
                                     weight_decay=m.weight_decay, plain=plain)
        self.mask_fn: MaskFn | None = None  # face masks for w_hpf > 0 (needs a FAN; see module doc)

    def training_step(self, batch: Batch, step: int) -> dict[str, float]:
        """One iteration; ``step`` is the 0-based index of this iteration (drives the ds decay)."""
        try:
            if self.cfg.train.plain_step:
                return self._iteration(batch, step)
            return self._shared_iteration(batch, step)
        finally:
            self.set_trainable(*self.nets.keys())

    def _inputs(self, batch: Batch, step: int) -> tuple[torch.Tensor, ...]:
        """What both iterations start from: ``x_real, y_org, x_ref, x_ref2, y_trg`` of the batch;
        the iteration's random draws in the official order (latent targets, ``uniform`` only; z1;
        z2) as ``y_lat, z1, z2``; the decayed ``lambda_ds``; the face masks (None unless w_hpf > 0)."""
        m: StarGAN2Config = self.mcfg
        n = batch.x_src.size(0)
        if m.latent_target == "uniform":
            y_lat = torch.randint(0, self.info.num_domains, (n,), device=self.device)
        else:
            y_lat = batch.y_ref
        z1 = torch.randn(n, m.latent_dim, device=self.device)
        z2 = torch.randn(n, m.latent_dim, device=self.device)
        masks = self.mask_fn(batch.x_src) if self.mask_fn is not None else None
        return (batch.x_src, batch.y_src, batch.x_ref, batch.x_ref2, batch.y_ref, y_lat, z1, z2,
                linear_decay(m.lambda_ds, step, m.ds_iter), masks)

    def _shared_iteration(self, batch: Batch, step: int) -> dict[str, float]:
        """``_iteration``'s updates without the work it does twice (``train.plain_step=false``, the default).

        G, F and E keep their weights until the latent G step's update, so one encoding of
        ``x_real`` (``Generator.encode_only``: the encoder does not see the style) serves the fakes
        of both D steps and both latent G-step fakes, and the latent D step's fake
        ``G(x_real, F(z1))`` is the latent G step's own, computed once with its graph (kept
        through the D updates, which touch only D). The reference G step encodes ``x_real`` once
        more (G has changed) for its two fakes. Same random draws, same order of updates; only
        fp32 round-off differs from ``_iteration`` (tests/test_train_speed.py).
        """
        m: StarGAN2Config = self.mcfg
        x_real, y_org, x_ref, x_ref2, y_trg, y_lat, z1, z2, lambda_ds, masks = self._inputs(batch, step)
        G, D = self.nets["generator"], self.nets["discriminator"]
        F_, E = self.nets["mapping_network"], self.nets["style_encoder"]
        logs: dict[str, torch.Tensor] = {}

        self.set_trainable("generator", "mapping_network")  # the latent fake keeps its graph for the G step
        enc = G.encode_only(x_real)
        s_lat = F_(z1, y_lat)
        x_fake_lat = G.decode_from(enc, s_lat, masks)
        self.set_trainable("discriminator")
        loss, parts = d_loss(G, D, x_real, y_org, y_lat, s_lat, m.lambda_reg, masks, x_fake=x_fake_lat.detach())
        self.optimize(loss, ["discriminator"])
        logs.update({f"D/latent_{k}": v for k, v in parts.items()})
        with torch.no_grad():
            s_ref = E(x_ref, y_trg)
            x_fake_ref = G.decode_from(enc, s_ref, masks)
        loss, parts = d_loss(G, D, x_real, y_org, y_trg, s_ref, m.lambda_reg, masks, x_fake=x_fake_ref)
        self.optimize(loss, ["discriminator"])
        logs.update({f"D/ref_{k}": v for k, v in parts.items()})

        self.set_trainable("generator", "mapping_network", "style_encoder")
        with torch.no_grad():
            x_fake2 = G.decode_from(enc, F_(z2, y_lat), masks)
        weights = dict(lambda_sty=m.lambda_sty, lambda_ds=lambda_ds, lambda_cyc=m.lambda_cyc)
        loss, parts, _ = g_loss(G, E, D, x_real, y_org, y_lat, s_lat, None, **weights, masks=masks,
                                mask_fn=self.mask_fn, x_fake=x_fake_lat, x_fake2=x_fake2)
        self.optimize(loss, ["generator", "mapping_network", "style_encoder"])
        logs.update({f"G/latent_{k}": v for k, v in parts.items()})
        del enc, x_fake_lat  # free the latent graph before the reference branch builds its own

        self.set_trainable("generator")
        enc = G.encode_only(x_real)
        s_ref = E(x_ref, y_trg)  # E has been updated: not the D step's s_ref
        with torch.no_grad():
            x_fake2 = G.decode_from(enc, E(x_ref2, y_trg), masks)
        loss, parts, _ = g_loss(G, E, D, x_real, y_org, y_trg, s_ref, None, **weights, masks=masks,
                                mask_fn=self.mask_fn, x_fake=G.decode_from(enc, s_ref, masks), x_fake2=x_fake2)
        self.optimize(loss, ["generator"])
        logs.update({f"G/ref_{k}": v for k, v in parts.items()})

        self.update_ema(m.ema_beta)
        out = self.loss_values(logs)
        out["G/lambda_ds"] = lambda_ds
        return out

    def _iteration(self, batch: Batch, step: int) -> dict[str, float]:
        """The plain iteration (``train.plain_step=true``): the official order of work, each loss
        computing its own fakes."""
        m: StarGAN2Config = self.mcfg
        x_real, y_org, x_ref, x_ref2, y_trg, y_lat, z1, z2, lambda_ds, masks = self._inputs(batch, step)
        G, D = self.nets["generator"], self.nets["discriminator"]
        F_, E = self.nets["mapping_network"], self.nets["style_encoder"]
        logs: dict[str, torch.Tensor] = {}

        self.set_trainable("discriminator")
        with torch.no_grad():
            s_lat, s_ref = F_(z1, y_lat), E(x_ref, y_trg)
        loss, parts = d_loss(G, D, x_real, y_org, y_lat, s_lat, m.lambda_reg, masks)
        self.optimize(loss, ["discriminator"])
        logs.update({f"D/latent_{k}": v for k, v in parts.items()})
        loss, parts = d_loss(G, D, x_real, y_org, y_trg, s_ref, m.lambda_reg, masks)
        self.optimize(loss, ["discriminator"])
        logs.update({f"D/ref_{k}": v for k, v in parts.items()})

        self.set_trainable("generator", "mapping_network", "style_encoder")
        with torch.no_grad():
            s_lat2 = F_(z2, y_lat)
        weights = dict(lambda_sty=m.lambda_sty, lambda_ds=lambda_ds, lambda_cyc=m.lambda_cyc)
        loss, parts, _ = g_loss(G, E, D, x_real, y_org, y_lat, F_(z1, y_lat), s_lat2, **weights,
                                masks=masks, mask_fn=self.mask_fn)
        self.optimize(loss, ["generator", "mapping_network", "style_encoder"])
        logs.update({f"G/latent_{k}": v for k, v in parts.items()})

        self.set_trainable("generator")
        with torch.no_grad():
            s_ref2 = E(x_ref2, y_trg)
        loss, parts, _ = g_loss(G, E, D, x_real, y_org, y_trg, E(x_ref, y_trg), s_ref2, **weights,
                                masks=masks, mask_fn=self.mask_fn)
        self.optimize(loss, ["generator"])
        logs.update({f"G/ref_{k}": v for k, v in parts.items()})

        self.update_ema(m.ema_beta)
        out = self.loss_values(logs)
        out["G/lambda_ds"] = lambda_ds
        return out

    @torch.no_grad()
    def style(self, target: torch.Tensor, *, z: torch.Tensor | None = None,
              ref: torch.Tensor | None = None) -> torch.Tensor:
        """Style codes of ``target`` (indices or multi-hot) from latent codes or reference images (EMA nets)."""
        if (z is None) == (ref is None):
            raise ValueError("give exactly one of z (latent-guided) or ref (reference-guided)")
        if z is not None:
            return self.nets_ema["mapping_network"](z, target)
        return self.nets_ema["style_encoder"](ref, target)

    @torch.no_grad()
    def translate(self, x: torch.Tensor, target: torch.Tensor, *, z: torch.Tensor | None = None,
                  ref: torch.Tensor | None = None) -> torch.Tensor:
        """EMA translation of ``x`` into ``target``; for ``ref``, ``target`` is the references' domain.

        Output clamped to [-1, 1] (the range of the inputs).
        """
        s = self.style(target, z=z, ref=ref)
        masks = self.mask_fn(x) if self.mask_fn is not None else None
        return self.nets_ema["generator"](x, s, masks).clamp(-1, 1)

    def domain_labels(self, x: torch.Tensor) -> torch.Tensor:
        raise TypeError("stargan2 trains with the dataset's ground-truth domain labels; it has no labels of its own to score")
