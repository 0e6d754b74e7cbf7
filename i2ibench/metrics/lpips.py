"""LPIPS diversity (StarGAN v2 protocol): how different the outputs for one input are."""

from __future__ import annotations

import torch

from i2ibench.errors import I2IError
from i2ibench.features.lpips import LPIPS


@torch.no_grad()
def lpips_diversity(outputs: torch.Tensor, lpips: LPIPS, batch_size: int = 32) -> float:
    """Mean over inputs of the mean LPIPS over all n_outs*(n_outs-1)/2 pairs of its outputs.

    ``outputs``: [n_outs, N, 3, H, W] in [-1, 1], ``outputs[:, i]`` being the n_outs
    translations of input i. Every input has the same number of pairs, so this equals
    StarGAN v2's mean over pairs of the batch-mean LPIPS. Inputs are processed
    ``batch_size`` at a time; each output goes through AlexNet once.
    """
    if outputs.dim() != 5:
        raise I2IError(f"LPIPS diversity takes outputs [n_outs, N, 3, H, W], got shape {tuple(outputs.shape)}")
    n_outs, n_inputs = outputs.shape[:2]
    if n_outs < 2 or n_inputs < 1:
        raise I2IError(f"LPIPS diversity needs >= 2 outputs per input and >= 1 input, got {n_outs} and {n_inputs}")
    device = next(lpips.parameters()).device
    pairs = [(a, b) for a in range(n_outs) for b in range(a + 1, n_outs)]
    total = 0.0
    for start in range(0, n_inputs, batch_size):
        chunk = outputs[:, start:start + batch_size].to(device)
        feats = [lpips.features(chunk[o]) for o in range(n_outs)]
        per_input = sum(lpips.distance(feats[a], feats[b]) for a, b in pairs) / len(pairs)
        total += float(per_input.double().sum())
    return total / n_inputs


@torch.no_grad()
def paired_lpips(lpips, a: torch.Tensor, b: torch.Tensor, batch_size: int = 50) -> torch.Tensor:
    """LPIPS of each pair ``(a[i], b[i])``, images ``[n, 3, H, W]`` in [-1, 1] -> ``[n]`` (CPU float64)."""
    if a.shape != b.shape or a.dim() != 4:
        raise I2IError(f"paired LPIPS needs two image batches of one shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    device = next(lpips.parameters()).device
    out = [lpips(a[s:s + batch_size].to(device), b[s:s + batch_size].to(device)).double().cpu()
           for s in range(0, a.shape[0], max(1, batch_size))]
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)
