"""Losses of cliptravelgan, travelgan and cyclegan: adversarial BCE, TraVeL, TraVeLGAN's siamese, cycle.

Sources: the CLIPTraVeLGAN paper (Bodyanskiy et al. 2023, §3 Eq. 1-2, §6 for the identity
variant) and the official TraVeLGAN code (KrishnaswamyLab/travelgan, ``travelgan.py``:
``adversarial_loss``, ``siamese_lossfn``, ``_build_loss_D``, ``_build_loss_G``).

Pairs. All ordered pairs (i, j), i != j, of a batch of B: B(B-1) pairs, enumerated as the
official code does, by cyclic shifts k = 1..B-1 (pair (i, (i + k) mod B)); every ordered pair
appears exactly once.

Reductions of the TraVeL loss. ``sum`` is the paper's Eq. 2 (Σ over i != j); ``mean`` divides
by the B(B-1) pairs. The generator loss is ``L_adv + λ·L_travel`` with ``L_adv`` a mean over the
batch, so the two forms give the same objective when ``λ_mean = λ_sum · B(B-1)``. The paper's
λ values (0.0003 ... 0.01) are sum-form at B = 128, i.e. ``λ_mean = λ_sum · 16,256`` (0.001 ->
16.256). Under ``sum`` the weight of the TraVeL term grows with B(B-1), so at another batch
size only the mean form with the converted λ keeps the paper's balance.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from i2ibench.errors import ConfigError

REDUCTIONS = ("sum", "mean")


def ordered_pairs(n: int, device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(i, j)`` LongTensors ``[n(n-1)]`` of every ordered pair i != j (official cyclic-shift order)."""
    if n < 2:
        raise ValueError(f"transformation vectors need a batch of at least 2 images, got {n}")
    i = torch.arange(n, device=device).repeat(n - 1)
    shifts = torch.arange(1, n, device=device).repeat_interleave(n)
    return i, (i + shifts) % n


def transformation_vectors(e: torch.Tensor) -> torch.Tensor:
    """``v_ij = e_i - e_j`` for all ordered pairs, ``[n(n-1), D]`` from embeddings ``[n, D]``."""
    i, j = ordered_pairs(e.shape[0], e.device)
    return e[i] - e[j]


def _reduce(per_item: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "sum":
        return per_item.sum()
    if reduction == "mean":
        return per_item.mean()
    raise ConfigError(f"reduction must be one of {', '.join(REDUCTIONS)}, got '{reduction}'")


def travel_loss(e_x: torch.Tensor, e_gx: torch.Tensor, reduction: str = "sum") -> torch.Tensor:
    """TraVeL loss (CLIPTraVeLGAN Eq. 2 with Dist = 1 - cosine): Σ_{i != j} (1 - cos(v_ij, v'_ij)).

    ``e_x``: S(x) ``[n, D]``; ``e_gx``: S(G(x)) ``[n, D]``; ``v_ij = e_x[i] - e_x[j]``,
    ``v'_ij = e_gx[i] - e_gx[j]``. Each term lies in [0, 2]: 0 iff ``v'_ij`` is a positive multiple of
    ``v_ij``, so the loss is 0 whenever ``S(G(x)) = a·S(x) + b`` with a scalar a > 0 (not for a
    general linear map, which turns the vectors). ``reduction``: ``sum`` (paper) or ``mean`` over
    the n(n-1) pairs. A zero vector has cosine 0 (term 1), as ``F.cosine_similarity`` with eps.
    """
    if e_x.shape != e_gx.shape or e_x.dim() != 2:
        raise ValueError(f"embeddings must both be [n, D], got {tuple(e_x.shape)} and {tuple(e_gx.shape)}")
    cos = F.cosine_similarity(transformation_vectors(e_x), transformation_vectors(e_gx), dim=1, eps=1e-8)
    return _reduce(1.0 - cos, reduction)


def identity_loss(e_x: torch.Tensor, e_gx: torch.Tensor, reduction: str = "sum") -> torch.Tensor:
    """The paper's negative result (§6): Σ_i (1 - cos(S(x_i), S(G(x_i)))) on the embeddings, not on
    transformation vectors. ``[n, D]`` each; ``sum`` or ``mean`` over the n images."""
    if e_x.shape != e_gx.shape or e_x.dim() != 2:
        raise ValueError(f"embeddings must both be [n, D], got {tuple(e_x.shape)} and {tuple(e_gx.shape)}")
    return _reduce(1.0 - F.cosine_similarity(e_x, e_gx, dim=1, eps=1e-8), reduction)


def siamese_losses(s_x: torch.Tensor, s_gx: torch.Tensor, margin: float = 10.0) -> dict[str, torch.Tensor]:
    """TraVeLGAN's siamese terms for one direction, as the official ``_build_loss_G`` (per shift k,
    then the mean over shifts = the mean over all ordered pairs):

    - ``margin`` (S1): mean over pairs of ``max(0, margin - ||v_ij||²)``: keeps S from collapsing;
    - ``mse`` (S2): mean over pairs and dimensions of ``(v_ij - v'_ij)²``;
    - ``cos`` (S3): mean over pairs of ``-cos(v_ij, v'_ij)`` (in [-1, 1]).

    ``s_x`` = S(x), ``s_gx`` = S(G(x)), ``[n, D]``. The official total is S1 + S2 + S3, weight 10.
    """
    v, w = transformation_vectors(s_x), transformation_vectors(s_gx)
    return {
        "margin": F.relu(margin - v.pow(2).sum(1)).mean(),
        "mse": (v - w).pow(2).mean(),
        "cos": -(F.normalize(v, dim=1, eps=1e-12) * F.normalize(w, dim=1, eps=1e-12)).sum(1).mean(),
    }


def bce_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Official TraVeLGAN discriminator loss: ``0.5·BCE(D(real), 1) + 0.5·BCE(D(fake), 0)`` (means)."""
    return 0.5 * (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
                  + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))


def bce_g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss ``BCE(D(G(x)), 1)`` (mean over the batch)."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def cycle_loss(x: torch.Tensor, x_rec: torch.Tensor) -> torch.Tensor:
    """CycleGAN's cycle-consistency term: mean absolute error ``|x - F(G(x))|``; 0 for a perfect inverse pair."""
    return (x - x_rec).abs().mean()
