"""Semantic robustness of a translation, from labels: input-output LPIPS means, flip rate, target success.

The label metrics take *predicted* labels (from a content classifier and a domain classifier,
trained elsewhere) or ground truth where a dataset carries it, so they do not depend on how
the labels were made:

- ``flip_rate(content_in, content_out)``: the share of translations whose content class
  differs from the input's (semantic flipping; the CLIPTraVeLGAN paper's failure mode, GTA sky
  painted as vegetation). Content preservation is ``1 - flip_rate``.
- ``target_success(domain_out, target)``: the share of translations assigned to the target domain.
- ``paired_lpips(lpips, a, b)``: the mean LPIPS of image pairs (input vs output, or output vs
  the true translation).
"""

from __future__ import annotations

import torch

from i2ibench.errors import I2IError


def _labels(name: str, t: torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(t)
    if t.dim() != 1 or t.dtype in (torch.float16, torch.float32, torch.float64, torch.bfloat16):
        raise I2IError(f"{name} must be integer class labels [n], got {tuple(t.shape)} {t.dtype}")
    return t


def flip_rate(content_in: torch.Tensor, content_out: torch.Tensor) -> float:
    """Share in [0, 1] of rows where ``content_out`` (LongTensor [n], predicted class of each
    translation) differs from ``content_in`` ([n], the input's class: ground truth or predicted).
    I2IError for empty or mismatched inputs."""
    a, b = _labels("content_in", content_in), _labels("content_out", content_out)
    if a.shape != b.shape or a.numel() == 0:
        raise I2IError(f"flip rate needs two non-empty label vectors of one length, got {tuple(a.shape)} and {tuple(b.shape)}")
    return float((a != b).float().mean())


def target_success(domain_out: torch.Tensor, target: torch.Tensor | int) -> float:
    """Share in [0, 1] of translations whose predicted domain (LongTensor [n]) equals ``target`` (int or [n])."""
    d = _labels("domain_out", domain_out)
    t = torch.as_tensor(target).expand_as(d) if torch.as_tensor(target).dim() == 0 else _labels("target", target)
    if d.numel() == 0 or t.shape != d.shape:
        raise I2IError(f"target success needs non-empty labels and matching targets, got {tuple(d.shape)} and {tuple(t.shape)}")
    return float((d == t).float().mean())


@torch.no_grad()
def paired_lpips(lpips, a: torch.Tensor, b: torch.Tensor, batch_size: int = 50) -> torch.Tensor:
    """LPIPS of each pair ``(a[i], b[i])``, images ``[n, 3, H, W]`` in [-1, 1] -> ``[n]`` (CPU float64)."""
    if a.shape != b.shape or a.dim() != 4:
        raise I2IError(f"paired LPIPS needs two image batches of one shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    device = next(lpips.parameters()).device
    out = [lpips(a[s:s + batch_size].to(device), b[s:s + batch_size].to(device)).double().cpu()
           for s in range(0, a.shape[0], max(1, batch_size))]
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)
