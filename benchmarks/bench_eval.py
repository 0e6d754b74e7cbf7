"""Evaluation cost of a `cpu`-preset run, split into translation, features and metrics, and what
the fake-feature cache saves when an unchanged checkpoint is evaluated again.

    python benchmarks/bench_eval.py [--method stargan2] [--threads N] [--src N] [--outs N] [--real N] [--cold]

An untrained METHOD at the `cpu` preset (img 32, its nets; the weights do not change the cost)
is evaluated in one process on real fashion10 validation images exactly as `i2ibench eval`
does it with the preset's settings (both protocols, both modes, LPIPS, translation accuracy
from the cached domain classifier, bootstrap intervals). The real features come from the
statistics cache (computed first if missing, reported separately); the fake-feature cache is a
fresh temporary folder:

1. a new checkpoint: every translation is made and passed through Inception (the cost of
   evaluating a run whose dataset has been evaluated before);
2. the same checkpoint again (an `i2ibench eval` re-run, or a finished `i2ibench run` re-run):
   the fake features come from the fake-feature cache.

``--cold`` adds, first, an evaluation with an empty statistics cache (the first evaluation on a
machine). Prints, per evaluation, the wall time and its split into translation (the method's
translate), features (Inception on reals and fakes, cache reads and writes), metrics
(classifier verdicts, LPIPS, FID/KID/PRDC, bootstrap intervals, label quality) and other,
the harness's phases, the images through Inception, and whether the pooled reference mFID and
translation accuracy are identical across the evaluations. The domain classifier is trained
(once, cached) before timing starts.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch

from i2ibench.config import build_run_config
from i2ibench.data.catalog import create_dataset
from i2ibench.evaluation.harness import evaluate
from i2ibench.evaluation.real_features import real_features
from i2ibench.evaluation.timing import PHASE_GROUPS, PhaseTimer
from i2ibench.features.classifier import load_classifier
from i2ibench.features.inception import InceptionFeatures
from i2ibench.method import DataInfo
from i2ibench.registry import create_method
from i2ibench.seeding import seed_everything


class Counted:
    """The real extractor, counting the images passed through it."""

    def __init__(self, inner: InceptionFeatures):
        self.inner, self.name = inner, inner.name
        self.images = 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.images += x.shape[0]
        return self.inner(x)


def _value(df, protocol: str, mode: str, metric: str) -> float:
    sel = df[(df["protocol"] == protocol) & (df["mode"] == mode) & (df["metric"] == metric) & (df["scope"] == "overall")]
    return float(sel["value"].item()) if len(sel) == 1 else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", default="stargan2")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the `cpu` runs here used 1)")
    ap.add_argument("--src", type=int, default=None, help="validation images per source domain (default: the preset's)")
    ap.add_argument("--outs", type=int, default=None, help="outputs per input (default: the preset's)")
    ap.add_argument("--real", type=int, default=None, help="real images per target domain (default: the preset's)")
    ap.add_argument("--cold", action="store_true", help="also time an evaluation with an empty statistics cache")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    overrides = {k: v for k, v in (("eval.max_src_per_domain", args.src), ("eval.outs_per_input", args.outs),
                                   ("eval.max_real_per_domain", args.real)) if v is not None}
    cfg = build_run_config(args.method, "fashion10", "cpu", overrides)
    ev = cfg.eval
    clf = load_classifier("fashion10", "domain")
    val = create_dataset("fashion10", "val", cfg.train.img_size)
    seed_everything(cfg.train.seed)
    method = create_method(args.method, cfg, DataInfo.of(cfg, val), "cpu").to("cpu")
    k = len(val.domains)
    fakes = k * (k - 1) * ev.max_src_per_domain * ev.outs_per_input
    print(f"{args.method} at the cpu preset on fashion10: K={k}, img {cfg.train.img_size}, {ev.max_src_per_domain} "
          f"src/domain x {ev.outs_per_input} outs = {fakes} translations per mode, modes {', '.join(method.modes)}, "
          f"{ev.max_real_per_domain} real/domain, bootstrap {ev.bootstrap}, domain classifier {clf.name}; "
          f"{args.threads} thread(s), load average {os.getloadavg()[0]:.1f}")
    t0 = time.perf_counter()
    warm = Counted(InceptionFeatures(precision=ev.feature_precision, batch_size=ev.batch_size))
    for d in range(k):  # the statistics cache the rows below read (as after any earlier evaluation)
        real_features(val, d, warm, ev, cache=True)
    print(f"real features: {warm.images} images computed into the statistics cache in "
          f"{time.perf_counter() - t0:.1f} s (0: they were there)")
    runs = [("new checkpoint (reals cached)", True), ("same checkpoint again", True)]
    if args.cold:
        runs.insert(0, ("cold (nothing cached)", False))
    rows = []
    with tempfile.TemporaryDirectory() as fake_root, tempfile.TemporaryDirectory() as cold_root:
        for name, real_cache in runs:
            feats = Counted(InceptionFeatures(precision=ev.feature_precision, batch_size=ev.batch_size))
            timer = PhaseTimer()
            t0 = time.perf_counter()
            # the cold row keeps its fakes apart, so that the new-checkpoint row still computes them
            df = evaluate(method, cfg, val=val, features=feats, cache=True if real_cache else cold_root,
                          fake_cache=fake_root if real_cache else cold_root, log=None, timer=timer)
            wall = time.perf_counter() - t0
            rows.append((name, wall, timer, feats.images, _value(df, "pooled", "reference", "mfid"),
                         _value(df, "pooled", "reference", "translation_acc")))
            print(f"  done: {name} in {wall:.1f} s", flush=True)
    groups = list(PHASE_GROUPS) + ["other"]
    print(f"{'evaluation':34s} {'wall s':>8s} " + " ".join(f"{g + ' s':>14s}" for g in groups)
          + f" {'Inception imgs':>15s} {'mFID pooled ref':>16s} {'transl. acc':>12s}")
    for name, wall, timer, images, mfid, acc in rows:
        split = timer.grouped()
        print(f"{name:34s} {wall:8.1f} " + " ".join(f"{split[g]:14.1f}" for g in groups)
              + f" {images:15d} {mfid:16.3f} {acc:12.3f}")
    print("phases (wall s):")
    for name, _, timer, *_ in rows:
        print(f"  {name}: {timer.summary()}")
    new, again = rows[-2], rows[-1]
    split = new[2].grouped()
    print(f"per-run evaluation ({new[0]}): translation {split['translation']:.1f} s "
          f"({100 * split['translation'] / new[1]:.0f} %), features {split['features']:.1f} s "
          f"({100 * split['features'] / new[1]:.0f} %), metrics {split['metrics']:.1f} s "
          f"({100 * split['metrics'] / new[1]:.0f} %) of {new[1]:.1f} s")
    print(f"same checkpoint again / new checkpoint wall time: {again[1] / new[1]:.3f}; Inception images when "
          f"evaluated again: {again[3]}; identical mFID and accuracy: "
          f"{len({r[4] for r in rows}) == 1 and len({r[5] for r in rows}) == 1}")

if __name__ == "__main__":
    main()
