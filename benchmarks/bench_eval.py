"""Evaluation cost: a first evaluation (real features computed) vs a second one that hits the
statistics cache, and how many images pass through Inception.

    python benchmarks/bench_eval.py [--threads N] [--precision fp32|bf16] [--src N] [--outs N] [--real N]

An untrained stargan2 at the `cpu` preset's size (img 32) on real fashion10 validation images
is evaluated twice under both protocols (latent mode; LPIPS off so the timing is the
translation + Inception + metrics path), with a fresh statistics cache in a temporary folder.
Prints wall times, images through Inception per evaluation, Inception images/s, and the
number of Inception passes per translated image (1.0: the protocols share translations).
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from i2ibench.config import build_run_config
from i2ibench.data.catalog import create_dataset
from i2ibench.evaluation.harness import evaluate
from i2ibench.features.inception import InceptionFeatures
from i2ibench.method import DataInfo
from i2ibench.registry import create_method
from i2ibench.seeding import seed_everything


class Counted:
    """The real extractor, counting images and time spent in it."""

    def __init__(self, inner: InceptionFeatures):
        self.inner, self.name = inner, inner.name
        self.images, self.seconds = 0, 0.0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        t0 = time.perf_counter()
        out = self.inner(x)
        self.seconds += time.perf_counter() - t0
        self.images += x.shape[0]
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    ap.add_argument("--src", type=int, default=2, help="validation images per source domain")
    ap.add_argument("--outs", type=int, default=2, help="outputs per input")
    ap.add_argument("--real", type=int, default=20, help="real images per target domain")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    cfg = build_run_config("stargan2", "fashion10", "cpu", {
        "eval.modes": "latent", "eval.lpips": False, "eval.max_src_per_domain": args.src,
        "eval.outs_per_input": args.outs, "eval.max_real_per_domain": args.real,
        "eval.feature_precision": args.precision, "eval.batch_size": 50})
    val = create_dataset("fashion10", "val", cfg.train.img_size)
    seed_everything(cfg.train.seed)
    info = DataInfo(dataset="fashion10", domains=list(val.domains), img_size=cfg.train.img_size)
    method = create_method("stargan2", cfg, info, "cpu").to("cpu")
    k = len(val.domains)
    fakes = k * (k - 1) * args.src * args.outs
    print(f"fashion10, K={k}, img {cfg.train.img_size}, {args.src} src/domain x {args.outs} outs = {fakes} "
          f"translations per evaluation, {args.real} real/domain, Inception {args.precision}, {args.threads} threads")
    with tempfile.TemporaryDirectory() as cache_root:
        rows = []
        for run in ("first (cache empty)", "second (cache hit)"):
            feats = Counted(InceptionFeatures(precision=args.precision, batch_size=50))
            t0 = time.perf_counter()
            df = evaluate(method, cfg, val=val, features=feats, cache=cache_root, log=None)
            wall = time.perf_counter() - t0
            mfid = df[(df["metric"] == "mfid") & (df["protocol"] == "pooled")]["value"].item()
            rows.append((run, wall, feats.images, feats.seconds, mfid))
    print(f"{'evaluation':22s} {'wall s':>8s} {'Inception imgs':>15s} {'Inception s':>12s} {'imgs/s':>8s} {'pooled mFID':>12s}")
    for run, wall, n, sec, mfid in rows:
        print(f"{run:22s} {wall:8.1f} {n:15d} {sec:12.1f} {n / sec:8.1f} {mfid:12.3f}")
    print(f"Inception passes per translated image (second evaluation): {rows[1][2] / fakes:.2f}")
    print(f"second / first wall time: {rows[1][1] / rows[0][1]:.2f}; identical mFID: {rows[0][4] == rows[1][4]}")


if __name__ == "__main__":
    main()
