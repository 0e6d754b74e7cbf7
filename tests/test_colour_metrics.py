"""cmnist colour metrics and the uni-modal MSE on constructed outputs with known answers, and
the cmnist extra evaluations through an oracle method (exact translations)."""

from __future__ import annotations

import pytest
import torch

from i2ibench.config import EvalConfig
from i2ibench.data.catalog import available, create_dataset, get_spec
from i2ibench.data.cmnist import PALETTE_RGB
from i2ibench.evaluation.colour_eval import colour_evaluation, unimodal_mse_evaluation
from i2ibench.evaluation.extras import ExtraContext
from i2ibench.evaluation.protocols import plan_tasks
from i2ibench.evaluation.scoring import Rows
from i2ibench.metrics import colour as C
from i2ibench.metrics import keys as mk
from i2ibench.names import DETERMINISTIC, LATENT, REFERENCE

PALETTE = PALETTE_RGB.float() / 255


def gray_digit(n: int) -> torch.Tensor:
    """``n`` gray 'digits' in [-1, 1]: a bright bar (stroke) on black, stroke intensity 0.8-1.0."""
    x = torch.zeros(n, 3, 16, 16)
    x[:, :, 4:12, 6:10] = torch.linspace(0.8, 1.0, 4)
    return x * 2 - 1


def paint(x: torch.Tensor, colour_idx: torch.Tensor) -> torch.Tensor:
    """Gray images in [-1, 1] painted (foreground only) with palette colours."""
    unit = (x + 1) / 2
    return unit[:, :1] * PALETTE[colour_idx][:, :, None, None] * 2 - 1


def test_all_ten_colours_give_recall_one():
    x = gray_digit(10)
    out = paint(x, torch.arange(10))
    snapped = C.snap_colours(C.stroke_rgb(out, C.stroke_mask(x)), PALETTE)
    assert snapped.tolist() == list(range(10))
    per_input, overall = C.colour_recall(snapped.view(1, 10), 10)
    assert per_input == 1.0 and overall == 1.0
    assert C.colour_precision(snapped) == 1.0
    assert C.unique_colour_count(C.hue_bins(C.stroke_rgb(out, C.stroke_mask(x)))) == 10


def test_one_colour_gives_recall_a_tenth():
    x = gray_digit(10)
    out = paint(x, torch.full((10,), 3))
    snapped = C.snap_colours(C.stroke_rgb(out, C.stroke_mask(x)), PALETTE)
    per_input, overall = C.colour_recall(snapped.view(2, 5), 10)
    assert per_input == pytest.approx(0.1) and overall == pytest.approx(0.1)
    assert C.unique_colour_count(C.hue_bins(C.stroke_rgb(out, C.stroke_mask(x)))) == 1


def test_gray_and_black_outputs_are_invalid():
    x = gray_digit(4)
    rgb = C.stroke_rgb(x, C.stroke_mask(x))  # the gray input itself as the output
    snapped = C.snap_colours(rgb, PALETTE)
    assert snapped.tolist() == [-1] * 4
    assert C.colour_precision(snapped) == 0.0 and C.colour_recall(snapped.view(2, 2), 10) == (0.0, 0.0)
    assert C.unique_colour_count(C.hue_bins(rgb)) == 0  # unsaturated
    black = torch.full_like(x, -1.0)
    assert C.snap_colours(C.stroke_rgb(black, C.stroke_mask(x)), PALETTE).tolist() == [-1] * 4
    # per input: distinct colours of each input's outputs
    rows = torch.tensor([[0, 0, 1, -1], [2, 2, 2, 2]])
    assert C.colour_recall(rows, 10) == (pytest.approx(0.15), pytest.approx(0.3))
    with pytest.raises(ValueError):
        C.colour_recall(torch.zeros(0, 3, dtype=torch.long), 10)


def test_invented_colour_counts_as_a_hue_but_not_as_a_palette_colour():
    rgb = torch.tensor([[0.3, 0.6, 1.0]])  # between cyan and blue, near neither
    assert C.snap_colours(rgb, PALETTE).tolist() == [-1]
    assert C.unique_colour_count(C.hue_bins(rgb)) == 1
    assert C.palette_tolerance(PALETTE) == pytest.approx(0.5 * (127 / 255), rel=1e-5)  # orange vs yellow


def test_unimodal_mse_of_identical_images_is_zero():
    x = gray_digit(3)
    assert torch.equal(C.unimodal_mse(x, x.clone()), torch.zeros(3))
    assert C.unimodal_mse(torch.full_like(x, 1.0), torch.full_like(x, -1.0)).tolist() == [1.0] * 3
    with pytest.raises(ValueError):
        C.unimodal_mse(x, x[:, :1])


# --------------------------------------------------------------------------- the evaluations, oracle method

class Oracle:
    """Exact translations on cmnist: colour -> gray = the max channel (the true gray digit);
    gray -> colour painted red (latent) or in the reference's chroma (reference)."""

    name = "oracle"
    modes = (LATENT, REFERENCE, DETERMINISTIC)
    needs_source = False
    latent_dim = 4
    device = torch.device("cpu")

    def serves(self, src, trg, mode):
        return src != trg and (mode == DETERMINISTIC) == (trg == 0)

    def domain_of_class(self, k):
        return k

    def translate(self, x, target, *, z=None, ref=None):
        unit = (x + 1) / 2
        if bool((target == 0).all()):
            return unit.amax(1, keepdim=True).expand(-1, 3, -1, -1) * 2 - 1
        if ref is not None:
            r = (ref + 1) / 2
            chroma = r.flatten(2).amax(2) / r.flatten(2).amax(2).amax(1, keepdim=True).clamp_min(1e-8)
            return unit.amax(1, keepdim=True) * chroma[:, :, None, None] * 2 - 1
        return paint(x, torch.zeros(len(x), dtype=torch.long))


@pytest.mark.skipif(not available(get_spec("cmnist")), reason="cmnist digits not installed")
def test_evaluations_on_exact_translations():
    val = create_dataset("cmnist", "val", 32)
    ev = EvalConfig(max_src_per_domain=6, outs_per_input=3, batch_size=8)
    tasks = plan_tasks([val.indices_of(d) for d in range(2)], ev.max_src_per_domain, ev.seed)
    rows = Rows({})
    ctx = ExtraContext(Oracle(), val, ev, tasks, None, None, rows)
    with torch.no_grad():
        unimodal_mse_evaluation(ctx)
        colour_evaluation(ctx)
    got = {(r["mode"], r["metric"]): r["value"] for r in rows.rows}
    assert got[(DETERMINISTIC, mk.UNIMODAL_MSE)] == pytest.approx(0.0, abs=1e-12)  # identity-exact gray: 0
    assert got[(LATENT, mk.COLOUR_RECALL)] == pytest.approx(0.1)  # always red
    assert got[(LATENT, mk.COLOUR_RECALL_SET)] == pytest.approx(0.1)
    assert got[(LATENT, mk.COLOUR_PRECISION)] == 1.0 and got[(LATENT, mk.UNIQUE_COLOURS)] == 1.0
    assert got[(REFERENCE, mk.REF_COLOUR_ACC)] == 1.0  # takes the reference's colour
