"""GAN losses shared by the StarGAN v2 family (plain functions of tensors)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


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
