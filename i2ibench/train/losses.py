"""GAN losses shared by the StarGAN v2 family: plain functions of tensors and nets.

``d_loss`` and ``g_loss`` are StarGAN v2's discriminator and generator objectives (Choi et al.
2020, Eq. 1-5; official ``core/solver.py`` ``compute_d_loss``/``compute_g_loss``), written once
for every method on the shared backbone. A target is a class index per image (stargan2: the
discriminator's logit of that domain) or a multi-hot label per image (lanit: the logits of
every active domain, weighted by the label).
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn


def adv_loss(logits: torch.Tensor, real: bool, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Non-saturating binary cross-entropy against target 1 (``real``) or 0.

    ``weight`` (same shape as ``logits``) weights the elements and averages over the weight
    sum, e.g. a multi-hot label over ``[N, K]`` multi-task logits (LANIT).
    """
    logits = logits.float()
    target = torch.full_like(logits, 1.0 if real else 0.0)
    if weight is None:
        return F.binary_cross_entropy_with_logits(logits, target)
    weight = weight.to(logits.dtype)
    per_elem = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return (per_elem * weight).sum() / weight.sum().clamp_min(1e-8)


def r1_penalty(d_out: torch.Tensor, x_in: torch.Tensor) -> torch.Tensor:
    """Zero-centred gradient penalty on real images: ``0.5 * mean_i ||dD(x_i)/dx_i||^2``.

    ``x_in`` must require grad and ``d_out`` be computed from it; the graph is kept so the
    penalty can be back-propagated into the discriminator.
    """
    (grad,) = torch.autograd.grad(d_out.sum(), x_in, create_graph=True)
    return 0.5 * grad.float().pow(2).flatten(1).sum(1).mean()


def l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference."""
    return (a.float() - b.float()).abs().mean()


def linear_decay(initial: float, step: int, decay_steps: int) -> float:
    """``initial`` decayed linearly to 0 over ``decay_steps`` iterations (0-based ``step``), then 0.

    StarGAN v2's diversity weight: iteration ``step`` uses ``initial * (1 - step / decay_steps)``.
    Computed from the step (not decremented in place) so a resumed run uses the same values.
    """
    if decay_steps <= 0:
        raise ValueError(f"decay_steps must be positive, got {decay_steps}")
    return initial * max(0.0, 1.0 - step / decay_steps)


# --------------------------------------------------------------------------- StarGAN v2 objectives

MaskFn = Callable[[torch.Tensor], Sequence[torch.Tensor]]


def domain_logits(D: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The discriminator's logits for domains ``y`` of images ``x``, and their weights.

    ``y`` LongTensor ``[n]``: the logit of each image's domain ``[n]``, no weight. ``y`` float
    multi-hot ``[n, K]``: every domain's logit ``[n, K]``, weighted by ``y`` (LANIT's multi-hot
    adversarial loss).
    """
    if y.dim() == 1:
        return D(x, y), None
    return D.all_logits(x), y


def d_loss(G: nn.Module, D: nn.Module, x_real: torch.Tensor, y_org: torch.Tensor, y_trg: torch.Tensor,
           s_trg: torch.Tensor, lambda_reg: float, masks=None,
           x_fake: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Discriminator loss: real ``x_real`` of ``y_org`` vs fakes of ``y_trg`` made with style ``s_trg``, + R1.

    Images ``[n, 3, S, S]`` in [-1, 1]; styles ``[n, style_dim]``. ``x_fake``: the fakes
    ``G(x_real, s_trg)`` if the caller already has them (detached; ``G`` and ``s_trg`` are then
    not used). Returns the loss and its parts ``real``, ``fake``, ``reg`` (R1 on the real logits
    of the active domains).
    """
    x_real = x_real.detach().requires_grad_(True)
    out, weight = domain_logits(D, x_real, y_org)
    loss_real = adv_loss(out, True, weight=weight)
    loss_reg = r1_penalty(out if weight is None else out * weight, x_real)
    if x_fake is None:
        with torch.no_grad():
            x_fake = G(x_real, s_trg, masks)
    out_fake, weight_fake = domain_logits(D, x_fake, y_trg)
    loss_fake = adv_loss(out_fake, False, weight=weight_fake)
    loss = loss_real + loss_fake + lambda_reg * loss_reg
    return loss, {"real": loss_real, "fake": loss_fake, "reg": loss_reg}


def g_loss(G: nn.Module, E: nn.Module, D: nn.Module, x_real: torch.Tensor, y_org: torch.Tensor,
           y_trg: torch.Tensor, s_trg: torch.Tensor, s_trg2: torch.Tensor | None, *, lambda_sty: float,
           lambda_ds: float, lambda_cyc: float, masks=None, mask_fn: MaskFn | None = None,
           x_fake: torch.Tensor | None = None,
           x_fake2: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
    """Generator loss of one branch: adversarial + style reconstruction - diversity + cycle.

    ``s_trg``/``s_trg2``: two styles of domain ``y_trg`` (two latent codes or two references);
    ``s_trg2`` only enters the diversity-sensitive term, which is left out when it and
    ``x_fake2`` are ``None`` (LANIT's reference branch). ``x_fake`` (``G(x_real, s_trg)`` with its
    graph) and ``x_fake2`` (``G(x_real, s_trg2)``, a constant) are used instead of computing them
    when given. Returns the loss, its parts (``adv``, ``sty``, ``ds``, ``cyc``) and the translated
    images ``G(x_real, s_trg)``.
    """
    if x_fake is None:
        x_fake = G(x_real, s_trg, masks)
    out, weight = domain_logits(D, x_fake, y_trg)
    parts = {"adv": adv_loss(out, True, weight=weight), "sty": l1(E(x_fake, y_trg), s_trg)}
    loss = parts["adv"] + lambda_sty * parts["sty"]
    if s_trg2 is not None or x_fake2 is not None:
        if x_fake2 is None:
            with torch.no_grad():  # the second output is a constant of the diversity term
                x_fake2 = G(x_real, s_trg2, masks)
        parts["ds"] = l1(x_fake, x_fake2)
        loss = loss - lambda_ds * parts["ds"]
    masks_fake = mask_fn(x_fake) if mask_fn is not None else None
    parts["cyc"] = l1(G(x_fake, E(x_real, y_org), masks_fake), x_real)
    loss = loss + lambda_cyc * parts["cyc"]
    return loss, parts, x_fake
