"""A method of another shape, registered from this file with one decorator: one-sided
(only A -> B), deterministic (no style), its own tiny network. ``i2ibench run`` and
``i2ibench eval`` train, sample and score it through the declared ``Method`` interface with
no change anywhere else; the records say which tasks it serves."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from conftest import run_cli
from i2ibench.data.catalog import available, get_spec
from i2ibench.method import Batch, Method
from i2ibench.metrics import keys as mk
from i2ibench.names import DETERMINISTIC, GROUND_TRUTH
from i2ibench.registry import register_method
from i2ibench.report import records as R

DATASET = "fashion-sneaker2boot"  # two classes: sneaker (A), ankle boot (B)


@dataclass
class OneWayConfig:
    width: int = 4
    lr: float = 1e-3


@register_method("toy-oneway")
class OneWay(Method):
    """A -> B only, deterministic: a 2-layer conv net pulled towards B's references (L1)."""

    Config = OneWayConfig
    presets = {"smoke": {"train.img_size": 32, "train.batch_size": 4, "train.total_iters": 3,
                         "train.sample_every": 3, "train.ckpt_every": 3, "train.log_every": 1,
                         "eval.max_src_per_domain": 3, "eval.max_real_per_domain": 6, "eval.batch_size": 8}}
    modes = (DETERMINISTIC,)
    label_kind = GROUND_TRUTH

    def __init__(self, cfg, info, device="cpu"):
        super().__init__(cfg, info, device)
        w = self.mcfg.width
        self.nets["generator"] = nn.Sequential(nn.Conv2d(3, w, 3, padding=1), nn.ReLU(), nn.Conv2d(w, 3, 3, padding=1))
        self.nets.to(self.device)
        self.make_ema("generator")
        self.optims["generator"] = torch.optim.Adam(self.nets["generator"].parameters(), lr=self.mcfg.lr)

    def serves(self, src: int, trg: int, mode: str) -> bool:
        return (src, trg, mode) == (0, 1, DETERMINISTIC)

    def training_step(self, batch: Batch, step: int) -> dict[str, float]:
        x = batch.x_src[batch.y_src == 0]  # its own sources: domain A only
        ref = batch.x_ref[batch.y_ref == 1]
        if len(x) == 0 or len(ref) == 0:
            return {"l1": 0.0}
        loss = (torch.tanh(self.nets["generator"](x)).mean(0) - ref.mean(0)).abs().mean()
        self.optimize(loss, ["generator"])
        self.update_ema(0.5)
        return self.loss_values({"l1": loss})

    @torch.no_grad()
    def translate(self, x, target, *, z=None, ref=None):
        assert z is None and ref is None and target is not None and bool((target == 1).all())
        return torch.tanh(self.nets_ema["generator"](x))

    def domain_labels(self, x):
        raise TypeError("ground truth")


@pytest.mark.skipif(not available(get_spec(DATASET)), reason="Fashion-MNIST files not installed")
def test_a_one_sided_deterministic_method_runs_and_is_scored(tmp_path, monkeypatch, capsys):
    run_dir = tmp_path / "oneway"
    code, out, err = run_cli(monkeypatch, capsys, "run", "-m", "toy-oneway", "-d", DATASET, "-p", "smoke",
                             "--out", str(run_dir), "--no-progress")
    assert code == 0, err
    assert (run_dir / "samples" / "deterministic_00000003.png").is_file()
    assert not list((run_dir / "samples").glob("latent_*")) and not list((run_dir / "samples").glob("reference_*"))

    df = R.load_records([run_dir])
    protocols = df[df[R.PROTOCOL].isin(["pairwise", "pooled"])]
    assert set(protocols[R.MODE]) == {DETERMINISTIC}  # no style modes to report as n/a for a method without style
    assert {mk.FID, mk.MFID, mk.MKID, mk.PRECISION, mk.DENSITY, mk.TRANSLATION_ACC} <= set(protocols[R.METRIC])
    assert mk.LPIPS not in set(protocols[R.METRIC])  # one output per input: no diversity
    assert set(df[df[R.PROTOCOL] == "classifier"][R.DOMAIN]) == {"domain"}  # the classifier it was scored with
    # the dataset's declared extra evaluation (input-output LPIPS) scores this method too
    assert set(df[R.PROTOCOL]) == {"pairwise", "pooled", "lpips-io", "classifier"} and set(df[df[R.PROTOCOL] == "lpips-io"][R.METRIC]) == {mk.LPIPS_IO}
    fid = df[df[R.METRIC] == mk.FID].set_index([R.PROTOCOL, R.DOMAIN])
    served, unserved = fid.loc[("pairwise", "sneaker->ankle boot")], fid.loc[("pairwise", "ankle boot->sneaker")]
    assert math.isfinite(served[R.VALUE]) and served[R.N_FAKE] == 3  # 3 inputs x 1 output
    assert math.isnan(unserved[R.VALUE]) and "not served" in unserved[R.NOTE]
    mfid = df[(df[R.METRIC] == mk.MFID) & (df[R.PROTOCOL] == "pairwise")].iloc[0]
    assert mfid[R.VALUE] == pytest.approx(served[R.VALUE]) and "1 of 2 groups" in mfid[R.NOTE]
    assert fid.loc[("pooled", "ankle boot"), R.VALUE] == pytest.approx(served[R.VALUE])  # one source per target
    assert math.isnan(fid.loc[("pooled", "sneaker"), R.VALUE])

    code, out, err = run_cli(monkeypatch, capsys, "eval", str(run_dir))
    assert code == 0, err
    again = R.load_records([run_dir])
    assert len(again) == len(df)  # the same evaluation replaced, not added
    assert again.set_index([R.PROTOCOL, R.MODE, R.METRIC, R.DOMAIN])[R.VALUE].equals(
        df.set_index([R.PROTOCOL, R.MODE, R.METRIC, R.DOMAIN])[R.VALUE])
