"""TUNIT (Baek et al., ICCV 2021): truly unsupervised translation with a guiding network.

A guiding network (``methods/tunit_guiding.py``) replaces the ground-truth labels and the
style encoder: its clustering head, trained by IIC between an image and its augmented view,
gives the pseudo domains that drive the multi-task discriminator; its style head, trained
contrastively against a FIFO queue of keys from a momentum (EMA) copy, gives the style codes
the generator's AdaIN decoder uses.

What "tunit" means in i2ibench's tables: TUNIT's training (guiding network, losses, schedule,
optimisers) on the shared StarGAN v2 generator and discriminator
(``i2ibench/nets/stargan2.py``), so that methods differ by method, not network. The official
TUNIT networks differ: its generator is FUNIT-style (a content encoder of a 7x7 conv, stride-2
downsamplings and 2 instance-normalised residual blocks; an AdaIN decoder whose parameters an
MLP of 3 layers, 256 hidden, makes from the style code; tanh output; 64 base channels below
256 px, 32 above), while the StarGAN v2 generator has a residual encoder/decoder with AdaIN
residual blocks, no output activation (i2ibench clamps to [-1, 1] at translation) and up to
512 channels; its discriminator is StarGAN v2-like with two pre-activation residual blocks per
scale and up to 1024 channels, against one per scale and 512 here.

One iteration, as in the official ``train/train_unsupervised.py`` (clovaai/tunit):
1. guiding network: ``c = w_moco * MoCo + w_iic * IIC`` (semi-supervised: cross-entropy on
   both views of the labelled images instead of IIC for them), scaled by ``c_joint_scale``
   once joint training has started;
2. after ``separated_iters`` (the guiding network trains alone until then):
   discriminator: hinge loss, real images with their estimated domains vs translations to a
   reference's estimated domain, + ``w_gp`` * R1 (sum of squared gradients / N);
   generator and guiding network together: hinge adversarial loss on the translation and on
   the reconstruction, ``w_rec`` * L1 reconstruction, ``w_vec`` * style contrastive loss of
   the translation's style against the EMA style of its reference;
3. the keys of this step enter the queue; EMA of the guiding network every step (momentum
   ``c_ema_beta``), of the generator (``ema_beta``; official: 0.999 for both) from ``ema_start_iters`` on (copied from the generator at the start of that step,
   before its update, as official ``main.py`` copies it at the start of epoch ``ema_start``).
   Until the EMA generator has started, translation uses the live generator and every
   evaluation row says so.

References are the batch's own images in a random order (``torch.randperm``), never the
engine's ground-truth-domain references. Random numbers come from torch's global RNG,
which the engine seeds and checkpoints, so a resumed run is exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from i2ibench.config import RunConfig
from i2ibench.errors import ConfigError, I2IError, TrainingError
from i2ibench.method import Batch, DataInfo, Method
from i2ibench.methods.tunit_guiding import AugmentConfig, GuidingNetwork, KeyQueue, augment, contrastive_loss, iic_loss
from i2ibench.names import CLUSTERS, REFERENCE
from i2ibench.nets.stargan2 import Discriminator, Generator, init_weights, set_fused_resampling
from i2ibench.registry import register_method
from i2ibench.train.losses import l1, r1_penalty
from i2ibench.train.optim import adam, rmsprop


@dataclass
class TUNITConfig:
    # backbone (image size from train.img_size)
    dim_in: int = 0                 # first conv channels of G and D; 0: official 2**14 // img_size
    max_conv_dim: int = 512
    style_dim: int = 128            # official sty_dim
    # guiding network
    num_clusters: int = 0           # K pseudo domains; 0: the dataset's number of domains
    guide_dim: int = 64             # first VGG width (official VGG11-BN: 64 .. 512)
    guide_max_dim: int = 512
    guide_batch_norm: bool = True
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    # guiding-network losses
    queue_size: int = 1024
    temperature: float = 0.07
    w_moco: float = 1.0
    w_iic: float = 5.0
    w_ce: float = 5.0               # semi-supervised cross-entropy (replaces IIC for labelled images)
    c_joint_scale: float = 0.1      # guiding-network loss scale once joint training starts
    labelled_fraction: float = 0.0  # 0: unsupervised; >0: batch.labelled marks images whose label may be used
    # schedule (official: 200 x 1000 iterations, separated until epoch 65, G EMA from epoch 66)
    separated_iters: int = 65_000
    ema_start_iters: int = 66_000
    # translation losses
    w_adv: float = 1.0
    w_rec: float = 0.1
    w_vec: float = 0.01
    w_gp: float = 10.0
    # optimisation (official: guiding Adam 1e-4 wd 1e-3; G, D RMSprop 1e-4 wd 1e-4)
    c_lr: float = 1e-4
    c_weight_decay: float = 1e-3
    lr: float = 1e-4
    weight_decay: float = 1e-4
    ema_beta: float = 0.999         # generator EMA (from ema_start_iters on)
    c_ema_beta: float = 0.999       # guiding-network EMA, which makes the MoCo keys (official: 0.999)


PRESETS = {
    "paper": {
        "train.resize": "squash", "train.augment": "flip", "train.img_size": 128, "train.batch_size": 32, "train.total_iters": 200_000,
        "train.log_every": 100, "train.sample_every": 5_000, "train.ckpt_every": 10_000,
        "model.dim_in": 0, "model.max_conv_dim": 512, "model.style_dim": 128,
        "model.guide_dim": 64, "model.guide_max_dim": 512,
        "model.separated_iters": 65_000, "model.ema_start_iters": 66_000,
        # official validation/validation.py: reference-guided, one output per content image, pooled
        # per target up to (min + max) // 2 fakes of the class sizes, FID against the class's training images
        "eval.max_src_per_domain": 0, "eval.outs_per_input": 1, "eval.max_real_per_domain": 0,
        "eval.fakes_per_target": -1, "eval.real_split": "train",
    },
    # Backbone widths and evaluation counts equal stargan2's cpu preset, so tables compare
    # methods, not net sizes or sample counts. Batch 16 (stargan2: 8): IIC estimates a K x K
    # joint distribution from the batch. Time: on this 2-core machine a separated step costs
    # ~0.06 and a joint step ~0.8 of a stargan2 cpu step (benchmarks/bench_tunit_step.py).
    # 4k separated + 1.5k joint steps: the generator sees 1,500 x 16 = 24,000 images, as many
    # as stargan2's 3,000 x 8 (the first cpu preset had 3.5k joint steps, 56,000 images, and
    # cost about as much time as stargan2's 3k steps). The separated phase
    # is longer than the official 65/200 of the run because it is cheap and clustering is
    # slow: guiding lr 1e-3 (official 1e-4) too, since on fashion10 at 32 px, batch 16, the
    # online clustering accuracy after 1,750 separated steps was 0.38 (9 clusters used) with
    # 1e-3 vs 0.26 (5 clusters) with 1e-4. G EMA starts 0.5% of the run later, as officially.
    # G EMA beta 0.998 (official 0.999): the G EMA runs for the last 1,460 steps only, and the
    # shortened presets keep the horizon 1/(1 - beta) within half of the steps the EMA runs.
    # The guiding network's EMA (MoCo keys, every step) keeps the official 0.999.
    "cpu": {
        "train.augment": "flip", "train.img_size": 32, "train.batch_size": 16, "train.total_iters": 5_500,
        "train.log_every": 20, "train.sample_every": 500, "train.ckpt_every": 500,
        "model.dim_in": 32, "model.max_conv_dim": 128, "model.style_dim": 32,
        "model.guide_dim": 16, "model.guide_max_dim": 128, "model.c_lr": 1e-3,
        "model.separated_iters": 4_000, "model.ema_start_iters": 4_040, "model.ema_beta": 0.998,
        "eval.max_src_per_domain": 5, "eval.outs_per_input": 2, "eval.max_real_per_domain": 200,
    },
    "smoke": {
        "train.augment": "flip", "train.img_size": 32, "train.batch_size": 4, "train.total_iters": 4,
        "train.log_every": 1, "train.sample_every": 2, "train.ckpt_every": 2,
        "model.dim_in": 8, "model.max_conv_dim": 16, "model.style_dim": 8,
        "model.guide_dim": 4, "model.guide_max_dim": 16, "model.queue_size": 32,
        "model.separated_iters": 1, "model.ema_start_iters": 2,
        "eval.max_src_per_domain": 1, "eval.outs_per_input": 2, "eval.max_real_per_domain": 6,
        "eval.batch_size": 16, "eval.style_plot_per_domain": 10,
    },
}


# --------------------------------------------------------------------------- losses

def hinge_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator hinge loss: ``mean relu(1 - real) + mean relu(1 + fake)``."""
    return F.relu(1.0 - real_logits.float()).mean() + F.relu(1.0 + fake_logits.float()).mean()


def hinge_g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator hinge loss: ``-mean fake``."""
    return -fake_logits.float().mean()


def guiding_loss(logits: torch.Tensor, logits_aug: torch.Tensor, style: torch.Tensor, key: torch.Tensor,
                 queue: torch.Tensor, cfg: TUNITConfig, labels: torch.Tensor | None = None,
                 labelled: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The guiding network's own loss: MoCo on the style head, IIC (and CE for labelled images)
    on the clustering head. ``logits``/``style`` of the images, ``logits_aug`` and the EMA
    ``key`` of their augmented views."""
    moco = contrastive_loss(style, key, queue, cfg.temperature)
    unl = torch.ones_like(logits[:, 0], dtype=torch.bool) if labelled is None else ~labelled
    parts = {"moco": moco}
    loss = cfg.w_moco * moco
    if int(unl.sum()) >= 2:  # IIC needs a batch to estimate the joint distribution
        iic = iic_loss(logits[unl].float().softmax(1), logits_aug[unl].float().softmax(1))
        loss = loss + cfg.w_iic * iic
        parts["iic"] = iic
    if labelled is not None and bool(labelled.any()):
        y = labels[labelled]
        ce = F.cross_entropy(logits[labelled].float(), y) + F.cross_entropy(logits_aug[labelled].float(), y)
        loss = loss + cfg.w_ce * ce
        parts["ce"] = ce
    return loss, parts


# --------------------------------------------------------------------------- method

@register_method("tunit")
class TUNIT(Method):
    Config = TUNITConfig
    presets = PRESETS
    modes = (REFERENCE,)  # no mapping network: latent-guided translation does not apply
    label_kind = CLUSTERS
    has_style_codes = True

    def __init__(self, cfg: RunConfig, info: DataInfo, device: torch.device | str = "cpu"):
        super().__init__(cfg, info, device)
        m: TUNITConfig = cfg.model
        if info.multi_label:
            raise ConfigError(f"tunit clusters images into single domains; dataset '{info.dataset}' is multi-label")
        if not 0.0 <= m.labelled_fraction <= 1.0:
            raise ConfigError(f"model.labelled_fraction must be in [0, 1], got {m.labelled_fraction}")
        self.num_clusters = m.num_clusters or info.num_domains
        if self.num_clusters < 2:
            raise ConfigError(f"tunit needs at least 2 clusters, got {self.num_clusters} (set model.num_clusters)")
        if m.labelled_fraction > 0 and m.num_clusters not in (0, info.num_domains):
            raise ConfigError("semi-supervised tunit needs model.num_clusters equal to the number of domains (or 0)")
        img = cfg.train.img_size
        self.nets["generator"] = Generator(img, m.style_dim, m.max_conv_dim, 0, m.dim_in or None)
        self.nets["discriminator"] = Discriminator(img, self.num_clusters, m.max_conv_dim, m.dim_in or None)
        init_weights(self.nets)  # He init of G and D, as stargan2; the guiding net has VGG's own
        plain = cfg.train.plain_step
        set_fused_resampling(self.nets, not plain)
        self.nets["guiding"] = GuidingNetwork(img, self.num_clusters, m.style_dim, m.guide_dim,
                                              m.guide_max_dim, m.guide_batch_norm)
        self.nets.to(self.device)
        self.make_ema("generator", "guiding")
        self.optims["guiding"] = adam(self.nets["guiding"].parameters(), lr=m.c_lr,
                                      weight_decay=m.c_weight_decay, plain=plain)
        for name in ("generator", "discriminator"):
            self.optims[name] = rmsprop(self.nets[name].parameters(), lr=m.lr, weight_decay=m.weight_decay,
                                        plain=plain)
        self.queue = KeyQueue(m.style_dim, m.queue_size, self.device)
        self.g_ema_started = False

    # ----------------------------------------------------------------- helpers
    def to(self, device=None, memory_format=None) -> "TUNIT":
        super().to(device, memory_format)
        self.queue.to(self.device)
        return self

    # ----------------------------------------------------------------- declared capabilities
    @property
    def num_domains(self) -> int:
        """The guiding network's clusters (``model.num_clusters``, default the dataset's classes)."""
        return self.num_clusters

    @property
    def labelled_fraction(self) -> float:
        return float(self.mcfg.labelled_fraction)

    def domain_of_class(self, k: int) -> int | None:
        """Clusters are not classes: a translation's domain is always its reference's."""
        return None

    def serves(self, src: int, trg: int, mode: str) -> bool:
        return src != trg and mode == REFERENCE

    @torch.no_grad()
    def _ema_style(self, x: torch.Tensor) -> torch.Tensor:
        """Keys from the momentum guiding network with batch statistics, as officially (its
        BN buffers are overwritten from the online network at the next EMA update)."""
        net = self.nets_ema["guiding"]
        net.train()
        try:
            return net.style(x)
        finally:
            net.eval()

    def _labelled(self, batch: Batch) -> torch.Tensor | None:
        if self.mcfg.labelled_fraction <= 0:
            return None
        if batch.labelled is None:
            raise TrainingError("model.labelled_fraction > 0 but the batch marks no labelled images "
                                "(batch.labelled is None); the data pipeline must set it")
        return batch.labelled.to(self.device, torch.bool)

    # ----------------------------------------------------------------- training
    def training_step(self, batch: Batch, step: int) -> dict[str, float]:
        """One iteration; ``step`` is the 0-based index of this iteration (drives the schedule)."""
        m: TUNITConfig = self.mcfg
        C, G, D = self.nets["guiding"], self.nets["generator"], self.nets["discriminator"]
        x = batch.x_src
        n = x.size(0)
        labelled = self._labelled(batch)
        labels = batch.y_src.to(self.device) if labelled is not None else None
        joint = step >= m.separated_iters
        logs: dict[str, torch.Tensor] = {}
        if step >= m.ema_start_iters and not self.g_ema_started:
            # Official main.py: G_EMA := G at the start of epoch ema_start, before its first update.
            self.nets_ema["generator"].load_state_dict(self.nets["generator"].state_dict())
            self.g_ema_started = True

        # 1. guiding network alone (IIC + MoCo)
        self.set_trainable("guiding")
        x_aug = augment(x, m.augment)
        key = self._ema_style(x_aug)
        first_keys = len(self.queue) == 0
        if first_keys:  # officially the queue starts from one batch of keys
            self.queue.enqueue(key)
        logits, style = C(x)
        logits_aug, _ = C(x_aug)
        c_loss, parts = guiding_loss(logits, logits_aug, style, key, self.queue.keys, m, labels, labelled)
        if joint:
            c_loss = m.c_joint_scale * c_loss
        self.optimize(c_loss, ["guiding"])
        logs.update({f"C/{k}": v for k, v in parts.items()})
        logs["C/loss"] = c_loss

        if joint:
            # Pseudo domains after the guiding update. References are the batch permuted: with
            # batch-norm statistics unchanged by a permutation, one pass serves both.
            perm = torch.randperm(n).to(self.device)
            with torch.no_grad():
                logits, style = C(x)
                y_org = logits.argmax(1)
                if labelled is not None:
                    y_org = torch.where(labelled, labels, y_org)
                y_ref, s_ref = y_org[perm], style[perm]

            # Work shared between 2a and 2b unless train.plain_step: C and G keep their weights until
            # 2b's update, so 2b's style pass (moved here; batch-norm statistics are updated in the
            # same order) and one generator pass over [x, x] serve both steps: 2a's fake is the first
            # half of 2b's output (its graph kept through the D update, which touches only D), and
            # the encoder runs once on x for both halves (it does not see the style).
            shared = not self.cfg.train.plain_step
            if shared:
                self.set_trainable("generator", "guiding")
                s_src = C.style(x)
                h, skips = G.encode_only(x)
                twice = (torch.cat([h, h]), {k: torch.cat([v, v]) for k, v in skips.items()})
                out = G.decode_from(twice, torch.cat([s_src[perm], s_src]))

            # 2a. discriminator
            self.set_trainable("discriminator")
            if shared:
                x_fake = out[:n].detach()
            else:
                with torch.no_grad():
                    x_fake = G(x, s_ref)
            x_real = x.detach().requires_grad_(True)
            d_real = D(x_real, y_org)
            d_adv = hinge_d_loss(d_real, D(x_fake, y_ref))
            d_gp = 2.0 * r1_penalty(d_real, x_real)  # official: sum of squared grads / N
            self.optimize(d_adv + m.w_gp * d_gp, ["discriminator"])
            logs.update({"D/adv": d_adv, "D/gp": d_gp})

            # 2b. generator and guiding network
            self.set_trainable("generator", "guiding")
            if not shared:
                s_src = C.style(x)
                out = G(torch.cat([x, x]), torch.cat([s_src[perm], s_src]))
            x_fake, x_rec = out[:n], out[n:]
            g_adv = 2.0 * hinge_g_loss(D(out, torch.cat([y_ref, y_org])))  # sum of the two means
            g_rec = l1(x_rec, x)
            s_ref_ema = self._ema_style(x)[perm]
            g_vec = contrastive_loss(C.style(x_fake), s_ref_ema, self.queue.keys, m.temperature)
            self.optimize(m.w_adv * g_adv + m.w_rec * g_rec + m.w_vec * g_vec, ["generator", "guiding"])
            logs.update({"G/adv": g_adv, "G/rec": g_rec, "G/vec": g_vec})
        self.set_trainable(*self.nets.keys())

        # 3. queue and moving averages
        if not first_keys:
            self.queue.enqueue(key)
        if self.g_ema_started:
            self.update_ema(m.ema_beta, ["generator"])
        self.update_ema(m.c_ema_beta, ["guiding"])
        out_logs = self.loss_values(logs)
        out_logs["joint"] = float(joint)
        return out_logs

    # ----------------------------------------------------------------- inference
    @torch.no_grad()
    def style_codes(self, x: torch.Tensor) -> torch.Tensor:
        """Style codes of images ``x`` from the EMA guiding network, ``[N, style_dim]``."""
        return self.nets_ema["guiding"].style(x)

    @torch.no_grad()
    def translate(self, x: torch.Tensor, target: torch.Tensor | None, *, z: torch.Tensor | None = None,
                  ref: torch.Tensor | None = None) -> torch.Tensor:
        """Reference-guided EMA translation of ``x`` ``[n, 3, S, S]`` with the style of ``ref`` (one per image).

        The domain is the reference's own: ``target`` does not enter (the harness passes
        ``None``). Output clamped to [-1, 1].
        """
        if z is not None:
            raise I2IError("tunit has no mapping network: latent-guided translation is not applicable; "
                           "pass ref= (reference-guided)")
        if ref is None:
            raise I2IError("tunit translates with a reference image: pass ref=")
        if ref.shape[0] != x.shape[0]:
            raise I2IError(f"tunit needs one reference per input image, got {ref.shape[0]} for {x.shape[0]}")
        return self._generator()(x, self.style_codes(ref)).clamp(-1, 1)

    def _generator(self) -> torch.nn.Module:
        """The EMA generator once it has started (``ema_start_iters``), the live one before."""
        return self.nets_ema["generator"] if self.g_ema_started else self.nets["generator"]

    def evaluation_note(self) -> str:
        if self.g_ema_started:
            return ""
        return f"translated with the live generator: its EMA starts at step {self.mcfg.ema_start_iters}"

    @torch.no_grad()
    def domain_labels(self, x: torch.Tensor) -> torch.Tensor:
        """Estimated domains (cluster ids, LongTensor ``[N]``) from the EMA guiding network."""
        return self.nets_ema["guiding"].cluster_logits(x).argmax(1)

    # ----------------------------------------------------------------- state
    def extra_state(self) -> dict:
        return {"queue": self.queue.keys.detach().cpu().clone(), "g_ema_started": self.g_ema_started}

    def load_extra_state(self, state: dict) -> None:
        if "queue" in state:
            self.queue.keys = state["queue"].to(self.device, torch.float32)
        self.g_ema_started = bool(state.get("g_ema_started", False))
