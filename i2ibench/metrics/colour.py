"""Colour metrics of Colorized MNIST (the HMU paper names Color Recall and the unique colour
count; its definitions are not public, these are i2ibench's), and the uni-modal MSE.

An output's colour: the mean RGB (in [0, 1]) of the output over the *input's* stroke (input
intensity, the max channel in [0, 1], above ``STROKE_THRESHOLD``), divided by its largest
channel (the palette is at full value, so a painted stroke of any intensity has the chroma of
its palette colour). It is snapped to the nearest palette colour (palette RGB / 255, Euclidean)
if closer than half the smallest distance between two palette colours, else it is invalid
(-1); an output whose stroke is darker than ``MIN_VALUE`` is invalid too. A gray output has
chroma (1, 1, 1), far from every palette colour: invalid.

* colour recall per input: distinct valid colours among an input's M outputs / palette size,
  averaged over inputs; over the set: distinct valid colours among all outputs / palette size;
* colour precision: share of valid outputs;
* unique colour count: distinct 10-degree hue bins among saturated outputs (saturation of the
  chroma, (max - min) / max, at least ``SATURATION_MIN``), valid or not, so invented colours
  count too;
* reference-guided colour accuracy: share of outputs whose colour is the reference's;
* uni-modal MSE: mean squared error in [0, 1] pixel units over all pixels and the 3 channels
  of a translation into gray against the true gray digit.
"""

from __future__ import annotations

import torch

STROKE_THRESHOLD = 0.5   # input intensity in [0, 1] above which a pixel is stroke
MIN_VALUE = 0.05         # an output's mean stroke value below this is black: invalid
SATURATION_MIN = 0.5     # unique colour count: chroma saturation at least this
HUE_BIN_DEGREES = 10.0


def _unit(x: torch.Tensor) -> torch.Tensor:
    return (x.float().clamp(-1, 1) + 1) / 2


def stroke_mask(inputs: torch.Tensor) -> torch.Tensor:
    """Bool ``[n, H, W]``: the stroke of input images ``[n, 3, H, W]`` in [-1, 1]."""
    return _unit(inputs).amax(1) > STROKE_THRESHOLD


def stroke_rgb(outputs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean RGB in [0, 1] ``[n, 3]`` of ``outputs`` ``[n, 3, H, W]`` (in [-1, 1]) over ``mask`` ``[n, H, W]``."""
    m = mask.to(outputs.device).float()[:, None]
    return (_unit(outputs) * m).sum((2, 3)) / m.sum((2, 3)).clamp_min(1.0)


def palette_tolerance(palette: torch.Tensor) -> float:
    """Half the smallest distance between two palette colours (``palette`` ``[P, 3]`` in [0, 1])."""
    d = torch.cdist(palette.float(), palette.float())
    d.fill_diagonal_(float("inf"))
    return float(d.min()) / 2


def snap_colours(rgb: torch.Tensor, palette: torch.Tensor) -> torch.Tensor:
    """Palette index of each mean stroke colour ``rgb`` ``[n, 3]`` in [0, 1], -1 if invalid (LongTensor ``[n]``).

    ``palette`` ``[P, 3]`` in [0, 1], every colour with a channel at 1.
    """
    value = rgb.amax(1)
    chroma = rgb / value.clamp_min(1e-8)[:, None]
    d = torch.cdist(chroma, palette.float().to(rgb.device))
    dist, idx = d.min(1)
    valid = (dist < palette_tolerance(palette)) & (value >= MIN_VALUE)
    return torch.where(valid, idx, torch.full_like(idx, -1))


def hue_bins(rgb: torch.Tensor) -> torch.Tensor:
    """10-degree hue bin (0..35) of each saturated colour ``rgb`` ``[n, 3]`` in [0, 1]; -1 if unsaturated or black."""
    mx, mn = rgb.amax(1), rgb.amin(1)
    sat = (mx - mn) / mx.clamp_min(1e-8)
    r, g, b = rgb.unbind(1)
    delta = (mx - mn).clamp_min(1e-8)
    hue = torch.where(mx == r, ((g - b) / delta) % 6, torch.where(mx == g, (b - r) / delta + 2, (r - g) / delta + 4))
    deg = (hue * 60.0) % 360.0
    bins = (deg / HUE_BIN_DEGREES).floor().long().clamp(0, int(360 / HUE_BIN_DEGREES) - 1)
    ok = (sat >= SATURATION_MIN) & (mx >= MIN_VALUE)
    return torch.where(ok, bins, torch.full_like(bins, -1))


def colour_recall(colours: torch.Tensor, palette_size: int) -> tuple[float, float]:
    """(per-input recall, set recall) of snapped colours ``[N, M]`` (N inputs, M outputs each, -1 invalid).

    Per input: distinct valid colours / ``palette_size``, mean over inputs. Set: distinct valid
    colours among all outputs / ``palette_size``. ValueError for an empty array.
    """
    if colours.dim() != 2 or colours.numel() == 0:
        raise ValueError(f"colours must be [inputs, outputs] and non-empty, got {tuple(colours.shape)}")
    per_input = [len(set(row.tolist()) - {-1}) / palette_size for row in colours]
    overall = len(set(colours.flatten().tolist()) - {-1}) / palette_size
    return sum(per_input) / len(per_input), overall


def colour_precision(colours: torch.Tensor) -> float:
    """Share of valid (not -1) snapped colours."""
    return float((colours >= 0).float().mean())


def unique_colour_count(bins: torch.Tensor) -> int:
    """Distinct hue bins (not -1)."""
    return len(set(bins.flatten().tolist()) - {-1})


def unimodal_mse(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-image MSE ``[n]`` in [0, 1] pixel units of ``outputs`` vs ``targets`` (both ``[n, 3, H, W]`` in [-1, 1])."""
    if outputs.shape != targets.shape:
        raise ValueError(f"outputs {tuple(outputs.shape)} and targets {tuple(targets.shape)} differ in shape")
    return (_unit(outputs) - _unit(targets).to(outputs.device)).pow(2).flatten(1).mean(1)
