"""The cmnist extra evaluations (``DatasetSpec.evaluations``), for every method evaluated on cmnist.

``cmnist-colour`` (protocol ``colour``): gray -> colour translations of the ``eval``'s gray
inputs (the harness's planned inputs of the gray -> colour task: ``eval.max_src_per_domain``).
Latent-guided with ``eval.outs_per_input`` codes per input (deterministic, one output, for a
method that translates into colour without style): colour recall per input and over the set,
colour precision, unique colour count. Reference-guided (one reference per output, drawn from
the colour validation images): reference colour accuracy. Definitions:
``i2ibench.metrics.colour``.

``cmnist-unimodal-mse`` (protocol ``unimodal``): colour -> gray translations of the colour
inputs against their true gray digits (``pair_index``), mean MSE in [0, 1] pixel units. The
mode is deterministic where the method serves it, else latent (mean over
``eval.outs_per_input`` codes), else reference.

A direction the method does not serve gives rows with value NaN and a note.
"""

from __future__ import annotations

import math

import torch

from i2ibench.data.cmnist import PALETTE_RGB
from i2ibench.evaluation.extras import ExtraContext, register_evaluation
from i2ibench.evaluation.protocols import latent_codes, reference_indices
from i2ibench.evaluation.translate import class_target, source_kw
from i2ibench.metrics import colour as C
from i2ibench.metrics import keys as mk
from i2ibench.names import COLOUR_PROTOCOL, DETERMINISTIC, LATENT, REFERENCE, UNIMODAL_PROTOCOL
from i2ibench.report.records import SCOPE_OVERALL

GRAY, COLOUR = "gray", "color"


def _classes(ctx: ExtraContext) -> tuple[int, int]:
    return ctx.val.domains.index(GRAY), ctx.val.domains.index(COLOUR)


def _inputs(ctx: ExtraContext, src: int, trg: int) -> torch.Tensor:
    for t in ctx.tasks:
        if (t.src, t.trg) == (src, trg):
            return t.inputs
    return torch.zeros(0, dtype=torch.long)


def _translate(ctx: ExtraContext, idx: torch.Tensor, src: int, trg: int, mode: str, outs: int,
               codes: torch.Tensor | None = None, refs: torch.Tensor | None = None) -> torch.Tensor:
    """Outputs ``[len(idx) * outs, 3, S, S]`` (input-major) of the val images ``idx``, batched."""
    m, dev = ctx.method, ctx.method.device
    per_batch = max(1, ctx.ev.batch_size // outs)
    out = []
    for start in range(0, len(idx), per_batch):
        chunk = idx[start:start + per_batch]
        units = slice(start * outs, (start + len(chunk)) * outs)
        x = ctx.val.images(chunk).repeat_interleave(outs, dim=0).to(dev)
        kw = source_kw(m, [src] * len(chunk), outs, dev)
        target = class_target(m, trg, x.shape[0])
        if mode == LATENT:
            y = m.translate(x, target, z=codes[units].to(dev), **kw)
        elif mode == REFERENCE:
            y = m.translate(x, target, ref=ctx.val.images(refs[units]).to(dev), **kw)
        else:
            y = m.translate(x, target, **kw)
        out.append(y.float().cpu())
    return torch.cat(out)


def _nan_rows(ctx: ExtraContext, protocol: str, mode: str, metrics: list[str], domain: str, note: str) -> None:
    for key in metrics:
        ctx.rows.add(protocol, mode, key, SCOPE_OVERALL, "", math.nan, note=f"{domain}: {note}")


@register_evaluation("cmnist-colour")
def colour_evaluation(ctx: ExtraContext) -> None:
    """Colour recall, precision, unique colour count (gray -> colour) and reference colour accuracy."""
    gray, colour = _classes(ctx)
    name = f"{GRAY}->{COLOUR}"
    m, ev = ctx.method, ctx.ev
    palette = PALETTE_RGB.float() / 255
    idx = _inputs(ctx, gray, colour)
    recall_keys = [mk.COLOUR_RECALL, mk.COLOUR_RECALL_SET, mk.COLOUR_PRECISION, mk.UNIQUE_COLOURS]
    mode = next((md for md in (LATENT, DETERMINISTIC) if m.serves(gray, colour, md)), None)
    if mode is None or len(idx) == 0:
        _nan_rows(ctx, COLOUR_PROTOCOL, LATENT, recall_keys, name,
                  f"not served: {m.name} does not translate gray into colour in latent or deterministic mode")
    else:
        outs = 1 if mode == DETERMINISTIC else max(1, ev.outs_per_input)
        codes = latent_codes(len(idx) * outs, int(m.latent_dim), ev.seed, colour) if mode == LATENT else None
        fake = _translate(ctx, idx, gray, colour, mode, outs, codes=codes)
        mask = C.stroke_mask(ctx.val.images(idx)).repeat_interleave(outs, dim=0)
        rgb = C.stroke_rgb(fake, mask)
        snapped = C.snap_colours(rgb, palette)
        per_input, overall = C.colour_recall(snapped.view(len(idx), outs), len(palette))
        n = len(snapped)
        note = f"{name}: {len(idx)} inputs x {outs} outputs"
        ctx.rows.add(COLOUR_PROTOCOL, mode, mk.COLOUR_RECALL, SCOPE_OVERALL, "", per_input, n, None, note)
        ctx.rows.add(COLOUR_PROTOCOL, mode, mk.COLOUR_RECALL_SET, SCOPE_OVERALL, "", overall, n, None, note)
        ctx.rows.add(COLOUR_PROTOCOL, mode, mk.COLOUR_PRECISION, SCOPE_OVERALL, "", C.colour_precision(snapped),
                     n, None, note)
        ctx.rows.add(COLOUR_PROTOCOL, mode, mk.UNIQUE_COLOURS, SCOPE_OVERALL, "",
                     float(C.unique_colour_count(C.hue_bins(rgb))), n, None, note)
    if not m.serves(gray, colour, REFERENCE) or len(idx) == 0:
        _nan_rows(ctx, COLOUR_PROTOCOL, REFERENCE, [mk.REF_COLOUR_ACC], name,
                  f"not served: {m.name} does not translate gray into colour in reference mode")
        return
    outs = max(1, ev.outs_per_input)
    refs = reference_indices(len(idx) * outs, ctx.val.indices_of(colour), ev.seed, colour)
    fake = _translate(ctx, idx, gray, colour, REFERENCE, outs, refs=refs)
    mask = C.stroke_mask(ctx.val.images(idx)).repeat_interleave(outs, dim=0)
    snapped = C.snap_colours(C.stroke_rgb(fake, mask), palette)
    want = ctx.val.extras["palette_index"][refs]
    acc = float((snapped == want).float().mean())
    ctx.rows.add(COLOUR_PROTOCOL, REFERENCE, mk.REF_COLOUR_ACC, SCOPE_OVERALL, "", acc, len(snapped), None,
                 f"{name}: {len(idx)} inputs x {outs} references")


@register_evaluation("cmnist-unimodal-mse")
def unimodal_mse_evaluation(ctx: ExtraContext) -> None:
    """MSE of colour -> gray translations against the true gray digits."""
    gray, colour = _classes(ctx)
    name = f"{COLOUR}->{GRAY}"
    m, ev = ctx.method, ctx.ev
    idx = _inputs(ctx, colour, gray)
    pair = ctx.val.pairs
    mode = next((md for md in (DETERMINISTIC, LATENT, REFERENCE) if m.serves(colour, gray, md)), None)
    if mode is None or len(idx) == 0 or pair is None or bool((pair[idx] < 0).any()):
        _nan_rows(ctx, UNIMODAL_PROTOCOL, DETERMINISTIC, [mk.UNIMODAL_MSE], name,
                  f"not served: {m.name} does not translate colour into gray" if mode is None
                  else "no true gray digit for every colour input")
        return
    outs = 1 if mode == DETERMINISTIC else max(1, ev.outs_per_input)
    codes = latent_codes(len(idx) * outs, int(m.latent_dim), ev.seed, gray) if mode == LATENT else None
    refs = reference_indices(len(idx) * outs, ctx.val.indices_of(gray), ev.seed, gray) if mode == REFERENCE else None
    fake = _translate(ctx, idx, colour, gray, mode, outs, codes=codes, refs=refs)
    target = ctx.val.images(pair[idx]).repeat_interleave(outs, dim=0)
    mse = float(C.unimodal_mse(fake, target).mean())
    ctx.rows.add(UNIMODAL_PROTOCOL, mode, mk.UNIMODAL_MSE, SCOPE_OVERALL, "", mse, len(fake), len(idx),
                 f"{name}: {len(idx)} inputs x {outs} outputs")
