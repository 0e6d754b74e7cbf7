"""Extra evaluations of two-domain tasks (declared by datasets in ``DatasetSpec.evaluations``):

- ``lpips-io``: mean LPIPS between each validation input and its translation, per served task
  (scope ``task``) and over the served tasks (``overall``). Near 0 means the method returns its
  input: the CLIPTraVeLGAN paper's failure at λ >= 0.003 (Table 1: "output images are almost
  equal to the input").
- ``lpips-truth``: mean LPIPS between each translation and the input's true translation, where
  the dataset knows it (``ImageDataset.true_translation``: cmnist colour -> gray, the
  fashion-inv2plain-skewed task); 0 = the right answer.

Inputs are the protocol's planned validation images (``eval.max_src_per_domain`` per source).
Translations: deterministic mode when the method has it, else latent-guided with one code per
input (the protocol's seeded codes); a method with neither gets rows without value and a note.
LPIPS is the real AlexNet LPIPS (``i2ibench.features.lpips``); images under its minimum size get
rows without value and a note.
"""

from __future__ import annotations

import math

import torch

from i2ibench.evaluation.extras import ExtraContext, register_evaluation
from i2ibench.evaluation.protocols import latent_codes
from i2ibench.evaluation.translate import class_target
from i2ibench.features.lpips import LPIPS
from i2ibench.features.lpips import MIN_SIZE as LPIPS_MIN_SIZE
from i2ibench.metrics import keys as mk
from i2ibench.metrics.lpips import paired_lpips
from i2ibench.names import DETERMINISTIC, LATENT, LPIPS_IO, LPIPS_TRUTH
from i2ibench.report import records as R


def _mode(method) -> str | None:
    for mode in (DETERMINISTIC, LATENT):
        if mode in method.modes:
            return mode
    return None


def _rows(ctx: ExtraContext, protocol: str, metric: str, truth: bool) -> None:
    method, val, ev = ctx.method, ctx.val, ctx.ev
    mode = _mode(method)
    names = list(val.domains)
    note = ""
    if mode is None:
        note = f"not applicable: {method.name or type(method).__name__} has no deterministic or latent translation"
    elif val.img_size < LPIPS_MIN_SIZE:
        note = f"LPIPS (AlexNet) needs images of at least {LPIPS_MIN_SIZE} px, these are {val.img_size} px"
    shown_mode = mode or R.MODE_NONE
    served = [t for t in ctx.tasks if mode is not None and method.serves(t.src, t.trg, mode)]
    if note or not served:
        ctx.rows.add(protocol, shown_mode, metric, R.SCOPE_OVERALL, "", math.nan,
                     note=note or "the method serves none of this dataset's tasks")
        return
    net = ctx.lpips_net if ctx.lpips_net is not None else LPIPS().to(method.device).eval()
    values, counts = [], []
    for t in served:
        idx = t.inputs
        ref_images = None
        if truth:
            ref_images, known = val.true_translation(idx)
            idx, ref_images = idx[known], ref_images[known]
        name = R.task_name(names[t.src], names[t.trg])
        if len(idx) == 0:
            ctx.rows.add(protocol, shown_mode, metric, R.SCOPE_TASK, name, math.nan, 0,
                         note="no input with a known true translation")
            continue
        x = val.images(idx)
        outs = []
        bs = max(1, ev.batch_size)
        codes = latent_codes(len(idx), int(method.latent_dim), ev.seed, t.trg) if mode == LATENT else None
        for s in range(0, len(idx), bs):
            xb = x[s:s + bs].to(method.device)
            z = codes[s:s + bs].to(method.device) if codes is not None else None
            outs.append(method.translate(xb, class_target(method, t.trg, len(xb)), z=z).float().cpu())
        y = torch.cat(outs)
        d = paired_lpips(net, y, ref_images if truth else x, bs)
        values.append(float(d.mean()))
        counts.append(len(idx))
        ctx.rows.add(protocol, shown_mode, metric, R.SCOPE_TASK, name, values[-1], len(idx))
    finite = [v for v in values if math.isfinite(v)]
    mean = sum(finite) / len(finite) if finite else math.nan
    part = "" if len(served) == len(ctx.tasks) else f"mean over the {len(served)} of {len(ctx.tasks)} tasks the method serves"
    ctx.rows.add(protocol, shown_mode, metric, R.SCOPE_OVERALL, "", mean, sum(counts), note=part)


@register_evaluation(LPIPS_IO)
def lpips_input_output(ctx: ExtraContext) -> None:
    """Rows ``protocol=lpips-io, metric=lpips_io``: mean LPIPS(input, translation) per served task and overall."""
    _rows(ctx, LPIPS_IO, mk.LPIPS_IO, truth=False)


@register_evaluation(LPIPS_TRUTH)
def lpips_to_truth(ctx: ExtraContext) -> None:
    """Rows ``protocol=lpips-truth, metric=lpips_truth``: mean LPIPS(translation, true translation)."""
    _rows(ctx, LPIPS_TRUTH, mk.LPIPS_TRUTH, truth=True)
